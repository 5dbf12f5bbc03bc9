"""Build the Fetch scenes from gymnasium-robotics' MJCF with `mujoco.MjSpec`.

The shipped XML and meshes are read from the installed package at run time (never copied).
The edits turn the mocap-driven arm into the position-controlled arm the real Fetch is:
no mocap body or weld, a fixed base, torso and head, joint position actuators with the real
URDF effort limits on the seven arm joints, and one position-controlled gripper. Every edit
and its reason is listed in README.md next to this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.calibration_board import BoardSpec, add_board
from sim.robots.assets import asset_file

PREFIX = "robot0:"  # gymnasium-robotics' name prefix; dropped so names match the real URDF

ARM_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "upperarm_roll_joint",
    "elbow_flex_joint",
    "forearm_roll_joint",
    "wrist_flex_joint",
    "wrist_roll_joint",
)
FINGER_JOINTS = ("r_gripper_finger_joint", "l_gripper_finger_joint")  # gymnasium's order
ARM_ACTUATORS = tuple(joint.removesuffix("_joint") for joint in ARM_JOINTS)
GRIPPER_ACTUATOR = "gripper"
GRIPPER_TENDON = "gripper_opening"
GRIP_SITE = "grip"
GRIPPER_BODY = "gripper_link"
OBJECT_JOINT = "object0:joint"
OBJECT_SITE = "object0"
OBJECT_GEOM = "object0"
TARGET_SITE = "target0"
TABLE_BODY = "table0"
VIDEO_CAMERA = "video"
FINGER_OPENING_RANGE_M = (0.0, 0.05)  # per finger, from the URDF and the shipped asset


@dataclass(frozen=True)
class ArmJointDrive:
    """Drive of one arm joint: a PD position servo limited to the real joint's effort.

    `effort_limit_nm` is the real Fetch URDF's `effort`. Gains are ours: kp = w^2 I and
    kv = 2 z w I with w = 60 rad/s, z = 0.9 and I the joint-space inertia (armature
    included) at the start pose; README.md explains. The servo's damping `kv` is part of the
    actuator, so it is bounded by the effort limit like on the real motor; `damping` is the
    small passive joint friction. Continuous joints get a bounded `range_rad` for the target.
    """

    joint: str
    effort_limit_nm: float
    kp_nm_per_rad: float
    kv_nms_per_rad: float
    armature_kgm2: float
    velocity_limit_rad_s: float  # the real Fetch URDF's <limit velocity>
    damping_nms_per_rad: float = 0.5
    range_rad: tuple[float, float] | None = None  # None: keep the asset's joint limits


_TURN = (-np.pi, np.pi)
ARM_DRIVES = (
    ArmJointDrive("shoulder_pan_joint", 33.82, 11000.0, 330.0, 0.2, 1.256),
    ArmJointDrive("shoulder_lift_joint", 131.76, 7900.0, 238.0, 0.2, 1.454),
    ArmJointDrive("upperarm_roll_joint", 76.94, 3400.0, 103.0, 0.1, 1.571, range_rad=_TURN),
    ArmJointDrive("elbow_flex_joint", 66.18, 3500.0, 105.0, 0.1, 1.521),
    ArmJointDrive("forearm_roll_joint", 29.35, 450.0, 13.6, 0.05, 1.571, range_rad=_TURN),
    ArmJointDrive("wrist_flex_joint", 25.7, 565.0, 17.0, 0.05, 2.268),
    ArmJointDrive("wrist_roll_joint", 7.36, 77.0, 2.3, 0.02, 2.268, range_rad=_TURN),
)
ARM_VELOCITY_LIMITS_RAD_S = tuple(drive.velocity_limit_rad_s for drive in ARM_DRIVES)


@dataclass(frozen=True)
class GripperDrive:
    """The gripper: one position servo on the mean finger opening, fingers coupled.

    The real gripper takes one position command; `effort_limit_n` is the URDF's per-finger
    effort (60 N), so the servo on the mean opening may push with twice that.
    """

    kp_n_per_m: float = 5000.0
    effort_limit_n: float = 60.0
    velocity_limit_m_s: float = 0.05  # the URDF's per-finger <limit velocity>
    finger_damping_ns_per_m: float = 200.0
    finger_armature_kg: float = 0.1
    finger_mass_kg: float = 0.0798  # URDF; the asset's 4 kg fingers were a mocap-era hack
    finger_inertia_kgm2: float = 2e-5


GRIPPER = GripperDrive()


@dataclass(frozen=True)
class SceneLayout:
    """What differs between the four shipped scenes: the asset and where the base stands."""

    asset: str
    base_slide_m: tuple[float, float]  # gymnasium-robotics' initial slide0/slide1 values
    calibration_board: bool = False  # the ChArUco board on the gripper (calibration runs)


SCENES = {
    "reach": SceneLayout("fetch/reach.xml", (0.4049, 0.48)),
    "push": SceneLayout("fetch/push.xml", (0.405, 0.48)),
    "slide": SceneLayout("fetch/slide.xml", (0.05, 0.48)),
    "pick_and_place": SceneLayout("fetch/pick_and_place.xml", (0.405, 0.48)),
    "calibration": SceneLayout("fetch/reach.xml", (0.4049, 0.48), calibration_board=True),
}
# The rig's cameras (robot.yaml `rig_cameras`): head_camera_rgb, gymnasium's
# external_camera_0 in front of the table looking back at the robot, and external_camera_1 on
# the robot's left looking across the table, so the three see the table from three sides.
EXTERNAL_CAMERA_1_POS_M = (1.25, 1.55, 1.05)
EXTERNAL_CAMERA_1_LOOKAT_M = (1.3, 0.75, 0.45)
# The calibration board on the gripper, as on a bracket: its plane through the gripper's
# x (the fingers' direction) and y, its printed face up (gripper +z), its centre 0.3 m out
# along x, clear of the fingers. Board frame in gripper_link's: x along x, y along -y.
CALIBRATION_BOARD = BoardSpec()
BOARD_CENTRE_IN_GRIPPER_M = (0.30, 0.0, 0.02)
BOARD_QUAT_IN_GRIPPER = (0.0, 1.0, 0.0, 0.0)  # 180 deg about x: y_b = -y_g, z_b = -z_g

# The head looks down at the table (real Fetch's usual manipulation pose) so head_camera_rgb
# sees the workspace; 0 in the asset looks at the horizon above the table.
HEAD_TILT_RAD = 0.5
# Torso raised 0.15 m of its 0.386 m stroke (gymnasium-robotics leaves it fully down): with
# the gripper held pointing down, goals 0.45 m above the table are otherwise beyond the
# shoulder_lift limit near the robot.
TORSO_LIFT_M = 0.15
# A fixed camera for demo videos, from gymnasium-robotics' viewer side (azimuth 135 deg,
# elevation -10 deg), 2.45 m back from the middle of the arm's reach: the arm's full swing
# (straight up, out to the side) stays in frame with the table and the object;
# tests/test_video_framing.py checks it by projecting the arm driven to its limits.
VIDEO_CAMERA_LOOKAT_M = (0.9, 0.68, 0.85)
VIDEO_CAMERA_POS_M = (2.657, -1.077, 1.288)


def build_spec(scene: str) -> mujoco.MjSpec:
    """A fresh MjSpec of the Fetch in `scene` (one of SCENES), with every edit applied."""
    layout = SCENES[scene]
    spec = mujoco.MjSpec.from_file(str(asset_file(layout.asset)))
    _remove_mocap(spec)
    _drop_prefix(spec)
    _fix_base(spec, layout.base_slide_m)
    _fix_torso_and_head(spec)
    _drive_arm(spec)
    _drive_gripper(spec)
    _add_video_camera(spec)
    _add_world_camera(
        spec, "external_camera_1", EXTERNAL_CAMERA_1_POS_M, EXTERNAL_CAMERA_1_LOOKAT_M
    )
    if layout.calibration_board:
        _add_calibration_board(spec)
    _set_options(spec)
    return spec


def _remove_mocap(spec: mujoco.MjSpec) -> None:
    """Delete the weld to the mocap body and the mocap body: the arm is servo-driven."""
    for equality in list(spec.equalities):
        spec.delete(equality)
    for actuator in list(spec.actuators):  # pick_and_place's per-finger actuators
        spec.delete(actuator)
    spec.delete(spec.body(PREFIX + "mocap"))


def _drop_prefix(spec: mujoco.MjSpec) -> None:
    """Rename `robot0:x` to `x` everywhere (names then match the real Fetch's URDF)."""
    for group in (spec.bodies, spec.joints, spec.geoms, spec.sites, spec.cameras):
        for element in group:
            element.name = element.name.removeprefix(PREFIX)
    for group in (spec.meshes, spec.materials):
        for element in group:
            element.name = element.name.removeprefix(PREFIX)
    for geom in spec.geoms:
        geom.meshname = geom.meshname.removeprefix(PREFIX)
        geom.material = geom.material.removeprefix(PREFIX)
    for exclude in spec.excludes:
        exclude.bodyname1 = exclude.bodyname1.removeprefix(PREFIX)
        exclude.bodyname2 = exclude.bodyname2.removeprefix(PREFIX)


def _fix_base(spec: mujoco.MjSpec, slide_m: tuple[float, float]) -> None:
    """Delete the three base slide joints (damping 1e11 held them) and place the base."""
    base = spec.body("base_link")
    for name in ("slide0", "slide1", "slide2"):
        spec.delete(spec.joint(name))
    base.pos = np.asarray(base.pos) + np.array([slide_m[0], slide_m[1], 0.0])


def _fix_torso_and_head(spec: mujoco.MjSpec) -> None:
    """Weld torso (raised, see TORSO_LIFT_M) and head (pan 0, tilted down to the table)."""
    for name in ("torso_lift_joint", "head_pan_joint", "head_tilt_joint"):
        spec.delete(spec.joint(name))
    torso = spec.body("torso_lift_link")
    torso.pos = np.asarray(torso.pos) + np.array([0.0, 0.0, TORSO_LIFT_M])
    tilt = spec.body("head_tilt_link")
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, np.array([0.0, 1.0, 0.0]), HEAD_TILT_RAD)
    tilt.quat = quat


