"""Build arm3, a small three-joint arm, from MjSpec primitives (capsules, hinges, servos).

No asset files: every body, joint, actuator, site and camera is added here, so the model is
its own provenance. README.md next to this file gives the numbers' reasons and the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

BASE_HEIGHT_M = 0.10  # the pedestal top, where the yaw joint sits
EE_SITE = "ee"
GOAL_BODY = "goal"
VIDEO_CAMERA = "video"
# The camera frames the whole workspace (a 0.45 m reach around the pedestal) from the front
# left, as close as keeps the arm's full swing in frame (tests/test_video_framing.py).
VIDEO_CAMERA_POS_M = (0.358, -1.004, 0.579)
VIDEO_CAMERA_LOOKAT_M = (-0.008, 0.002, 0.292)
# Links collide with the floor and the pedestal, never with each other: contype & conaffinity.
# The turret sits on the pedestal and turns on it, so it touches nothing.
_LINK, _GROUND = 2, 1


@dataclass(frozen=True)
class Link:
    """One link: its joint (a hinge about `axis`), its servo and its capsule.

    The capsule runs from the joint along `direction` for `length_m`; the child link's joint
    sits at its end. Gains: kp = w^2 I, kv = 2 z w I with w = 30 rad/s, z = 1 and I the
    joint-space inertia at the rest pose (armature included), rounded.
    """

    name: str
    joint: str
    axis: tuple[float, float, float]
    range_rad: tuple[float, float]
    direction: tuple[float, float, float]
    length_m: float
    radius_m: float
    mass_kg: float
    effort_limit_nm: float
    kp_nm_per_rad: float
    kv_nms_per_rad: float
    armature_kgm2: float = 0.01
    damping_nms_per_rad: float = 0.05


LINKS = (
    Link("turret", "base_yaw", (0, 0, 1), (-2.6, 2.6), (0, 0, 1), 0.04, 0.045, 0.4,
         4.0, 16.0, 1.1),
    Link("upper_arm", "shoulder", (0, 1, 0), (-1.2, 1.2), (0, 0, 1), 0.25, 0.03, 0.8,
         12.0, 60.0, 4.0),
    Link("forearm", "elbow", (0, 1, 0), (-2.0, 1.0), (1, 0, 0), 0.20, 0.025, 0.5,
         6.0, 16.0, 1.0),
)  # fmt: skip
SCENES = ("reach",)


def build_spec(scene: str) -> mujoco.MjSpec:
    """A fresh MjSpec of arm3 in `scene` (one of SCENES): floor, pedestal, arm, goal marker."""
    if scene not in SCENES:
        raise ValueError(f"arm3 has no scene {scene!r}; scenes: {SCENES}")
    spec = mujoco.MjSpec()
    spec.modelname = f"arm3_{scene}"
    spec.compiler.degree = False  # every angle here is in rad
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    _add_ground(spec)
    tip = _add_arm(spec)
    tip.add_site(name=EE_SITE, pos=(LINKS[-1].length_m, 0, 0), size=(0.015, 0, 0),
                 rgba=(0.1, 0.6, 1.0, 1.0))  # fmt: skip
    _add_goal_marker(spec)
    _add_video_camera(spec)
    return spec


def _add_ground(spec: mujoco.MjSpec) -> None:
    """A floor, a light and the pedestal the arm stands on."""
    world = spec.worldbody
    world.add_light(pos=(0, 0, 2.0), dir=(0, 0, -1), diffuse=(0.8, 0.8, 0.8))
    ground = {"contype": _GROUND, "conaffinity": _LINK}
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=(1.5, 1.5, 0.05),
                   rgba=(0.85, 0.85, 0.8, 1.0), **ground)  # fmt: skip
    world.add_geom(name="pedestal", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                   size=(0.06, BASE_HEIGHT_M / 2, 0), pos=(0, 0, BASE_HEIGHT_M / 2),
                   rgba=(0.3, 0.3, 0.3, 1.0), **ground)  # fmt: skip


def _add_arm(spec: mujoco.MjSpec) -> mujoco.MjsBody:
    """The chain of LINKS, each with its servo; returns the last link's body."""
    parent, origin = spec.worldbody, (0.0, 0.0, BASE_HEIGHT_M)
    for index, link in enumerate(LINKS):
        body = parent.add_body(name=link.name, pos=origin)
        body.gravcomp = 1.0  # applied through the actuators, within their effort limits
        _add_joint(body, link)
        end = tuple(link.length_m * np.asarray(link.direction, dtype=float))
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=(0, 0, 0, *end),
                      size=(link.radius_m, 0, 0), mass=link.mass_kg,
                      rgba=(0.9, 0.5, 0.1, 1.0), contype=_LINK if index else 0,
                      conaffinity=_GROUND if index else 0)  # fmt: skip
        _add_servo(spec, link)
        parent, origin = body, end
    return parent


def _add_joint(body: mujoco.MjsBody, link: Link) -> None:
    joint = body.add_joint(name=link.joint, type=mujoco.mjtJoint.mjJNT_HINGE, axis=link.axis,
                           range=link.range_rad, armature=link.armature_kgm2)  # fmt: skip
    joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
    joint.damping = [link.damping_nms_per_rad, 0.0, 0.0]
    joint.actgravcomp = True
    joint.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
    joint.actfrcrange = (-link.effort_limit_nm, link.effort_limit_nm)


def _add_servo(spec: mujoco.MjSpec, link: Link) -> None:
    """A position servo on the joint; its target range is the joint range."""
    actuator = spec.add_actuator(name=link.joint, target=link.joint)
    actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
    actuator.set_to_position(kp=link.kp_nm_per_rad, kv=link.kv_nms_per_rad)
    actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    actuator.ctrlrange = link.range_rad
    actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    actuator.forcerange = (-link.effort_limit_nm, link.effort_limit_nm)


def _add_goal_marker(spec: mujoco.MjSpec) -> None:
    """A mocap body (no DoF) with a sphere that never collides: where the goal is."""
    body = spec.worldbody.add_body(name=GOAL_BODY, mocap=True, pos=(0.2, 0.0, 0.35))
    body.add_site(name="goal", size=(0.02, 0, 0), rgba=(1.0, 0.1, 0.1, 0.6))


def _add_video_camera(spec: mujoco.MjSpec) -> None:
    """A fixed world camera aimed at VIDEO_CAMERA_LOOKAT_M (looks along its -z)."""
    forward = np.subtract(VIDEO_CAMERA_LOOKAT_M, VIDEO_CAMERA_POS_M)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, up, -forward]).ravel())
    spec.worldbody.add_camera(name=VIDEO_CAMERA, pos=VIDEO_CAMERA_POS_M, quat=quat, fovy=45.0)
