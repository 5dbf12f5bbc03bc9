"""A robot's hardware tables: its contract names and limits as the safety layer and the
serial device see them, built from the robot's checked-in `robot.yaml` (no physics engine).

Run: `python -c "from hardware.robots import robot_tables; print(robot_tables('fetch').limits)"`

The tables live in `sim/robots/<robot>/robot.yaml` (`sim.robots.get_robot`); a test checks
them against the twin's model. A YAML override can only narrow the limits
(`hardware.safety.JointLimits.with_overrides`). The emulator announces the same tables in
its DeviceInfo, and the driver refuses a device whose tables differ (RELIABILITY.md R11).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from hardware.protocol import CommandChannel, DeviceInfo
from hardware.safety import JointLimits
from sim.robots import RobotDescription, get_robot

FIRMWARE = (1, 0, 0)


@dataclass(frozen=True)
class RobotTables:
    """The robot's contract names and limits, as arrays for the safety layer and the wire."""

    description: RobotDescription
    joint_names: tuple[str, ...]  # reported in State, robot.yaml order
    limits: JointLimits  # per command name, robot.yaml order
    # servo positions = servo_from_joints @ joint positions (a servo may drive a coupled
    # pair: the Fetch gripper, the hand's distal tendons); for backends that see joints only.
    servo_from_joints: np.ndarray

    @property
    def command_names(self) -> tuple[str, ...]:
        return self.limits.names

    def device_info(self, reports_object_pose: bool, supports_scene_reset: bool) -> DeviceInfo:
        """What a correct device of this robot announces."""
        lim = self.limits
        channels = tuple(
            CommandChannel(
                name,
                *(
                    float(x[i])
                    for x in (lim.position_min, lim.position_max, lim.velocity_max, lim.effort_max)
                ),
            )
            for i, name in enumerate(lim.names)
        )
        return DeviceInfo(
            model=self.description.device_model,
            firmware=FIRMWARE,
            calibration_hash=self.calibration_hash,
            watchdog_ms=30,
            state_period_ms=10,
            state_joints=self.joint_names,
            commands=channels,
            reports_object_pose=reports_object_pose,
            supports_scene_reset=supports_scene_reset,
        )

    @property
    def calibration_hash(self) -> int:
        """CRC-32 of the joint tables and limits (as float32, as the wire carries them)."""
        lim = self.limits
        table = {
            "joints": self.joint_names,
            "commands": lim.names,
            "limits": [
                np.asarray(x, dtype=np.float32).tolist()
                for x in (lim.position_min, lim.position_max, lim.velocity_max, lim.effort_max)
            ],
        }
        return zlib.crc32(json.dumps(table, sort_keys=True).encode())


@cache
def robot_tables(robot: str) -> RobotTables:
    """Names and limits of `robot`, from its robot.yaml."""
    description = get_robot(robot)
    commands = description.commands

    def column(key: str) -> np.ndarray:
        return np.array([getattr(c, key) for c in commands], dtype=np.float64)

    limits = JointLimits(
        names=description.command_names,
        position_min=column("position_min"),
        position_max=column("position_max"),
        velocity_max=column("velocity_max"),
        acceleration_max=column("acceleration_max"),
        effort_max=column("effort_max"),
        position_margin=description.position_margin,
    )
    matrix = np.array(description.servo_from_joints, dtype=np.float64)
    return RobotTables(description, description.joints, limits, matrix)
