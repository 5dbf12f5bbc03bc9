"""`TeleopConfig`: every teleoperation setting in one validated dataclass.

Run: `python -c "from hardware.teleop import TeleopConfig; print(TeleopConfig())"`

Key names are a lowercase letter or digit, a punctuation character, or one of `NAMED_KEYS`.
Commands are the robot's own (`mapping.ROBOT_COMMANDS`), its axes with a sign ("+x", "-grasp":
held, with autorepeat, the axis is at full deflection) or an event (`EVENT_COMMANDS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hardware.teleop.mapping import (
    EVENT_COMMANDS,
    PRESETS,
    ROBOT_AXES,
    ROBOT_COMMANDS,
)
from sim.errors import ConfigError

NAMED_KEYS = (
    "up", "down", "left", "right", "space", "enter", "tab", "backspace", "escape",
)  # fmt: skip
STICKS = ("left_x", "left_y", "right_x", "right_y")


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


DEFAULT_EVENT_KEYS = _frozen(
    {"space": "estop", "u": "release_estop", "enter": "end_episode", "q": "quit", "escape": "quit"}
)
DEFAULT_ROBOT_KEYS = _frozen(
    {
        "fetch": _frozen(
            {
                "up": "+x", "down": "-x", "left": "+y", "right": "-y", "w": "+z", "s": "-z",
                "g": "gripper_toggle", "o": "gripper_open", "c": "gripper_close",
            }
        ),
        "shadow_hand": _frozen(
            {
                "up": "+grasp", "down": "-grasp", "right": "+spread", "left": "-spread",
                "t": "+thumb", "g": "-thumb", "w": "+wrist_flex", "s": "-wrist_flex",
                "d": "+wrist_deviation", "a": "-wrist_deviation", "n": "preset_next",
                **{str(i): f"preset:{name}" for i, name in enumerate(PRESETS)},
            }
        ),
    }
)  # fmt: skip
# SDL joystick indices of an Xbox-style pad on Linux: A 0, B 1, X 2, Y 3, Back 6, Start 7.
DEFAULT_GAMEPAD_AXES = _frozen({"left_x": 0, "left_y": 1, "right_x": 3, "right_y": 4})
DEFAULT_GAMEPAD_BUTTONS = _frozen(
    {
        "estop": 1, "release_estop": 7, "end_episode": 3, "quit": 6,
        "gripper_toggle": 0, "preset_next": 0, "preset:open": 2,
    }
)  # fmt: skip


@dataclass(frozen=True)
class TeleopConfig:
    """Teleoperation settings (rates in Hz, speeds in m/s, times in s, axes in [-1, 1]).

    control_rate_hz: how often `act` is called; one action covers one period. The twin's
        tasks step at 25 Hz.
    max_speed_m_s: Fetch gripper speed at full deflection (norm of the Cartesian velocity).
    synergy_rate_per_s: hand posture change at full deflection, action units per second
        (the action range [-1, 1] is 2 units wide).
    hand_start_preset: the hand posture every episode starts from.
    key_hold_s / key_decay_s: a motion key keeps its axis at full deflection for `key_hold_s`
        after its last byte (autorepeat refreshes it), then the axis ramps linearly to zero
        over `key_decay_s`: a released key stops the arm within their sum.
    key_repeat_ignore_s: a discrete key (toggle, preset, event other than e-stop) arriving
        again within this time of its previous byte is autorepeat and is ignored.
    gamepad_index: SDL joystick index of the pad to use.
    deadzone: stick deflection below this reads as 0; above, rescaled to reach 1 at the end.
    event_keys / robot_keys: key name -> command (events; per robot, the robot's commands).
    gamepad_axes: stick axis name -> SDL axis index; gamepad_buttons: command -> button index.
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
        if self.hand_start_preset not in PRESETS:
            raise ConfigError(
                f"TeleopConfig.hand_start_preset {self.hand_start_preset!r} is not a preset; "
                f"valid: {', '.join(PRESETS)}"
            )
        _check_keys("event_keys", self.event_keys, set(EVENT_COMMANDS))
        for robot, keys in self.robot_keys.items():
            if robot not in ROBOT_COMMANDS:
                raise ConfigError(
                    f"TeleopConfig.robot_keys: unknown robot {robot!r}; "
                    f"valid: {', '.join(ROBOT_COMMANDS)}"
                )
            _check_keys(f"robot_keys[{robot!r}]", keys, robot_key_commands(robot))
            shared = sorted(set(keys) & set(self.event_keys))
            if shared:
                raise ConfigError(
                    f"TeleopConfig: key(s) {shared} are bound both in event_keys and in "
                    f"robot_keys[{robot!r}]; give each key one command"
                )
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
        commands = set(EVENT_COMMANDS).union(*ROBOT_COMMANDS.values())
        unknown = sorted(set(self.gamepad_buttons) - commands)
        if unknown:
            raise ConfigError(
                f"TeleopConfig.gamepad_buttons: unknown command(s) {unknown}; "
                f"valid: {', '.join(sorted(commands))}"
            )
        for what, table in (
            ("gamepad_axes", self.gamepad_axes),
            ("gamepad_buttons", self.gamepad_buttons),
        ):
            bad = {k: v for k, v in table.items() if not (isinstance(v, int) and v >= 0)}
            if bad:
                raise ConfigError(f"TeleopConfig.{what}: indices must be ints >= 0, got {bad}")

    def keys_for(self, robot: str) -> dict[str, str]:
        """Key name -> command for `robot`: its own keys plus the event keys."""
        if robot not in self.robot_keys:
            raise ConfigError(
                f"TeleopConfig.robot_keys has no key map for robot {robot!r}; add one"
            )
        return {**self.robot_keys[robot], **self.event_keys}


def robot_key_commands(robot: str) -> set[str]:
    """The commands a key may have on `robot`: signed axes and the robot's commands."""
    axes = {f"{sign}{axis}" for axis in ROBOT_AXES[robot] for sign in "+-"}
    return axes | set(ROBOT_COMMANDS[robot])


def valid_key_name(key: object) -> bool:
    if not isinstance(key, str):
        return False
    if key in NAMED_KEYS:
        return True
    return len(key) == 1 and key.isprintable() and not key.isspace() and key == key.lower()


def _check_keys(what: str, keys: Mapping[str, str], commands: set[str]) -> None:
    bad_keys = sorted(str(k) for k in keys if not valid_key_name(k))
    if bad_keys:
        raise ConfigError(
            f"TeleopConfig.{what}: invalid key name(s) {bad_keys}; use a lowercase letter, digit "
            f"or punctuation character, or one of {', '.join(NAMED_KEYS)}"
        )
    bad = {k: c for k, c in keys.items() if c not in commands}
    if bad:
        raise ConfigError(
            f"TeleopConfig.{what}: unknown command(s) {bad}; valid: {', '.join(sorted(commands))}"
        )
