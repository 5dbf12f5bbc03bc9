"""A calibration session: captures (the arm's measured joints and one image per camera at each
planned pose), the MCAP they are recorded in, and what solving them writes.

Run: `twinbridge calibrate cameras --robot fetch --bag out/calibration/calibration.mcap`
(solves a recording again; without `--bag` the command records one first).

The recording holds, per capture, the measured joint state on `<ns>/calibration/capture`
(sensor_msgs/JointState, stamped at the capture) and each camera's image_raw and
camera_info captured after it. The gripper's pose at each capture comes from those measured
joints through the twin's forward kinematics (`gripper_poses`), as on a real robot where
the encoders are all that is known. `solve_session` detects the board, solves the rig
(calibration/rig.py) and `write_session` writes the rig file, one ROS camera_info YAML per
camera and a PNG per camera of detected corners (green) against reprojected ones (red).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import mujoco
import numpy as np

from calibration.board import describe
from calibration.detect import BoardDetector, Detection
from calibration.errors import CalibrationError
from calibration.rig import CameraSolution, nominal_intrinsics, solve_rig
from hardware.recording.reader import BagReader
from sim.calibration_board import BoardSpec
from sim.camera_calibration import RigCalibration
from sim.files import atomic_write

CAPTURE_TOPIC = "calibration/capture"  # under the robot's namespace
GRIPPER_BODY = "gripper_link"


@dataclass
class Capture:
    """One planned pose: the arm's measured joints and each camera's image there."""

    joints: dict[str, float]
    images: dict[str, np.ndarray]  # camera -> RGB (height, width, 3)


def image_topic(namespace: str, index: int) -> str:
    return f"/{namespace}/camera_{index}/image_raw"


def read_captures(path: str | Path, namespace: str, cameras: Sequence[str]) -> list[Capture]:
    """The captures of a recorded session: each capture marker with, per camera, the first
    image stamped at or after it (the arm stood still in between)."""
    reader = BagReader(path)
    capture_topic = f"/{namespace}/{CAPTURE_TOPIC}"
    topics = [capture_topic, *(image_topic(namespace, i) for i in range(len(cameras)))]
    reader.require_topics(topics)
    markers: list[tuple[int, dict[str, float]]] = []
    images: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in range(len(cameras))}
    for topic, _, msg in reader.messages(topics):
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if topic == capture_topic:
            markers.append((stamp, dict(zip(msg.name, msg.position, strict=True))))
        else:
            index = int(topic.split("camera_")[1].split("/")[0])
            images[index].append((stamp, _rgb(msg)))
    captures = []
    for stamp, joints in markers:
        views = {}
        for index, name in enumerate(cameras):
            after = [image for image_stamp, image in images[index] if image_stamp >= stamp]
            if after:
                views[name] = after[0]
        captures.append(Capture(joints, views))
    return captures


def _rgb(msg: Any) -> np.ndarray:
    if msg.encoding != "rgb8":
        raise CalibrationError(f"image encoding {msg.encoding!r}: calibration reads rgb8")
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    return rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3).copy()


def gripper_poses(
    model: mujoco.MjModel, captures: Sequence[Capture], body: str = GRIPPER_BODY
) -> list[np.ndarray]:
    """The gripper body's pose (4x4, world) at each capture, from its measured joints."""
    data = mujoco.MjData(model)
    body_id = model.body(body).id
    poses = []
    for capture in captures:
        for name, value in capture.joints.items():
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) >= 0:
                data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
        mujoco.mj_kinematics(model, data)
        pose = np.eye(4)
        pose[:3, :3] = data.xmat[body_id].reshape(3, 3)
        pose[:3, 3] = data.xpos[body_id]
        poses.append(pose)
    return poses


@dataclass
class SessionResult:
    rig: RigCalibration
    solutions: dict[str, CameraSolution]
    views: dict[str, list[Detection | None]]
    grippers: list[np.ndarray]


def solve_session(
    robot: str,
    model: mujoco.MjModel,
    captures: Sequence[Capture],
    cameras: Sequence[str],
    board: BoardSpec,
    source: dict[str, Any] | None = None,
) -> SessionResult:
    """Detect the board in every captured image, then solve the rig (calibration/rig.py)."""
    detector = BoardDetector(board)
    views: dict[str, list[Detection | None]] = {name: [] for name in cameras}
    sizes: dict[str, tuple[int, int]] = {}
    for capture in captures:
        for name in cameras:
            image = capture.images.get(name)
            views[name].append(None if image is None else detector.detect(image))
            if image is not None:
                sizes[name] = (image.shape[1], image.shape[0])
    missing = [name for name in cameras if name not in sizes]
    if missing:
        raise CalibrationError(
            f"no image from camera(s) {missing} in {len(captures)} captures: is their "
            "driver running and publishing camera_<n>/image_raw?"
        )
    grippers = gripper_poses(model, captures)
    rig, solutions = solve_rig(
        robot, views, grippers, sizes, source, nominal_intrinsics(model, sizes)
    )
    return SessionResult(rig, solutions, views, grippers)


