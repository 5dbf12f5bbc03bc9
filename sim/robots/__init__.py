"""Robots, one folder each: everything specific to a robot, found through one registry.

Run: `python -c "from sim.robots import get_robot; print(get_robot('fetch').command_names)"`

`sim/robots/<robot>/` holds the robot's `robot.yaml` (joint and command tables, limits,
safe state, ROS namespace, device model, cameras, teleoperation bindings, the tasks it
declares; format: `sim/robots/README.md`), its model builder `builder.py` (MuJoCo
`MjSpec`, scenes) and a README with the model's provenance.
Adding a robot is its folder plus its name in `ROBOT_FOLDERS`; generic code reads the
description and never branches on a robot's name.

This module reads YAML only, so the robot side (serial driver, safety) gets a robot's limits
without a physics engine; `sim.robots.models` builds and compiles the MuJoCo models.
`tests/test_robot_tables.py` checks every `robot.yaml` against its compiled model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sim.errors import ConfigError, UnknownNameError

# The registry: one line per robot folder.
ROBOT_FOLDERS = (
    "fetch",
    "shadow_hand",
    "arm3",
)

DESCRIPTION_FILE = "robot.yaml"
SAFE_STATES = ("hold", "torque_off")


@dataclass(frozen=True)
class CommandSpec:
    """One commanded channel: its contract name, the model actuator it drives, its limits.

    Positions in rad (or m for a prismatic channel), velocity per second, acceleration per
    second squared, effort in N·m (or N); `inf` where the robot has no such limit.
    """

    name: str
    actuator: str
    position_min: float
    position_max: float
    velocity_max: float
    acceleration_max: float
    effort_max: float

    def __post_init__(self) -> None:
        if not self.position_min <= self.position_max:
            raise ConfigError(
                f"command {self.name!r}: position_min {self.position_min} > position_max "
                f"{self.position_max}; swap them"
            )
        for name in ("velocity_max", "acceleration_max", "effort_max"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"command {self.name!r}: {name} must be > 0")


@dataclass(frozen=True)
class RobotDescription:
    """A robot as data: what it reports, what it accepts, how it fails safe, where it lives.

    `joints` are reported in `joint_states` (the robot's 1-DoF joints, in this order);
    `commands` are accepted in `joint_command`, by name. A servo may drive a coupled pair of
    joints (the Fetch gripper, the hand's distal tendons): servo positions are
    `servo_from_joints @ joint positions`. `safe_state` is what every failure path ends in:
    "hold" for an arm that would fall under gravity, "torque_off" for fingers safe limp.
    """

    name: str
    namespace: str  # ROS namespace of the contract topics, e.g. "fetch" -> /fetch/joint_states
    device_model: str  # the model string its serial device announces
    source: str  # where the model geometry comes from (for error messages)
    emulator_task: str  # the task the serial emulator's twin runs
    default_task: str  # what `twinbridge robot` runs without --task (its goal fits the contract)
    safe_state: str
    joints: tuple[str, ...]
    commands: tuple[CommandSpec, ...]
    servo_from_joints: tuple[tuple[float, ...], ...]
    cameras: tuple[str, ...] = ()
    # The cameras a physical rig has, in the order a camera driver streams them as
    # camera_<n> (the emulator's, hardware/camera_rig.py); calibration solves for these.
    rig_cameras: tuple[str, ...] = ()
    # How `twinbridge calibrate cameras` calibrates the rig (calibration/kit.py reads it).
    calibration: Mapping[str, Any] = field(default_factory=dict)
    position_margin: float = 0.0  # rad kept clear of each position limit by the safety layer
    teleop: Mapping[str, Any] = field(default_factory=dict)  # read by hardware.teleop
    # Tasks this robot declares as data (`kind` names a generic task in sim.tasks); read by
    # sim.tasks, which turns them into registered tasks. Kept raw here: no task code below.
    tasks: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.safe_state not in SAFE_STATES:
            raise ConfigError(
                f"robot {self.name!r}: safe_state {self.safe_state!r}; use one of {SAFE_STATES}"
            )
        unknown = sorted(set(self.rig_cameras) - set(self.cameras))
        if unknown:
            raise ConfigError(
                f"robot {self.name!r}: rig_cameras {unknown} are not among its cameras "
                f"{list(self.cameras)}"
            )
        rows, cols = len(self.servo_from_joints), {len(r) for r in self.servo_from_joints}
        if rows != len(self.commands) or cols != {len(self.joints)}:
            raise ConfigError(
                f"robot {self.name!r}: servo_from_joints must be {len(self.commands)} rows of "
                f"{len(self.joints)} (commands x joints)"
            )

    @property
    def command_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.commands)

    def camera_names(self, text: str) -> tuple[str, ...]:
        """The cameras a comma-separated `text` names (`--cameras`, a node's `cameras`);
        a name the robot does not have is refused with the valid ones."""
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        for name in names:
            if name not in self.cameras:
                raise UnknownNameError(f"{self.name} camera", name, self.cameras)
        return names

    @property
    def command_actuators(self) -> tuple[str, ...]:
        return tuple(c.actuator for c in self.commands)

    @property
    def builder_module(self) -> str:
        """The module with the robot's `SCENES` and `build_spec(scene)` (imports MuJoCo)."""
        return f"{__name__}.{self.name}.builder"

    @property
    def folder(self) -> Path:
        return Path(__file__).parent / self.name


def robots() -> dict[str, RobotDescription]:
    """Every registered robot by name."""
    return {name: get_robot(name) for name in ROBOT_FOLDERS}


@cache
def get_robot(name: str) -> RobotDescription:
    """The description of the robot called `name`, or an error listing the valid names."""
    if name not in ROBOT_FOLDERS:
        raise UnknownNameError("robot", name, ROBOT_FOLDERS)
    path = Path(__file__).parent / name / DESCRIPTION_FILE
    return description_from_mapping(name, _read(path), str(path))


def description_from_mapping(name: str, data: Mapping[str, Any], source: str) -> RobotDescription:
    """A `RobotDescription` from the mapping of a robot.yaml; errors name the file and key."""
    try:
        commands = tuple(CommandSpec(**_command_fields(c)) for c in data["commands"])
        values = {k: v for k, v in data.items() if k != "commands"}
        matrix = values.pop("servo_from_joints")
        return RobotDescription(
            name=name,
            commands=commands,
            joints=tuple(values.pop("joints")),
            servo_from_joints=tuple(tuple(float(x) for x in row) for row in matrix),
            cameras=tuple(values.pop("cameras", ())),
            rig_cameras=tuple(values.pop("rig_cameras", ())),
            calibration=dict(values.pop("calibration", {}) or {}),
            teleop=dict(values.pop("teleop", {}) or {}),
            tasks=tuple(values.pop("tasks", ()) or ()),  # checked by sim.tasks
            **values,
        )
    except KeyError as e:
        raise ConfigError(f"{source}: missing key {e}; see sim/robots/README.md") from e
    except TypeError as e:
        raise ConfigError(f"{source}: {e}; see sim/robots/README.md") from e


def _command_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """robot.yaml writes a command's position range as `position: [min, max]`."""
    fields = dict(entry)
    low, high = fields.pop("position")
    return {
        **fields,
        "position_min": float(low),
        "position_max": float(high),
        **{k: float(fields[k]) for k in ("velocity_max", "acceleration_max", "effort_max")},
    }


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read the robot description: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a robot description is a mapping of keys")
    return data
