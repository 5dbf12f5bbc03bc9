"""A robot's teleoperation bindings: the `teleop:` section of its robot.yaml, read and checked.

Run: `python -c "from hardware.teleop.bindings import teleop_bindings as b; print(b('fetch').keys)"`

The section names a mapping kind (a key of `MAPPING_KINDS`: the behaviour, in this package)
with that kind's parameters beside it, and binds the operator's inputs to the kind's named
axes and commands:

    teleop:
      mapping: cartesian_gripper               # a key of MAPPING_KINDS
      keys: {up: "+x", g: gripper_toggle}      # key name -> signed axis (held) or command
      gamepad_sticks: {x: [left_y, -1]}        # axis -> [stick, sign] (SDL: pulled down is +1)
      gamepad_buttons: {gripper_toggle: 0}     # command -> SDL button index

Every name is checked when the section is read: an error is one line naming the file, the
key and the valid names. `sim.robots` only carries the raw section (the serial driver reads
robot.yaml and stays light); it is parsed here.
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hardware.teleop.cartesian import CartesianGripper
from hardware.teleop.inputs import STICKS, key_map_problem, signed_axes
from hardware.teleop.posture import PostureSynergies
from sim.errors import ConfigError
from sim.robots import DESCRIPTION_FILE, ROBOT_FOLDERS, RobotDescription, get_robot

if TYPE_CHECKING:
    from hardware.teleop.config import TeleopConfig
    from hardware.teleop.intent import ActionMapping

INPUT_KEYS = ("mapping", "keys", "gamepad_sticks", "gamepad_buttons")


class MappingKind(Protocol):
    """A teleop section of one kind, parsed: its axes and commands, and a mapping per task."""

    PARAMETERS: ClassVar[tuple[str, ...]]  # the kind's own keys in the section

    @classmethod
    def from_section(
        cls, params: Mapping[str, Any], robot: RobotDescription, source: str
    ) -> MappingKind: ...
    @property
    def axes(self) -> tuple[str, ...]: ...
    @property
    def commands(self) -> tuple[str, ...]: ...
    def config_problem(self, config: TeleopConfig) -> str: ...
    def build(self, task: str, task_config: object, config: TeleopConfig) -> ActionMapping: ...


MAPPING_KINDS: dict[str, type[MappingKind]] = {
    "cartesian_gripper": CartesianGripper,
    "posture_synergies": PostureSynergies,
}


def register_mapping_kind(name: str, kind: type[MappingKind]) -> None:
    """Add a mapping kind a robot.yaml's `teleop.mapping` can name."""
    MAPPING_KINDS[name] = kind


@dataclass(frozen=True)
class TeleopBindings:
    """One robot's teleop section, checked: its mapping kind and what each input means."""

    robot: str
    source: str  # the robot.yaml it was read from
    kind: MappingKind
    keys: Mapping[str, str]  # key name -> signed axis or command
    gamepad_sticks: Mapping[str, tuple[str, float]]  # axis -> (stick, sign)
    gamepad_buttons: Mapping[str, int]  # command -> SDL button index

    @property
    def key_commands(self) -> set[str]:
        return key_commands(self.kind)


def key_commands(kind: MappingKind) -> set[str]:
    """What a key may mean on a robot of this kind: a signed axis or one of its commands."""
    return signed_axes(kind.axes) | set(kind.commands)


def teleop_bindings(robot: str) -> TeleopBindings:
    """The checked teleop section of `robot`, or an error naming the file to add it to."""
    description = get_robot(robot)
    source = description_file(description)
    if not description.teleop:
        raise ConfigError(
            f"robot {robot!r} has no teleop section: add `teleop:` (mapping: one of "
            f"{', '.join(MAPPING_KINDS)}; keys; gamepad_sticks; gamepad_buttons) to {source}"
        )
    return parse_section(description, description.teleop, source)


def teleoperable_robots() -> dict[str, TeleopBindings]:
    """The bindings of every registered robot that has a teleop section."""
    return {name: teleop_bindings(name) for name in ROBOT_FOLDERS if get_robot(name).teleop}


def description_file(robot: RobotDescription) -> str:
    """The robot's robot.yaml, relative to the source tree (as a user finds it)."""
    path = robot.folder / DESCRIPTION_FILE
    return str(path.relative_to(robot.folder.parents[2]))


def parse_section(
    robot: RobotDescription, section: Mapping[str, Any], source: str
) -> TeleopBindings:
    """A teleop section checked against its mapping kind and the robot's commands."""
    name = section.get("mapping")
    if not isinstance(name, str) or name not in MAPPING_KINDS:
        raise ConfigError(
            f"{source}: teleop.mapping: unknown mapping kind {name!r}; "
            f"valid: {', '.join(MAPPING_KINDS)}"
        )
    kind_class = MAPPING_KINDS[name]
    unknown = sorted(set(section) - {*INPUT_KEYS, *kind_class.PARAMETERS})
    if unknown:
        raise ConfigError(
            f"{source}: teleop: unknown key(s) {unknown} for mapping {name}; "
            f"valid: {', '.join((*INPUT_KEYS, *kind_class.PARAMETERS))}"
        )
    params = {k: v for k, v in section.items() if k in kind_class.PARAMETERS}
    kind = kind_class.from_section(params, robot, source)
    return TeleopBindings(
        robot=robot.name,
        source=source,
        kind=kind,
        keys=_keys(section, kind, source),
        gamepad_sticks=_sticks(section, kind, source),
        gamepad_buttons=_buttons(section, kind, source),
    )


def _table(section: Mapping[str, Any], name: str, source: str) -> Mapping[Any, Any]:
    table = section.get(name) or {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: teleop.{name} must be a mapping")
    return table


def _keys(section: Mapping[str, Any], kind: MappingKind, source: str) -> Mapping[str, str]:
    # YAML reads an unquoted digit key as an int: it still names the digit key.
    table = {
        str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
        for k, v in _table(section, "keys", source).items()
    }
    problem = key_map_problem(table, key_commands(kind))
    if problem:
        raise ConfigError(f"{source}: teleop.keys: {problem}")
    return MappingProxyType(table)


def _sticks(
    section: Mapping[str, Any], kind: MappingKind, source: str
) -> Mapping[str, tuple[str, float]]:
    sticks = {}
    for axis, binding in _table(section, "gamepad_sticks", source).items():
        where = f"{source}: teleop.gamepad_sticks.{axis}"
        if axis not in kind.axes:
            raise ConfigError(f"{where}: unknown axis; valid: {', '.join(kind.axes)}")
        pair = isinstance(binding, list | tuple) and len(binding) == 2
        stick, sign = binding if pair else ("", 0)
        if stick not in STICKS or sign not in (1, -1):
            raise ConfigError(
                f"{where}: give [stick, sign] with stick one of {', '.join(STICKS)} and sign "
                f"1 or -1, got {binding!r}"
            )
        sticks[axis] = (stick, float(sign))
    return MappingProxyType(sticks)


def _buttons(section: Mapping[str, Any], kind: MappingKind, source: str) -> Mapping[str, int]:
    buttons = dict(_table(section, "gamepad_buttons", source))
    for command, button in buttons.items():
        where = f"{source}: teleop.gamepad_buttons.{command}"
        if command not in kind.commands:
            raise ConfigError(f"{where}: unknown command; valid: {', '.join(kind.commands)}")
        if isinstance(button, bool) or not (isinstance(button, int) and button >= 0):
            raise ConfigError(f"{where}: give an SDL button index (an int >= 0), got {button!r}")
    return MappingProxyType(buttons)
