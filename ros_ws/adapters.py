"""Message <-> plain Python/numpy conversion, in one place for every node.

Inbound conversions only copy fields; whether a message may be applied is decided by the
ROS-independent checks in `sim/contract/command_rules.py` (R12), which these functions call.

R12: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hardware.interface import Measurement
from ros_ws.contract import GOAL_LAYOUTS, ContractError
from sim.contract.command_rules import CommandRules, TrajectoryPoint, validate_trajectory
from sim.contract.samples import JointStateSample, ObjectPose

if TYPE_CHECKING:  # the driver path imports this module, and no physics engine
    from sim.camera_calibration import Intrinsics

WORLD_FRAME = "world"


def to_time(stamp_ns: int) -> Time:
    """A stamp from integer nanoseconds (floats of epoch seconds lose the last digits)."""
    seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=seconds, nanosec=nanoseconds)


def from_time(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_ns(stamp: Time) -> int:
    """A stamp as integer nanoseconds: the exact key to match a command to its state."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def joint_state_msg(sample: JointStateSample) -> JointState:
    msg = JointState()
    msg.header.stamp = to_time(sample.stamp_ns)
    msg.name = list(sample.names)
    msg.position = sample.positions.tolist()
    msg.velocity = sample.velocities.tolist()
    msg.effort = sample.efforts.tolist()
    return msg


def action_msg(names: Sequence[str], action: np.ndarray, stamp_ns: int) -> JointState:
    """An env action as `teleop/action`: a JointState whose names are the action's
    components and whose positions are their values, stamped with the state it answers
    (so a recording pairs the action, the command and the state exactly)."""
    msg = JointState()
    msg.header.stamp = to_time(stamp_ns)
    msg.name = list(names)
    msg.position = [float(v) for v in action]
    return msg


def joint_state_fields(
    msg: JointState,
) -> tuple[int, Sequence[str], Sequence[float], Sequence[float]]:
    """(stamp in ns, names, positions, velocities), unchecked (see validate_joint_state)."""
    return stamp_ns(msg.header.stamp), list(msg.name), list(msg.position), list(msg.velocity)


def measurement_msgs(
    measured: Measurement, stamp_ns: int
) -> tuple[JointState, PoseStamped | None]:
    """A hardware measurement as `joint_states` (+ `object_pose` when tracked), one stamp."""
    sample = JointStateSample(
        stamp_ns, measured.joint_names, measured.positions, measured.velocities, measured.efforts
    )
    pose = measured.object_pose
    pose_out = None
    if pose is not None:
        pose_out = pose_msg(ObjectPose(pose.position, pose.quaternion, stamp_ns))
    return joint_state_msg(sample), pose_out


def pose_msg(pose: ObjectPose) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = to_time(pose.stamp_ns)
    msg.header.frame_id = WORLD_FRAME
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pose.position_m)
    q.w, q.x, q.y, q.z = (float(v) for v in pose.quaternion_wxyz)
    return msg


def pose_from_msg(msg: PoseStamped) -> ObjectPose:
    p, q = msg.pose.position, msg.pose.orientation
    return ObjectPose(
        np.array([p.x, p.y, p.z]), np.array([q.w, q.x, q.y, q.z]), stamp_ns(msg.header.stamp)
    )


def goal_msg(goal: np.ndarray, stamp_ns: int) -> PoseStamped:
    """A goal of a size the contract carries (ros_ws/contract.py: 3 position values, or 7
    with a wxyz quaternion) as a PoseStamped; bringups refuse other tasks before starting."""
    goal = np.asarray(goal, dtype=np.float64)
    if goal.ndim != 1 or goal.size not in GOAL_LAYOUTS:
        raise ContractError(
            f"a goal of {goal.size} values does not fit the contract's PoseStamped goal "
            f"({' or '.join(map(str, GOAL_LAYOUTS))} values)"
        )
    if goal.size == 3:
        goal = np.concatenate((goal, [1.0, 0.0, 0.0, 0.0]))
    return pose_msg(ObjectPose(goal[:3], goal[3:], stamp_ns))


def goal_from_msg(msg: PoseStamped, size: int) -> np.ndarray:
    pose = pose_from_msg(msg)
    values = np.concatenate((pose.position_m, pose.quaternion_wxyz))
    return values[:size].copy()


def trajectory_msg(
    names: Sequence[str], targets: np.ndarray, stamp_ns: int, period_s: float
) -> JointTrajectory:
    """One-point trajectory: reach `targets` in one control period, at rest."""
    msg = JointTrajectory()
    msg.header.stamp = to_time(stamp_ns)
    msg.joint_names = list(names)
    point = JointTrajectoryPoint()
    point.positions = np.asarray(targets, dtype=np.float64).tolist()
    point.velocities = [0.0] * len(names)
    seconds = int(period_s)
    point.time_from_start.sec = seconds
    point.time_from_start.nanosec = round((period_s - seconds) * 1e9)
    msg.points = [point]
    return msg


def trajectory_targets(msg: JointTrajectory, now_s: float, rules: CommandRules) -> dict:
    """The validated targets of a JointTrajectory, or `CommandRejected` with a reason."""
    points = [
        TrajectoryPoint(
            list(p.positions),
            list(p.velocities),
            p.time_from_start.sec + p.time_from_start.nanosec * 1e-9,
        )
        for p in msg.points
    ]
    return validate_trajectory(
        list(msg.joint_names), points, from_time(msg.header.stamp), now_s, rules
    )


def diagnostics_msg(
    stamp_ns: int, name: str, values: Mapping[str, object], message: str = "", level: int = 0
) -> DiagnosticArray:
    """One DiagnosticStatus (level 0 OK, 1 WARN, 2 ERROR) of key/value strings."""
    status = DiagnosticStatus(level=bytes([level]), name=name, message=message)
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = to_time(stamp_ns)
    array.status = [status]
    return array


def diagnostics_values(msg: DiagnosticArray) -> list[tuple[str, str, dict[str, str]]]:
    """(name, message, values) of each status, for readers of `diagnostics`."""
    return [(s.name, s.message, {kv.key: kv.value for kv in s.values}) for s in msg.status]


def image_msgs(
    rgb: np.ndarray, intrinsics: Intrinsics | None, stamp: Time, frame: str
) -> tuple[Image, CameraInfo]:
    """An rgb8 Image and its CameraInfo: pinhole (plumb_bob) from `intrinsics`, or, for a
    camera nobody calibrated, only the size (K, R and P all zeros, as ROS camera drivers
    publish it without a calibration file)."""
    height, width, _ = rgb.shape
    image = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    image.header.stamp, image.header.frame_id = stamp, frame
    image.data = rgb.tobytes()
    info = CameraInfo(height=height, width=width)
    info.header.stamp, info.header.frame_id = stamp, frame
    if intrinsics is None:
        return image, info
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    info.distortion_model = "plumb_bob"
    info.d = list(intrinsics.distortion)
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return image, info
