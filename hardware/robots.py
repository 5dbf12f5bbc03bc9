"""Per-robot hardware tables: what each device is, its joint order and its limits, as data.

Run: `python -c "from hardware.robots import robot_hardware; print(robot_hardware('fetch'))"`

The joint and command order comes from `sim.robot_io.RobotIO` (the topic contract), position
and effort limits from the twin's model (actuator ctrlrange / forcerange), and velocity and
acceleration limits from the tables below (the model has none). A YAML override can only
narrow them (`hardware.safety.JointLimits.with_overrides`). The emulator announces the same
tables in its DeviceInfo, and the driver refuses a device whose tables differ (R11).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import cache

import mujoco
import numpy as np

from hardware.protocol import CommandChannel, DeviceInfo
from hardware.safety import JointLimits
from sim.envs import make_env
from sim.robot_io import RobotIO
from sim.robots.fetch.builder import ARM_JOINTS, ARM_VELOCITY_LIMITS_RAD_S, GRIPPER
from sim.tasks import get_task_spec

FIRMWARE = (1, 0, 0)


@dataclass(frozen=True)
class RobotHardware:
    """One robot's device: model string, the task its emulator runs, limits, safe state.

    `velocity_max` maps a command name to rad/s (or m/s for the Fetch gripper);
    `default_velocity_max` covers the rest. `safe_state` is what every failure path ends
    in: "hold" for an arm that would fall under gravity, "torque_off" for a hand whose
    fingers are safe limp.
    """

    robot: str
    model: str
    emulator_task: str
    velocity_max: tuple[tuple[str, float], ...]
    default_velocity_max: float
    acceleration_max: float
    safe_state: str
    position_margin: float = 0.0


ROBOT_HARDWARE: dict[str, RobotHardware] = {
    # Velocities: the Fetch URDF's <limit velocity> per arm joint (kept with the twin's
    # drives in sim/robots/fetch/builder.py); the gripper's 0.05 m/s.
    "fetch": RobotHardware(
        robot="fetch",
        model="twinbridge-fetch-arm",
        emulator_task="fetch-push",
        velocity_max=(
            *zip(ARM_JOINTS, ARM_VELOCITY_LIMITS_RAD_S, strict=True),
            ("gripper", GRIPPER.velocity_limit_m_s),
        ),
        default_velocity_max=1.0,
        acceleration_max=10.0,
        safe_state="hold",
    ),
    # The Shadow hand's joints are tendon/motor driven; 2 rad/s bounds every joint.
    "shadow_hand": RobotHardware(
        robot="shadow_hand",
        model="twinbridge-shadow-hand",
        emulator_task="hand-reach",
        velocity_max=(),
        default_velocity_max=2.0,
        acceleration_max=20.0,
        safe_state="torque_off",
    ),
}


class UnknownRobot(KeyError):
    """A robot name with no hardware table."""


def robot_hardware(robot: str) -> RobotHardware:
    try:
        return ROBOT_HARDWARE[robot]
    except KeyError as e:
        known = ", ".join(sorted(ROBOT_HARDWARE))
        raise UnknownRobot(f"no hardware table for robot {robot!r}; known: {known}") from e


@dataclass(frozen=True)
class RobotTables:
    """The robot's contract names and limits, built once from its twin."""

    hardware: RobotHardware
    joint_names: tuple[str, ...]  # reported in State, RobotIO order
    limits: JointLimits  # per command name, RobotIO order
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
            model=self.hardware.model,
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
    """Names and limits of `robot`, read from the twin of its emulator task."""
    hardware = robot_hardware(robot)
    spec = get_task_spec(hardware.emulator_task)
    env = make_env(spec.task_class, **spec.kwargs)
    try:
        io = RobotIO.of(robot, env.twin)
        low, high = io.command_limits(env.twin)
        model = env.twin.model
        force = np.where(
            model.actuator_forcelimited[io.actuator_ids].astype(bool),
            np.abs(model.actuator_forcerange[io.actuator_ids]).max(axis=1),
            np.inf,
        )
        servo_map = _servo_from_joints(env.twin, io)
    finally:
        env.close()
    velocity = dict(hardware.velocity_max)
    n = len(io.command_names)
    limits = JointLimits(
        names=io.command_names,
        position_min=low.astype(np.float64),
        position_max=high.astype(np.float64),
        velocity_max=np.array(
            [velocity.get(c, hardware.default_velocity_max) for c in io.command_names]
        ),
        acceleration_max=np.full(n, hardware.acceleration_max),
        effort_max=force.astype(np.float64),
        position_margin=hardware.position_margin,
    )
    return RobotTables(hardware, io.joint_names, limits, servo_map)


def _servo_from_joints(twin, io: RobotIO) -> np.ndarray:
    """d(actuator length)/d(joint position), measured on the model (transmissions and fixed
    tendons are linear, so this matrix maps joint positions to servo positions exactly)."""
    model, data = twin.model, twin.data
    step = 1e-3
    mujoco.mj_forward(model, data)
    base = data.actuator_length[io.actuator_ids].copy()
    matrix = np.zeros((len(io.actuator_ids), len(io.qpos_indices)))
    for column, address in enumerate(io.qpos_indices):
        data.qpos[address] += step
        mujoco.mj_forward(model, data)
        matrix[:, column] = (data.actuator_length[io.actuator_ids] - base) / step
        data.qpos[address] -= step
    mujoco.mj_forward(model, data)
    matrix[np.abs(matrix) < 1e-9] = 0.0
    return matrix
