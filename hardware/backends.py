"""Backends by name: one registry builds the `RobotInterface` a driver node asks for.

Run: `python -c "from hardware.backends import open_robot; print(open_robot('sim', 'fetch'))"`

`serial` and `sim` live here; the ROS-topic `bridge` registers itself from ros_ws (the only
place that may import rclpy). Limits can only be narrowed by a YAML file of per-command
overrides, e.g. `shoulder_pan_joint: {velocity_max: 0.5}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hardware.interface import RobotInterface
from hardware.safety import SafetyConfig
from hardware.serial_backend import SERIAL_DRIVERS, SerialConfig
from hardware.sim_backend import SimRobot


@dataclass(frozen=True)
class BackendRequest:
    """Everything a backend factory may need; each uses the fields it knows."""

    robot: str
    safety: SafetyConfig
    limit_overrides: dict[str, dict[str, float]] = field(default_factory=dict)
    port: str = ""
    baudrate: int = 1_000_000
    task: str = ""
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific


def _serial(request: BackendRequest) -> RobotInterface:
    if request.robot not in SERIAL_DRIVERS:
        raise ValueError(f"no serial driver for {request.robot!r}; known {sorted(SERIAL_DRIVERS)}")
    driver = SERIAL_DRIVERS[request.robot]
    config = SerialConfig(request.port, request.baudrate)
    return driver(config, request.safety, limit_overrides=request.limit_overrides)


def _sim(request: BackendRequest) -> RobotInterface:
    return SimRobot(
        request.robot,
        request.safety,
        task=request.task,
        seed=request.seed,
        limit_overrides=request.limit_overrides,
    )


BACKENDS: dict[str, Callable[[BackendRequest], RobotInterface]] = {
    "serial": _serial,
    "sim": _sim,
}


def register_backend(name: str, factory: Callable[[BackendRequest], RobotInterface]) -> None:
    BACKENDS[name] = factory


def make_interface(backend: str, request: BackendRequest) -> RobotInterface:
    if backend not in BACKENDS:
        raise ValueError(f"unknown hardware backend {backend!r}; registered: {sorted(BACKENDS)}")
    return BACKENDS[backend](request)


def open_robot(backend: str, robot: str, **fields: Any) -> RobotInterface:
    """A backend's interface with the robot's default safety config (tests, scripts)."""
    from hardware.robots import robot_hardware

    safety = fields.pop("safety", None) or SafetyConfig(
        safe_state=robot_hardware(robot).safe_state
    )
    return make_interface(backend, BackendRequest(robot, safety, **fields))


def load_limit_overrides(path: str | Path) -> dict[str, dict[str, float]]:
    """Per-command limit overrides from YAML; a clear error for anything else."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"limits file {path}: cannot read it as YAML: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(
            f"limits file {path}: must map command names to {{key: value}}, e.g. "
            "'shoulder_pan_joint: {velocity_max: 0.5}'"
        )
    return {str(k): {str(kk): float(vv) for kk, vv in v.items()} for k, v in data.items()}
