"""`DriverSettings`: what a robot's driver is built from, in one validated dataclass.

Run: `python -c "from hardware.driver_settings import DriverSettings; print(DriverSettings(port='/dev/ttyUSB0'))"`

Its fields are driver_node's ROS parameters under the same names (ros_ws/node_configs.py
declares them from here), so a parameter file, a `-p` override and a script are checked by
the same `__post_init__`. Light on purpose: the bringups validate parameter files with it
before any node starts, without loading a backend.
"""  # noqa: E501

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hardware.safety import SafetyConfig
from sim.errors import ConfigError
from sim.robots import get_robot
from sim.tasks import TASKS

DEFAULT_LATCH_DIR = Path.home() / ".local" / "state" / "twinbridge"
# hardware/backends.py registers serial and sim; ros_ws/bridge_backend.py registers bridge.
BACKEND_NAMES = ("serial", "sim", "bridge")
SAFE_STATES = ("", "hold", "torque_off")


@dataclass(frozen=True)
class DriverSettings:
    """A robot's driver: which device, how fast, how strict with commands."""

    robot: str = "fetch"  # a robot with a hardware table (sim/robots/<robot>/)
    backend: str = "serial"  # serial | sim | bridge
    port: str = ""  # serial: the device path, e.g. /dev/serial/by-id/... (stable across replug)
    baudrate: int = 1000000
    task: str = ""  # sim backend / emulator scene resets: the task whose episodes run ("")
    seed: int = 0  # episode k after start resets the scene (where the device can) with seed + k
    cycle_rate_hz: float = 100.0  # read + safe write, every cycle
    publish_rate_hz: float = 25.0  # joint_states rate (the policy's control rate)
    command_max_age_s: float = 0.5  # stamps older than this are rejected at the boundary
    command_timeout_s: float = 0.1  # host watchdog: a target older than this is not followed
    goal_timeout_s: float = 2.0  # after a scene reset, longest hold for the episode's goal
    allow_partial_joints_goal: bool = False  # as ros2_control: partial commands rejected
    safe_state: str = ""  # "": the robot's table (hold for the arm, torque_off for the hand)
    limits_path: str = ""  # YAML narrowing the limits per command name (hardware/config)
    estop_latch_path: str = ""  # "": ~/.local/state/twinbridge/<robot>-estop.json

    def __post_init__(self) -> None:
        _one_of("backend", self.backend, BACKEND_NAMES)
        _one_of("safe_state", self.safe_state, SAFE_STATES)
        if self.task:
            _one_of("task", self.task, tuple(TASKS))
        for name in ("baudrate", "cycle_rate_hz", "publish_rate_hz", "command_max_age_s"):
            _positive(name, getattr(self, name))
        _positive("command_timeout_s", self.command_timeout_s)
        _positive("goal_timeout_s", self.goal_timeout_s)
        if self.publish_rate_hz > self.cycle_rate_hz:
            raise ConfigError(
                f"publish_rate_hz {self.publish_rate_hz} must be <= cycle_rate_hz "
                f"{self.cycle_rate_hz}: a state is published after a cycle"
            )

    @property
    def publish_every(self) -> int:
        """Cycles per published state."""
        return max(1, round(self.cycle_rate_hz / self.publish_rate_hz))

    def safety(self) -> SafetyConfig:
        """The safety layer's config; the e-stop latch file's folder is created."""
        latch = Path(self.estop_latch_path or DEFAULT_LATCH_DIR / f"{self.robot}-estop.json")
        latch.parent.mkdir(parents=True, exist_ok=True)
        return SafetyConfig(
            period_s=1.0 / self.cycle_rate_hz,
            command_timeout_s=self.command_timeout_s,
            safe_state=self.safe_state or get_robot(self.robot).safe_state,
            estop_latch_path=str(latch),
        )


def _one_of(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name} {value!r} is not one of {', '.join(map(repr, valid))}")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be > 0, got {value!r}")
