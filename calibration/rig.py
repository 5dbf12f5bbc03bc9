"""Solving a whole rig: every camera's intrinsics, then its pose, into one calibration file.

Run: `twinbridge calibrate cameras --robot fetch --hardware emulator` (records, then calls
`solve_rig`); `--bag FILE.mcap` solves a recording again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import mujoco
import numpy as np

from calibration.detect import Detection
from calibration.handeye import EyeToHandResult, solve_eye_to_hand
from calibration.intrinsics import IntrinsicsResult, calibrate_intrinsics
from sim.camera_calibration import (
    CameraCalibration,
    Intrinsics,
    RigCalibration,
    camera_intrinsics_px,
)


@dataclass
class CameraSolution:
    """One camera's solution with what a person checks: residuals and views used."""

    intrinsics: IntrinsicsResult
    pose: EyeToHandResult

    def calibration(self) -> CameraCalibration:
        i = self.intrinsics.intrinsics
        pose = self.pose.camera_pose_world
        quaternion = np.empty(4)
        mujoco.mju_mat2Quat(quaternion, pose[:3, :3].ravel())
        return CameraCalibration(
            **asdict(i),
            position_m=tuple(float(x) for x in pose[:3, 3]),  # type: ignore[arg-type]
            quaternion_wxyz=tuple(float(x) for x in quaternion),  # type: ignore[arg-type]
            rms_px=self.intrinsics.rms_px,
            pose_rms_px=self.pose.rms_px, views=len(self.intrinsics.used_views),
        )  # fmt: skip


def nominal_intrinsics(
    model: mujoco.MjModel, image_sizes_px: Mapping[str, tuple[int, int]]
) -> dict[str, Intrinsics]:
    """The twin's camera intrinsics at the sizes the rig's images have."""
    return {
        name: Intrinsics(
            width, height, *camera_intrinsics_px(model, model.camera(name).id, width, height)
        )
        for name, (width, height) in image_sizes_px.items()
    }


def solve_rig(
    robot: str,
    views: Mapping[str, Sequence[Detection | None]],
    gripper_poses: Sequence[np.ndarray],
    image_sizes_px: Mapping[str, tuple[int, int]],
    source: dict[str, Any] | None = None,
    nominal: Mapping[str, Intrinsics] | None = None,
) -> tuple[RigCalibration, dict[str, CameraSolution]]:
    """Each camera's intrinsics from its own views, then its pose from the views and the
    gripper's pose at each (`gripper_poses[i]` belongs to every camera's view i).
    `nominal` (the twin's intrinsics, `nominal_intrinsics`) gives the solver a start."""
    solutions: dict[str, CameraSolution] = {}
    for camera, camera_views in views.items():
        intrinsics = calibrate_intrinsics(
            camera, camera_views, image_sizes_px[camera],
            nominal=None if nominal is None else nominal.get(camera),
        )  # fmt: skip
        kept = [
            view if i in intrinsics.used_views else None for i, view in enumerate(camera_views)
        ]
        pose = solve_eye_to_hand(camera, intrinsics.intrinsics, kept, gripper_poses)
        solutions[camera] = CameraSolution(intrinsics, pose)
    rig = RigCalibration(
        robot=robot,
        cameras={name: solution.calibration() for name, solution in solutions.items()},
        source=dict(source or {}),
    )
    return rig, solutions
