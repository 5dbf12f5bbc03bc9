"""Backends by name: one registry builds the `RobotInterface` a driver node asks for.

Run: `python -c "from hardware.backends import open_robot; print(open_robot('sim', 'fetch'))"`

`serial` and `sim` live here; the ROS-topic `bridge` registers itself from ros_ws (the only
place that may import rclpy). Limits can only be narrowed by a YAML file of per-command
overrides, e.g. `shoulder_pan_joint: {velocity_max: 0.5}`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.interface import RobotInterface
from hardware.safety import SafetyConfig
from hardware.serial_backend import SerialConfig, SerialRobot
from sim.config_loader import load_yaml_mapping
from sim.errors import ConfigError


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
    config = SerialConfig(request.port, request.baudrate)
    return SerialRobot(
        request.robot, config, request.safety, limit_overrides=request.limit_overrides
    )


def _sim(request: BackendRequest) -> RobotInterface:
    # The twin backend needs MuJoCo; it is loaded only when chosen, so the serial driver
    # path never imports a physics engine (pyproject's import-linter contract).
    sim_backend = importlib.import_module("hardware.sim_backend")
    return sim_backend.SimRobot(
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
        raise ConfigError(
            f"unknown hardware backend {backend!r}; registered: {', '.join(sorted(BACKENDS))}"
        )
    return BACKENDS[backend](request)


def open_robot(backend: str, robot: str, **fields: Any) -> RobotInterface:
    """A backend's interface with the robot's default safety config (tests, scripts)."""
    from sim.robots import get_robot

    safety = fields.pop("safety", None) or SafetyConfig(safe_state=get_robot(robot).safe_state)
    return make_interface(backend, BackendRequest(robot, safety, **fields))


def load_limit_overrides(path: str | Path) -> dict[str, dict[str, float]]:
    """Per-command limit overrides from YAML; a clear error for anything else."""
    data = load_yaml_mapping(path, "limits file")
    if not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(
            f"limits file {path}: must map command names to {{key: value}}, e.g. "
            "'shoulder_pan_joint: {velocity_max: 0.5}'"
        )
    return {str(k): {str(kk): _number(vv, f"{path}: {k}.{kk}") for kk, vv in v.items()}
            for k, v in data.items()}  # fmt: skip


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"limits file {where}: expected a number, got {value!r}")
    return float(value)
