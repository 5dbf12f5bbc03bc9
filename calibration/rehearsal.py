"""A calibration run rendered without the emulator: the planned poses, images from a rig
whose true cameras differ from the nominal ones, and gripper poses from noisy encoders.

It is how the solver's accuracy is measured over many rigs in seconds each (the emulator
runs the same run in real time, minutes each): `tests/test_calibration.py` solves one and
`bench/calibration_accuracy.py` sweeps deviation sets. The poses are planned on the nominal
twin, as the host does; the images come from the same `CameraDeviations` the emulator
applies, and the measured joints carry Gaussian encoder noise averaged over the samples one
capture takes (`ros_ws/calibration_client.py`), before forward kinematics.

Run: `.venv/bin/python bench/calibration_accuracy.py --rigs 40 --poses-per-camera 14`
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import mujoco
import numpy as np

from calibration.detect import BoardDetector, Detection
from calibration.kit import CalibrationKit
from calibration.poses import CalibrationPose, PosePlan
from hardware.camera_rig import CameraDeviations
from sim.camera_calibration import camera_intrinsics_px

IMAGE_SIZE_PX = (640, 480)  # the emulated rig's default
ENCODER_NOISE_RAD = 0.5e-3  # the emulator's default position noise
SAMPLES_PER_CAPTURE = 8  # joint states averaged per capture (calibration_client)


@dataclass
class Rehearsal:
    """What a run gave the solver, and the truth it did not see."""

    model: mujoco.MjModel  # the true rig (cameras moved by the deviations)
    data: mujoco.MjData  # at the last pose
    views: dict[str, list[Detection | None]]
    grippers: list[np.ndarray]  # measured: forward kinematics of the noisy joints

    def true_camera(self, name: str) -> tuple[tuple[float, float, float, float], np.ndarray]:
        """(fx, fy, cx, cy) and the 4x4 optical-frame pose in world of a true camera."""
        cam = self.model.camera(name).id
        pose = np.eye(4)
        pose[:3, :3] = self.data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        pose[:3, 3] = self.data.cam_xpos[cam]
        return camera_intrinsics_px(self.model, cam, *IMAGE_SIZE_PX), pose


@functools.cache
def planned_poses(robot: str, poses_per_camera: int) -> tuple[CalibrationPose, ...]:
    """The run's poses, planned on the nominal twin from its start pose, as the command
    plans them from the arm's (deterministic, so planned once)."""
    kit = CalibrationKit.of(robot)
    nominal = kit.nominal_twin()
    planner = kit.pose_generator(nominal, IMAGE_SIZE_PX)
    plan = PosePlan(poses_per_camera=poses_per_camera)
    return tuple(planner.plan(kit.cameras, plan, kit.arm_positions(nominal)))


def rehearse(
    deviations: CameraDeviations | None,
    poses_per_camera: int = 24,
    encoder_noise_rad: float = ENCODER_NOISE_RAD,
    noise_seed: int = 0,
    robot: str = "fetch",
) -> Rehearsal:
    """Render the run for `robot`'s rig (`deviations` None: the nominal cameras)."""
    kit = CalibrationKit.of(robot)
    poses = planned_poses(robot, poses_per_camera)
    true = kit.nominal_twin()
    if deviations is not None:
        deviations.apply(true.model, kit.cameras, *IMAGE_SIZE_PX)
    model, data = true.model, true.data
    measured = mujoco.MjData(model)
    joints = np.array([model.jnt_qposadr[model.joint(j).id] for j in kit.arm_joints])
    gripper = model.body(kit.gripper_body).id
    noise = np.random.default_rng(noise_seed)
    noise_std = encoder_noise_rad / np.sqrt(SAMPLES_PER_CAPTURE)
    renderer = mujoco.Renderer(model, IMAGE_SIZE_PX[1], IMAGE_SIZE_PX[0])
    detector = BoardDetector(kit.board)
    views: dict[str, list[Detection | None]] = {name: [] for name in kit.cameras}
    grippers = []
    try:
        for pose in poses:
            data.qpos[joints] = pose.joints
            mujoco.mj_forward(model, data)
            measured.qpos[:] = data.qpos
            measured.qpos[joints] += noise.normal(0.0, noise_std, len(joints))
            mujoco.mj_kinematics(model, measured)
            grip = np.eye(4)
            grip[:3, :3] = measured.xmat[gripper].reshape(3, 3)
            grip[:3, 3] = measured.xpos[gripper]
            grippers.append(grip)
            for name in kit.cameras:
                renderer.update_scene(data, name)
                views[name].append(detector.detect(renderer.render()))
    finally:
        renderer.close()
    return Rehearsal(model, data, views, grippers)
