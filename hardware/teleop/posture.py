"""The `posture_synergies` mapping kind: a held posture moved along synergies, preset grasps.

Run: `python -c "from hardware.teleop import Intent, make_mapping as m; print(m('hand-reach').action(Intent({'grasp': 1.0})))"`

The action is a held posture: one position target per robot command (the robot.yaml's
command order), each in [-1, 1] (the actuator's ctrlrange centre +/- half its width). Axes
are synergy *rates*: full deflection moves the posture `TeleopConfig.synergy_rate_per_s`
action units per second along the synergy; the commands "preset:<name>" and "preset_next"
(in the presets' order, wrapping) jump to a named posture. Every posture is clipped into the
action space; every episode starts at `TeleopConfig.hand_start_preset`.

Parameters in a robot.yaml's `teleop:` section, actuators by short name (the command's
actuator name without `actuator_prefix`), actuators not named at 0:

    actuator_prefix: "arm:A_"
    synergies: {close: {J1: 1.0, J2: 0.5}}   # name -> direction, action units per unit
    presets: {neutral: {}, folded: {J1: -1.0}}   # name -> posture
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hardware.teleop.intent import Intent, axis_value
from sim.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from hardware.teleop.config import TeleopConfig
    from sim.robots import RobotDescription

NamedValues = Mapping[str, Mapping[str, float]]  # name -> short actuator name -> value


@dataclass(frozen=True)
class PostureSynergies:
    """A robot's `posture_synergies` teleop section: synergies and presets by actuator."""

    PARAMETERS: ClassVar[tuple[str, ...]] = ("actuator_prefix", "synergies", "presets")

    actuators: tuple[str, ...]  # the action's components, in order (the robot's commands)
    prefix: str
    synergies: NamedValues
    presets: NamedValues

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(self.synergies)

    @property
    def commands(self) -> tuple[str, ...]:
        return ("preset_next", *(f"preset:{name}" for name in self.presets))

    @property
    def short_names(self) -> tuple[str, ...]:
        return _short_names(self.actuators, self.prefix)

    @classmethod
    def from_section(
        cls, params: Mapping[str, Any], robot: RobotDescription, source: str
    ) -> PostureSynergies:
        prefix = params.get("actuator_prefix", "")
        if not isinstance(prefix, str):
            raise ConfigError(f"{source}: teleop.actuator_prefix must be a string")
        shorts = _short_names(robot.command_actuators, prefix)
        synergies = _named_values(params, "synergies", shorts, source)
        presets = _named_values(params, "presets", shorts, source)
        if not presets:
            raise ConfigError(f"{source}: teleop.presets: give at least one preset posture")
        return cls(robot.command_actuators, prefix, synergies, presets)

    def vector(self, values: Mapping[str, float]) -> np.ndarray:
        """An action-sized vector from short actuator names (the others 0)."""
        vector = np.zeros(len(self.actuators))
        for short, value in values.items():
            if short not in self.short_names:
                raise UnknownNameError("actuator", short, self.short_names)
            vector[self.actuators.index(self.prefix + short)] = value
        return vector

    def config_problem(self, config: TeleopConfig) -> str:
        """What in `config` does not fit this robot's presets ("" when all does)."""
        if config.hand_start_preset in self.presets:
            return ""
        return (
            f"hand_start_preset {config.hand_start_preset!r} is not a preset; "
            f"valid: {', '.join(self.presets)}"
        )

    def build(self, task: str, task_config: object, config: TeleopConfig) -> PostureMapping:
        """The mapping (the same for every task of the robot)."""
        period_s = 1.0 / config.control_rate_hz
        return PostureMapping(self, period_s, config.synergy_rate_per_s, config.hand_start_preset)


def _short_names(actuators: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    """The actuators a synergy or preset can name (those with the prefix), short."""
    return tuple(a.removeprefix(prefix) for a in actuators if a.startswith(prefix))


def _named_values(
    params: Mapping[str, Any], what: str, shorts: tuple[str, ...], source: str
) -> NamedValues:
    """`params[what]` checked: names -> {short actuator name: finite number}."""
    table = params.get(what) or {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: teleop.{what} must map names to {{actuator: value}}")
    checked = {}
    for name, values in table.items():
        where = f"{source}: teleop.{what}.{name}"
        values = values or {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where} must map short actuator names to values")
        for short, value in values.items():
            if short not in shorts:
                valid = ", ".join(shorts)
                raise ConfigError(f"{where}: unknown actuator {short!r}; valid: {valid}")
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value)
            ):
                raise ConfigError(f"{where}.{short} must be a finite number, got {value!r}")
        checked[str(name)] = MappingProxyType({str(k): float(v) for k, v in values.items()})
    return MappingProxyType(checked)


class PostureMapping:
    """Synergy rates and preset postures -> a held posture in [-1, 1]."""

    def __init__(
        self, kind: PostureSynergies, period_s: float, synergy_rate_per_s: float, start: str
    ):
        if start not in kind.presets:
            raise UnknownNameError("preset", start, kind.presets)
        self.axes, self.commands = kind.axes, kind.commands
        self._step = period_s * synergy_rate_per_s  # posture change per period at full axis
        self._directions = {name: kind.vector(d) for name, d in kind.synergies.items()}
        self._presets = {name: np.clip(kind.vector(p), -1, 1) for name, p in kind.presets.items()}
        self._start = start
        self.reset()

    def reset(self) -> None:
        """Back to the start preset (a new episode)."""
        self.preset = self._start
        self.posture = self._presets[self._start].copy()

    def state_text(self) -> str:
        """The preset the posture last started from."""
        return f"preset {self.preset}"

    def action(self, intent: Intent) -> np.ndarray:
        for command in intent.commands:
            self._command(command)
        for name, direction in self._directions.items():
            amount = axis_value(intent, name)
            if amount:
                self.posture += (amount * self._step) * direction
        np.clip(self.posture, -1.0, 1.0, out=self.posture)
        return self.posture.astype(np.float32)

    def _command(self, command: str) -> None:
        if command == "preset_next":
            names = list(self._presets)
            command = "preset:" + names[(names.index(self.preset) + 1) % len(names)]
        name = command.removeprefix("preset:")
        if name in self._presets:
            self.preset = name
            self.posture = self._presets[name].copy()
