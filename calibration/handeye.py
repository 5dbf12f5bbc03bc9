"""Where a fixed camera is, from a board carried by the gripper (eye-to-hand calibration).

Per view i the camera sees the board at `C_i` (board -> camera, from the board's corners and
the camera's intrinsics) while forward kinematics of the measured joints put the gripper at
`G_i` (gripper -> world). With X the world -> camera transform and Z the board -> gripper
one, every view says C_i = X G_i Z. OpenCV's `calibrateRobotWorldHandEye` solves this form
(its eye-in-hand naming, with the roles of camera and board swapped: inverted both sides
read C_i^-1 = Z^-1 G_i^-1 X^-1); its closed-form answer is then refined by least squares on
every corner's reprojection error (scipy), so the camera pose is the one that best explains
the pixels, not only the pose pairs.

A camera that saw the board rotate about one axis only cannot be solved (the translation
along that axis is free): `solve_eye_to_hand` refuses it naming the camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from calibration.detect import Detection
from calibration.errors import CalibrationError
from sim.camera_calibration import Intrinsics

MIN_VIEWS = 5
# The gripper's orientations must span at least this angle about a second axis: with
# rotations about a single axis the hand-eye problem is degenerate (Tsai and Lenz 1989).
MIN_SECOND_AXIS_DEG = 5.0


@dataclass
class EyeToHandResult:
    """A fixed camera's pose and the board's pose on the gripper."""

    world_to_camera: np.ndarray  # 4x4, x_cam = T x_world (OpenCV optical frame)
    board_to_gripper: np.ndarray  # 4x4
    rms_px: float  # reprojection RMS over all corners, after refinement
    views: int

    @property
    def camera_pose_world(self) -> np.ndarray:
        """4x4 pose of the camera's optical frame (x right, y down, z forward) in world."""
        return invert(self.world_to_camera)


def transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 homogeneous transform from a rotation (3x3 or Rodrigues 3-vector) and translation."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape == (3,) or rotation.shape == (3, 1):
        rotation = cv2.Rodrigues(rotation.reshape(3, 1))[0]
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return out


def invert(t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = t[:3, :3].T
    out[:3, 3] = -t[:3, :3].T @ t[:3, 3]
    return out


def board_pose(detection: Detection, intrinsics: Intrinsics) -> np.ndarray:
    """Board -> camera transform of one view (iterative PnP on its corners)."""
    ok, rvec, tvec = cv2.solvePnP(
        detection.object_points, detection.image_points, intrinsics.matrix,
        intrinsics.distortion_array, flags=cv2.SOLVEPNP_ITERATIVE,
    )  # fmt: skip
    if not ok:
        raise CalibrationError("solvePnP failed on a view that had a board")
    return transform(rvec, tvec)


def solve_eye_to_hand(
    camera: str,
    intrinsics: Intrinsics,
    detections: Sequence[Detection | None],
    gripper_poses: Sequence[np.ndarray],
) -> EyeToHandResult:
    """The pose of `camera` (fixed in the world) from board views and the gripper's poses
    (4x4 gripper -> world, forward kinematics of the joints measured at each view)."""
    pairs = [
        (d, np.asarray(g)) for d, g in zip(detections, gripper_poses, strict=True) if d is not None
    ]
    if len(pairs) < MIN_VIEWS:
        raise CalibrationError(
            f"camera {camera!r}: {len(pairs)} view(s) with the board of {len(detections)}, "
            f"need {MIN_VIEWS} for its pose: move the board through more of its view"
        )
    _require_rotation_spread(camera, [g for _, g in pairs])
    board_in_camera = [board_pose(d, intrinsics) for d, _ in pairs]
    world_to_camera, board_to_gripper = _closed_form(board_in_camera, [g for _, g in pairs])
    return _refine(intrinsics, pairs, world_to_camera, board_to_gripper)


def _closed_form(
    board_in_camera: list[np.ndarray], gripper_in_world: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's robot-world/hand-eye solution, roles swapped for a fixed camera."""
    camera_in_board = [invert(c) for c in board_in_camera]
    world_in_gripper = [invert(g) for g in gripper_in_world]
    r_b2w, t_b2w, r_g2c, t_g2c = cv2.calibrateRobotWorldHandEye(
        [c[:3, :3] for c in camera_in_board], [c[:3, 3:] for c in camera_in_board],
        [w[:3, :3] for w in world_in_gripper], [w[:3, 3:] for w in world_in_gripper],
    )  # fmt: skip
    # OpenCV's "base" is our world and its "world" our camera: base2world = world -> camera;
    # its "gripper2cam" maps our gripper frame into the board's.
    return transform(r_b2w, t_b2w), invert(transform(r_g2c, t_g2c))


def _refine(
    intrinsics: Intrinsics,
    pairs: list[tuple[Detection, np.ndarray]],
    world_to_camera: np.ndarray,
    board_to_gripper: np.ndarray,
) -> EyeToHandResult:
    """Both unknown transforms by least squares on every corner's reprojection error."""
    matrix, distortion = intrinsics.matrix, intrinsics.distortion_array
    observed = np.concatenate([d.image_points for d, _ in pairs])

    def residuals(x: np.ndarray) -> np.ndarray:
        camera, board = transform(x[:3], x[3:6]), transform(x[6:9], x[9:12])
        projected = []
        for detection, gripper in pairs:
            board_to_camera = camera @ gripper @ board
            rvec = cv2.Rodrigues(board_to_camera[:3, :3])[0]
            pixels, _ = cv2.projectPoints(
                detection.object_points, rvec, board_to_camera[:3, 3], matrix, distortion
            )
            projected.append(pixels.reshape(-1, 2))
        return (np.concatenate(projected) - observed).ravel()

    start = np.concatenate([_vector(world_to_camera), _vector(board_to_gripper)])
    fit = least_squares(residuals, start, method="lm", x_scale="jac")
    camera, board = transform(fit.x[:3], fit.x[3:6]), transform(fit.x[6:9], fit.x[9:12])
    rms = float(np.sqrt(np.mean(fit.fun.reshape(-1, 2) ** 2) * 2))
    return EyeToHandResult(camera, board, rms, len(pairs))


def _vector(t: np.ndarray) -> np.ndarray:
    return np.concatenate([cv2.Rodrigues(t[:3, :3])[0].reshape(3), t[:3, 3]])


def _require_rotation_spread(camera: str, gripper_poses: list[np.ndarray]) -> None:
    """Refuse views whose relative rotations all share one axis (degenerate hand-eye)."""
    base = gripper_poses[0][:3, :3]
    axes = []
    for pose in gripper_poses[1:]:
        rvec = cv2.Rodrigues(base.T @ pose[:3, :3])[0].reshape(3)
        if np.linalg.norm(rvec) > np.radians(1.0):
            axes.append(rvec)
    spread = 0.0
    if len(axes) >= 2:
        singular = np.linalg.svd(np.array(axes), compute_uv=False)
        spread = float(np.degrees(singular[1] / np.sqrt(len(axes))))
    if spread < MIN_SECOND_AXIS_DEG:
        raise CalibrationError(
            f"camera {camera!r}: the gripper rotated about one axis only in the "
            f"{len(gripper_poses)} views with the board (spread about a second axis "
            f"{spread:.1f} deg < {MIN_SECOND_AXIS_DEG}); the camera's position along it is "
            "undetermined: include poses that tilt the board about two different axes"
        )