def _drive_arm(spec: mujoco.MjSpec) -> None:
    """Position servos with gravity compensation through the actuators, per ARM_DRIVES."""
    for drive in ARM_DRIVES:
        joint = spec.joint(drive.joint)
        joint.armature = drive.armature_kgm2
        joint.damping = [drive.damping_nms_per_rad, 0.0, 0.0]
        joint.stiffness = [0.0, 0.0, 0.0]  # forearm_roll had a 10 Nm/rad spring to the zero pose
        joint.frictionloss = 0.0
        if drive.range_rad is not None:
            joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
            joint.range = drive.range_rad
        joint.actgravcomp = True
        joint.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
        joint.actfrcrange = (-drive.effort_limit_nm, drive.effort_limit_nm)
        actuator = spec.add_actuator(name=drive.joint.removesuffix("_joint"), target=drive.joint)
        actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
        actuator.set_to_position(kp=drive.kp_nm_per_rad, kv=drive.kv_nms_per_rad)
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = joint.range
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = (-drive.effort_limit_nm, drive.effort_limit_nm)
    _gravity_compensate(spec.body("shoulder_pan_link"))


def _gravity_compensate(body: mujoco.MjsBody) -> None:
    """Mark `body` and its subtree for gravity compensation (applied via actuators)."""
    body.gravcomp = 1.0
    for child in body.bodies:
        _gravity_compensate(child)


