"""What a robot reports and accepts on the topic contract, stated as data per robot.

`joint_states` carries the robot's 1-DoF joints (never the manipulated object's free joint);
`joint_command` carries position targets by *command name*. A command name is the name a
ros2_control joint_trajectory_controller would use: the joint a servo drives (Fetch arm),
or the actuator itself where one actuator moves a coupled pair (Fetch gripper, the hand's
tendon-coupled distal joints). The twin, the hardware drivers and the policy node all read
these tables (`sim/robots/<robot>/robot.yaml`), so the order and names are never implied
by position in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sim.robots import get_robot
from sim.twin import Twin


@dataclass(frozen=True)
class RobotIO:
    """Names and addresses of one robot's reported joints and commanded targets."""

    robot: str
    joint_names: tuple[str, ...]
    command_names: tuple[str, ...]
    command_actuators: tuple[str, ...]
    qpos_indices: np.ndarray
    qvel_indices: np.ndarray
    actuator_ids: np.ndarray

    @classmethod
    def of(cls, robot: str, twin: Twin) -> RobotIO:
        """The robot's reported joints and command table (its robot.yaml), in `twin`."""
        model = twin.model
        description = get_robot(robot)
        joints, actuators = description.joints, description.command_actuators
        return cls(
            robot=robot,
            joint_names=joints,
            command_names=description.command_names,
            command_actuators=actuators,
            qpos_indices=twin.qpos_indices(joints),
            qvel_indices=twin.qvel_indices(joints),
            actuator_ids=np.array([model.actuator(a).id for a in actuators], dtype=np.intp),
        )

    def actuator_of(self, command_name: str) -> int:
        """The actuator id a command name drives."""
        return int(self.actuator_ids[self._command_index[command_name]])

    @cached_property
    def _command_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.command_names)}

    def command_limits(self, twin: Twin) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest target of each command name (the actuators' ctrlrange)."""
        ranges = twin.model.actuator_ctrlrange[self.actuator_ids]
        limited = twin.model.actuator_ctrllimited[self.actuator_ids].astype(bool)
        low = np.where(limited, ranges[:, 0], -np.inf)
        high = np.where(limited, ranges[:, 1], np.inf)
        return low, high
