"""`TeleopConfig`: every teleoperation setting in one validated dataclass.

Run: `python -c "from hardware.teleop import TeleopConfig; print(TeleopConfig())"`

Key names are a lowercase letter or digit, a punctuation character, or one of
`hardware.teleop.inputs.NAMED_KEYS`.
Commands are the robot's own, its axes with a sign ("+x": held, with autorepeat, the axis is
at full deflection) or an event (`EVENT_COMMANDS`). Each robot's keys, sticks and buttons
are its robot.yaml's `teleop:` section (hardware/teleop/bindings.py); this config holds the
events' bindings and the user's overrides, checked against every robot that has a section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hardware.teleop.bindings import TeleopBindings, teleop_bindings, teleoperable_robots
from hardware.teleop.inputs import STICKS, key_map_problem
from hardware.teleop.intent import EVENT_COMMANDS
from sim.errors import ConfigError


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


DEFAULT_EVENT_KEYS = _frozen(
    {"space": "estop", "u": "release_estop", "enter": "end_episode", "q": "quit", "escape": "quit"}
)
DEFAULT_ROBOT_KEYS = _frozen({})  # no overrides: every robot's keys are its robot.yaml's
# SDL joystick indices of an Xbox-style pad on Linux: A 0, B 1, X 2, Y 3, Back 6, Start 7.
DEFAULT_GAMEPAD_AXES = _frozen({"left_x": 0, "left_y": 1, "right_x": 3, "right_y": 4})
DEFAULT_GAMEPAD_BUTTONS = _frozen({"estop": 1, "release_estop": 7, "end_episode": 3, "quit": 6})


@dataclass(frozen=True)
class TeleopConfig:
    """Teleoperation settings (rates in Hz, speeds in m/s, times in s, axes in [-1, 1]).

    control_rate_hz: how often `act` is called; one action covers one period. The twin's
        tasks step at 25 Hz.
    max_speed_m_s: gripper speed at full deflection (norm of the Cartesian velocity) of a
        robot whose teleop mapping is `cartesian_gripper`.
    synergy_rate_per_s: posture change at full deflection (`posture_synergies` mapping),
        action units per second (the action range [-1, 1] is 2 units wide).
    hand_start_preset: the preset posture every episode of a `posture_synergies` robot
        starts from.
    key_hold_s / key_decay_s: a motion key keeps its axis at full deflection for `key_hold_s`
        after its last byte (autorepeat refreshes it), then the axis ramps linearly to zero
        over `key_decay_s`: a released key stops the arm within their sum.
    key_repeat_ignore_s: a discrete key (toggle, preset, event other than e-stop) arriving
        again within this time of its previous byte is autorepeat and is ignored.
    gamepad_index: SDL joystick index of the pad to use.
    deadzone: stick deflection below this reads as 0; above, rescaled to reach 1 at the end.
    event_keys: key name -> event. robot_keys: robot -> its key map (key name -> signed axis
        or command), replacing the one in its robot.yaml's teleop section.
    gamepad_axes: stick axis name -> SDL axis index; gamepad_buttons: command -> button index
        (events; a robot command here overrides its robot.yaml's button).
    show_help: print the key help when a keyboard operator starts.
    """

    control_rate_hz: float = 25.0
    max_speed_m_s: float = 0.25
    synergy_rate_per_s: float = 1.0
    hand_start_preset: str = "neutral"
    key_hold_s: float = 0.12
    key_decay_s: float = 0.2
    key_repeat_ignore_s: float = 0.6
    gamepad_index: int = 0
    deadzone: float = 0.15
    event_keys: Mapping[str, str] = field(default_factory=lambda: DEFAULT_EVENT_KEYS)
    robot_keys: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_ROBOT_KEYS)
    gamepad_axes: Mapping[str, int] = field(default_factory=lambda: DEFAULT_GAMEPAD_AXES)
    gamepad_buttons: Mapping[str, int] = field(default_factory=lambda: DEFAULT_GAMEPAD_BUTTONS)
    show_help: bool = True

    def __post_init__(self) -> None:
        self._check_numbers()
        _check_keys("event_keys", self.event_keys, set(EVENT_COMMANDS))
        _check_robots(self, teleoperable_robots())
        self._check_gamepad()

    def _check_numbers(self) -> None:
        positive = ("control_rate_hz", "max_speed_m_s", "synergy_rate_per_s", "key_decay_s")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ConfigError(
                    f"TeleopConfig.{name} must be a finite number > 0, got {value!r}"
                )
        for name in ("key_hold_s", "key_repeat_ignore_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise ConfigError(
                    f"TeleopConfig.{name} must be a finite number >= 0, got {value!r}"
                )
        if not 0.0 <= self.deadzone < 1.0:
            raise ConfigError(f"TeleopConfig.deadzone must be in [0, 1), got {self.deadzone!r}")
        if not (isinstance(self.gamepad_index, int) and self.gamepad_index >= 0):
            raise ConfigError(
                f"TeleopConfig.gamepad_index must be an int >= 0, got {self.gamepad_index!r}"
            )

    def _check_gamepad(self) -> None:
        missing = sorted(set(STICKS) - set(self.gamepad_axes))
        unknown = sorted(set(self.gamepad_axes) - set(STICKS))
        if missing or unknown:
            raise ConfigError(
                f"TeleopConfig.gamepad_axes must name exactly {list(STICKS)}; "
                f"missing {missing}, unknown {unknown}"
            )
        for what, table in (
            ("gamepad_axes", self.gamepad_axes),
            ("gamepad_buttons", self.gamepad_buttons),
        ):
            bad = {k: v for k, v in table.items() if not (isinstance(v, int) and v >= 0)}
            if bad:
                raise ConfigError(f"TeleopConfig.{what}: indices must be ints >= 0, got {bad}")

    def keys_for(self, robot: str) -> dict[str, str]:
        """Key name -> command for `robot`: its keys (`robot_keys`, else its robot.yaml's)
        plus the event keys."""
        keys = self.robot_keys.get(robot)
        if keys is None:
            keys = teleop_bindings(robot).keys
        return {**keys, **self.event_keys}


def _check_keys(what: str, keys: Mapping[str, str], commands: set[str]) -> None:
    problem = key_map_problem(keys, commands)
    if problem:
        raise ConfigError(f"TeleopConfig.{what}: {problem}")


def _check_robots(config: TeleopConfig, robots: Mapping[str, TeleopBindings]) -> None:
    """The overrides and robot settings against every robot's teleop bindings."""
    for robot, keys in config.robot_keys.items():
        if robot not in robots:
            raise ConfigError(
                f"TeleopConfig.robot_keys: unknown robot {robot!r}; valid (robots with a "
                f"teleop section): {', '.join(robots)}"
            )
        _check_keys(f"robot_keys[{robot!r}]", keys, robots[robot].key_commands)
    for robot, bindings in robots.items():
        problem = bindings.kind.config_problem(config)
        if problem:
            raise ConfigError(f"TeleopConfig.{problem} (robot {robot!r}, {bindings.source})")
        _check_shared_keys(config, bindings)
    commands = set(EVENT_COMMANDS).union(*(b.kind.commands for b in robots.values()))
    unknown = sorted(set(config.gamepad_buttons) - commands)
    if unknown:
        raise ConfigError(
            f"TeleopConfig.gamepad_buttons: unknown command(s) {unknown}; "
            f"valid: {', '.join(sorted(commands))}"
        )


def _check_shared_keys(config: TeleopConfig, bindings: TeleopBindings) -> None:
    """A key means one thing: no robot key is also an event key."""
    robot = bindings.robot
    overridden = robot in config.robot_keys
    keys = config.robot_keys[robot] if overridden else bindings.keys
    shared = sorted(set(keys) & set(config.event_keys))
    if shared:
        where = f"robot_keys[{robot!r}]" if overridden else f"the keys of {bindings.source}"
        raise ConfigError(
            f"TeleopConfig: key(s) {shared} are bound both in event_keys and in {where}; "
            "give each key one command"
        )