def _drive_gripper(spec: mujoco.MjSpec) -> None:
    """Realistic fingers, coupled by an equality, one servo on their mean opening."""
    for finger_joint in FINGER_JOINTS:
        joint = spec.joint(finger_joint)
        joint.armature = GRIPPER.finger_armature_kg
        joint.damping = [GRIPPER.finger_damping_ns_per_m, 0.0, 0.0]
        joint.range = FINGER_OPENING_RANGE_M
        body = spec.body(finger_joint.replace("_joint", "_link"))
        body.mass = GRIPPER.finger_mass_kg
        body.inertia = np.full(3, GRIPPER.finger_inertia_kgm2)
    spec.add_equality(
        name="finger_coupling",
        type=mujoco.mjtEq.mjEQ_JOINT,
        objtype=mujoco.mjtObj.mjOBJ_JOINT,
        name1=FINGER_JOINTS[1],
        name2=FINGER_JOINTS[0],
        data=np.array([0.0, 1.0, 0.0, 0.0, 0.0] + [0.0] * 7),  # l = r
    )
    tendon = spec.add_tendon(name=GRIPPER_TENDON)
    for finger_joint in FINGER_JOINTS:
        tendon.wrap_joint(finger_joint, 0.5)
    actuator = spec.add_actuator(name=GRIPPER_ACTUATOR, target=GRIPPER_TENDON)
    actuator.trntype = mujoco.mjtTrn.mjTRN_TENDON
    actuator.set_to_position(kp=GRIPPER.kp_n_per_m)
    actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    actuator.ctrlrange = FINGER_OPENING_RANGE_M
    actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    actuator.forcerange = (-2 * GRIPPER.effort_limit_n, 2 * GRIPPER.effort_limit_n)


def _add_video_camera(spec: mujoco.MjSpec) -> None:
    """A fixed world camera that sees arm, table, object and goal, for demo videos."""
    _add_world_camera(spec, VIDEO_CAMERA, VIDEO_CAMERA_POS_M, VIDEO_CAMERA_LOOKAT_M)


def _add_calibration_board(spec: mujoco.MjSpec) -> None:
    """The ChArUco board on the gripper (BOARD_CENTRE_IN_GRIPPER_M, BOARD_QUAT_IN_GRIPPER)."""
    rotation = np.empty(9)
    mujoco.mju_quat2Mat(rotation, np.array(BOARD_QUAT_IN_GRIPPER))
    half = np.array([*np.divide(CALIBRATION_BOARD.size_m, 2), 0.0])
    origin = np.array(BOARD_CENTRE_IN_GRIPPER_M) - rotation.reshape(3, 3) @ half
    add_board(
        spec, CALIBRATION_BOARD, spec.body(GRIPPER_BODY), tuple(origin), BOARD_QUAT_IN_GRIPPER
    )


def _add_world_camera(
    spec: mujoco.MjSpec,
    name: str,
    pos_m: tuple[float, float, float],
    lookat_m: tuple[float, float, float],
    fovy_deg: float = 45.0,
) -> None:
    """A camera fixed in the world at `pos_m`, looking at `lookat_m`, horizon level."""
    camera = spec.worldbody.add_camera(name=name, pos=pos_m, fovy=fovy_deg)
    forward = np.subtract(lookat_m, pos_m)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    mat = np.column_stack([right, up, -forward]).ravel()  # camera looks along its -z
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat)
    camera.quat = quat


def _set_options(spec: mujoco.MjSpec) -> None:
    """Solver settings: keep the shipped 2 ms step; cap iterations (contacts are few)."""
    spec.option.timestep = 0.002
    spec.option.iterations = 20
    spec.option.ls_iterations = 10