def reprojection_image(
    image: np.ndarray, detection: Detection, solution: CameraSolution, gripper: np.ndarray
) -> np.ndarray:
    """`image` with the detected corners (green circles) and the corners the solution puts
    there (red crosses: board on the gripper, gripper from the joints, through the camera)."""
    intrinsics = solution.intrinsics.intrinsics
    board_in_world = gripper @ solution.pose.board_to_gripper
    to_camera = solution.pose.world_to_camera @ board_in_world
    points = detection.object_points @ to_camera[:3, :3].T + to_camera[:3, 3]
    projected, _ = cv2.projectPoints(
        points, np.zeros(3), np.zeros(3), intrinsics.matrix, intrinsics.distortion_array
    )
    out = np.ascontiguousarray(image.copy())
    for u, v in detection.image_points:
        cv2.circle(out, (round(u), round(v)), 5, (0, 200, 0), 1, cv2.LINE_AA)
    for u, v in projected.reshape(-1, 2):
        cv2.drawMarker(out, (round(u), round(v)), (230, 0, 0), cv2.MARKER_CROSS, 7, 1)
    return out


def write_session(
    out_dir: str | Path, result: SessionResult, captures: Sequence[Capture]
) -> dict[str, Path]:
    """The rig file, per-camera camera_info YAMLs and residual PNGs; their paths by role."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"rig": result.rig.write(out / "rig.yaml")}
    for path in result.rig.write_camera_infos(out / "camera_info"):
        paths[f"camera_info {path.stem}"] = path
    for name, solution in result.solutions.items():
        views = result.views[name]
        best = max(solution.intrinsics.used_views, key=lambda i: len(views[i] or ()))
        detection = views[best]
        if detection is None:  # a used view always has its detection
            continue
        image = reprojection_image(
            captures[best].images[name], detection, solution, result.grippers[best]
        )
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise CalibrationError(f"could not encode the residual image of {name}")
        path = out / f"residuals_{name}.png"
        atomic_write(path, png.tobytes())
        paths[f"residuals {name}"] = path
    return paths


def residual_lines(result: SessionResult) -> list[str]:
    """One line per camera: what a person checks before trusting the file."""
    lines = []
    for name, solution in result.solutions.items():
        i = solution.intrinsics.intrinsics
        lines.append(
            f"{name}: {len(solution.intrinsics.used_views)} views, intrinsics RMS "
            f"{solution.intrinsics.rms_px:.3f} px, hand-eye RMS {solution.pose.rms_px:.3f} "
            f"px; fx {i.fx:.1f} fy {i.fy:.1f} cx {i.cx:.1f} cy {i.cy:.1f}"
        )
    return lines


def recording_source(path: str | Path, board: BoardSpec) -> dict[str, Any]:
    """Where a rig file's numbers came from: the recording, its sha256, the board, when."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "recording": str(path),
        "recording_sha256": digest.hexdigest(),
        "board": describe(board),
        "solved_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


MEASUREMENT_SLACK_RAD = 0.005  # encoder noise: a measured position this far out is not a move


def motion_report(path: str | Path, robot: str) -> str:
    """One line on the recorded arm motion against the robot's limits: every measured
    position inside its command's range (give or take MEASUREMENT_SLACK_RAD) and the
    fastest speed against its velocity_max (joints whose command shares their name), or
    what broke them."""
    from sim.robots import get_robot

    commands = {c.name: c for c in get_robot(robot).commands}
    reader = BagReader(path)
    topic = next(t for t in reader.topics() if t.endswith("/joint_states"))
    worst_speed, outside = 0.0, []
    samples = 0
    for _, _, msg in reader.messages([topic]):
        samples += 1
        for i, name in enumerate(msg.name):
            command = commands.get(name)
            if command is None:
                continue
            position = msg.position[i]
            slack = MEASUREMENT_SLACK_RAD
            if not command.position_min - slack <= position <= command.position_max + slack:
                outside.append(f"{name} {position:.3f}")
            if len(msg.velocity) > i:
                worst_speed = max(worst_speed, abs(msg.velocity[i]) / command.velocity_max)
    if outside:
        return f"arm motion: OUTSIDE the limits in {len(outside)} samples ({outside[0]}, ...)"
    return (
        f"arm motion: {samples} joint states recorded, all inside the limits; fastest joint "
        f"at {worst_speed:.0%} of its velocity_max"
    )
