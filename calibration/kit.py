"""What calibrating a robot's rig needs from its folder: robot.yaml's `calibration:` (the
task and scene whose world carries the board, the gripper and board bodies, the arm joints
that move it) and its builder's `CALIBRATION_BOARD`.

Run: `python -c "from calibration.kit import CalibrationKit; print(CalibrationKit.of('fetch'))"`
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import mujoco
import numpy as np

from calibration.errors import CalibrationError
from calibration.poses import PoseGenerator
from sim.calibration_board import BoardSpec
from sim.robots import get_robot
from sim.twin import Twin


@dataclass(frozen=True)
class CalibrationKit:
    robot: str
    task: str
    scene: str
    gripper_body: str
    board_body: str
    arm_joints: tuple[str, ...]
    board: BoardSpec
    cameras: tuple[str, ...]  # the rig's (robot.yaml rig_cameras), camera_0.. in this order

    @classmethod
    def of(cls, robot: str) -> CalibrationKit:
        description = get_robot(robot)
        kit = dict(description.calibration)
        if not kit or not description.rig_cameras:
            raise CalibrationError(
                f"robot {robot!r} declares no camera calibration (robot.yaml `calibration:` "
                "and `rig_cameras:`); the fetch does"
            )
        board = importlib.import_module(description.builder_module).CALIBRATION_BOARD
        try:
            return cls(
                robot, kit["task"], kit["scene"], kit["gripper_body"], kit["board_body"],
                tuple(kit["arm_joints"]), board, description.rig_cameras,
            )  # fmt: skip
        except KeyError as e:
            raise CalibrationError(f"robot {robot!r}: robot.yaml calibration lacks {e}") from e

    def nominal_twin(self) -> Twin:
        """The twin with the board, as drawn: poses are planned and gripper poses computed
        on it (the host knows nothing better of the rig)."""
        return Twin.load(self.robot, self.scene)

    def pose_generator(self, twin: Twin, image_size_px: tuple[int, int]) -> PoseGenerator:
        """The planner of board poses for this robot's arm and board, on `twin`."""
        return PoseGenerator(
            twin.model, self.arm_joints, self.gripper_body, self.board,
            self.board_in_gripper(twin), image_size_px,
        )  # fmt: skip

    def arm_positions(self, twin: Twin) -> np.ndarray:
        """The arm joints' positions in `twin` now (the arm joints' order)."""
        model = twin.model
        return twin.data.qpos[[model.jnt_qposadr[model.joint(j).id] for j in self.arm_joints]]

    def board_in_gripper(self, twin: Twin) -> np.ndarray:
        """4x4 pose of the board body in the gripper body's frame, as the model mounts it."""
        return np.linalg.inv(_pose(twin, self.gripper_body)) @ _pose(twin, self.board_body)


def _pose(twin: Twin, body: str) -> np.ndarray:
    mujoco.mj_forward(twin.model, twin.data)
    index = twin.model.body(body).id
    out = np.eye(4)
    out[:3, :3] = twin.data.xmat[index].reshape(3, 3)
    out[:3, 3] = twin.data.xpos[index]
    return out
