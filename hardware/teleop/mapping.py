"""From what an operator asks for (named axes and commands) to one env action, per robot.

Run: `python -c "from hardware.teleop.mapping import Intent, make_mapping as m; print(m('fetch-push').action(Intent({'x': 1.0})))"`

Devices differ (keys, sticks), the meaning of an input does not, so devices only produce an
`Intent`: named axes in [-1, 1] ("x" for the Fetch arm, "grasp" for the hand) and named
discrete commands ("gripper_toggle", "preset:pinch"). A mapping turns intents into actions:

- **Fetch** (`FetchMapping`): axes are a Cartesian gripper velocity as a fraction of
  `max_speed_m_s` (its norm clipped to it, direction kept), held for one control period; the
  env action is that displacement over the task's per-step displacement `step_m` (5 cm per
  unit action), clipped to [-1, 1]. The gripper is a toggle (open at every reset), sent as
  +1 (open) or -1 (close) each step, as `sim.scripted` does.
- **Shadow hand** (`HandMapping`): the action is a held posture (20 position targets, each in
  [-1, 1]: the actuator's ctrlrange centre +/- half its width). Axes are synergy *rates*:
  full deflection moves the posture `synergy_rate_per_s` action units per second along the
  synergy (closure, spread, thumb opposition, wrist); preset commands jump to a grasp. Every
  posture is clipped into the action space. Synergies and presets are given by actuator
  name (Gymnasium-Robotics' actuator order, checked against the model by the tests); their
  signs were chosen by measuring fingertip distances in the twin.
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sim.errors import ConfigError, UnknownNameError
from sim.tasks import get_task_spec, task_class

if TYPE_CHECKING:
    from hardware.teleop.config import TeleopConfig

EVENT_COMMANDS = ("estop", "release_estop", "end_episode", "quit")


@dataclass(frozen=True)
class Intent:
    """What the operator asks for during one control period."""

    axes: Mapping[str, float] = field(default_factory=dict)  # named axes, each in [-1, 1]
    commands: tuple[str, ...] = ()  # discrete commands, in the order they were given


class ActionMapping(Protocol):
    """One robot's intent -> env action; `axes` and `commands` are the names it understands."""

    robot: str
    axes: tuple[str, ...]
    commands: tuple[str, ...]

    def reset(self) -> None: ...
    def action(self, intent: Intent) -> np.ndarray: ...


def _axis(intent: Intent, name: str) -> float:
    value = float(intent.axes.get(name, 0.0))
    return min(max(value, -1.0), 1.0) if np.isfinite(value) else 0.0


# -- Fetch ------------------------------------------------------------------------------------
FETCH_AXES = ("x", "y", "z")  # world frame: x away from the robot base, y to its left, z up
FETCH_COMMANDS = ("gripper_toggle", "gripper_open", "gripper_close")


class FetchMapping:
    """Cartesian gripper velocity (m/s) and a gripper toggle -> [dx, dy, dz, gripper]."""

    robot = "fetch"
    axes: tuple[str, ...] = FETCH_AXES
    commands: tuple[str, ...] = FETCH_COMMANDS

    def __init__(self, period_s: float, max_speed_m_s: float, step_m: float):
        self.max_speed_m_s = max_speed_m_s
        self._action_per_m = 1.0 / step_m  # env action per metre of displacement in a step
        self._period_s = period_s
        env_limit = step_m / period_s
        if max_speed_m_s > env_limit * (1 + 1e-9):
            raise ConfigError(
                f"max_speed_m_s={max_speed_m_s} is more than the env can move the gripper: "
                f"{step_m} m per step at {1 / period_s:g} Hz is {env_limit:g} m/s; lower "
                "max_speed_m_s or raise control_rate_hz"
            )
        self.reset()

    def reset(self) -> None:
        """Open the gripper (the state every episode starts from)."""
        self.gripper_open = True

    def velocity_m_s(self, intent: Intent) -> np.ndarray:
        """The gripper velocity asked for: axes x max speed, norm clipped to the max speed."""
        velocity = np.array([_axis(intent, name) for name in FETCH_AXES]) * self.max_speed_m_s
        speed = float(np.linalg.norm(velocity))
        if speed > self.max_speed_m_s:
            velocity *= self.max_speed_m_s / speed
        return velocity

    def action(self, intent: Intent) -> np.ndarray:
        for command in intent.commands:
            if command == "gripper_toggle":
                self.gripper_open = not self.gripper_open
            elif command in ("gripper_open", "gripper_close"):
                self.gripper_open = command == "gripper_open"
        displacement_m = self.velocity_m_s(intent) * self._period_s
        action = np.empty(4, dtype=np.float32)
        action[:3] = np.clip(displacement_m * self._action_per_m, -1.0, 1.0)
        action[3] = 1.0 if self.gripper_open else -1.0
        return action


# -- Shadow hand -----------------------------------------------------------------------------
_HAND_PREFIX = "robot0:A_"
HAND_ACTUATORS = tuple(
    _HAND_PREFIX + name
    for name in (
        "WRJ1", "WRJ0",
        "FFJ3", "FFJ2", "FFJ1",
        "MFJ3", "MFJ2", "MFJ1",
        "RFJ3", "RFJ2", "RFJ1",
        "LFJ4", "LFJ3", "LFJ2", "LFJ1",
        "THJ4", "THJ3", "THJ2", "THJ1", "THJ0",
    )
)  # fmt: skip
_FINGERS = ("FF", "MF", "RF", "LF")
_FLEX = {f"{finger}J{j}": 1.0 for finger in _FINGERS for j in (2, 1)}  # MCP and coupled PIP/DIP

# Directions in action units per unit synergy (short actuator names, without the prefix).
SYNERGIES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "grasp": {**_FLEX, "LFJ4": 0.5, "THJ1": -0.5, "THJ0": -0.5},  # close all fingers
        "spread": {"FFJ3": 1.0, "MFJ3": 0.3, "RFJ3": -0.3, "LFJ3": -1.0, "LFJ4": -0.3},
        "thumb": {"THJ3": 1.0, "THJ4": 0.5, "THJ2": 0.5},  # opposition across the palm
        "wrist_flex": {"WRJ0": 1.0},
        "wrist_deviation": {"WRJ1": 1.0},
    }
)
_OPEN_FINGERS = {name: -1.0 for name in _FLEX}
PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "neutral": {},  # every actuator at its range centre (the manipulation tasks' start)
        "open": {**_OPEN_FINGERS, "LFJ4": -1.0, "THJ3": -1.0, "THJ0": 1.0},
        "power": {
            **{f"{finger}J2": 0.7 for finger in _FINGERS},
            **{f"{finger}J1": 0.8 for finger in _FINGERS},
            "LFJ4": 0.5, "THJ4": 0.5, "THJ3": 1.0, "THJ2": 0.5, "THJ1": -0.5, "THJ0": -0.5,
        },
        "pinch": {  # thumb tip on the index tip
            **_OPEN_FINGERS, "FFJ2": 0.1, "FFJ1": 0.1,
            "THJ4": 0.5, "THJ3": 0.7, "THJ2": 0.0, "THJ1": 0.5, "THJ0": 0.0,
        },
        "tripod": {  # thumb between the index and middle tips
            **_OPEN_FINGERS, "FFJ2": 0.1, "FFJ1": 0.1, "MFJ2": 0.1, "MFJ1": 0.1,
            "THJ4": 0.5, "THJ3": 0.7, "THJ2": 1.0, "THJ1": 0.0, "THJ0": 0.0,
        },
        "lateral": {  # key grip: fingers curled, thumb pressed on the side of the index
            **{name: 1.0 for name in _FLEX}, "THJ4": 0.0, "THJ3": 0.5, "THJ1": -0.5,
        },
    }
)  # fmt: skip
HAND_AXES = tuple(SYNERGIES)
HAND_COMMANDS = ("preset_next", *(f"preset:{name}" for name in PRESETS))


def hand_vector(values: Mapping[str, float]) -> np.ndarray:
    """A 20-vector in HAND_ACTUATORS order from short actuator names (others 0)."""
    vector = np.zeros(len(HAND_ACTUATORS))
    for short, value in values.items():
        name = _HAND_PREFIX + short
        if name not in HAND_ACTUATORS:
            raise UnknownNameError(
                "hand actuator", short, (a[len(_HAND_PREFIX) :] for a in HAND_ACTUATORS)
            )
        vector[HAND_ACTUATORS.index(name)] = value
    return vector


class HandMapping:
    """Synergy rates and preset grasps -> a held 20-D posture in [-1, 1]."""

    robot = "shadow_hand"
    axes: tuple[str, ...] = HAND_AXES
    commands: tuple[str, ...] = HAND_COMMANDS

    def __init__(self, period_s: float, synergy_rate_per_s: float, start_preset: str):
        if start_preset not in PRESETS:
            raise UnknownNameError("hand preset", start_preset, PRESETS)
        self._step = period_s * synergy_rate_per_s  # posture change per period at full axis
        self._directions = {name: hand_vector(d) for name, d in SYNERGIES.items()}
        self._presets = {name: np.clip(hand_vector(p), -1, 1) for name, p in PRESETS.items()}
        self._start = start_preset
        self.reset()

    def reset(self) -> None:
        """Back to the start preset (a new episode)."""
        self.preset = self._start
        self.posture = self._presets[self._start].copy()

    def action(self, intent: Intent) -> np.ndarray:
        for command in intent.commands:
            self._command(command)
        for name, direction in self._directions.items():
            amount = _axis(intent, name)
            if amount:
                self.posture += (amount * self._step) * direction
        np.clip(self.posture, -1.0, 1.0, out=self.posture)
        return self.posture.astype(np.float32)

    def _command(self, command: str) -> None:
        if command == "preset_next":
            names = list(PRESETS)
            command = "preset:" + names[(names.index(self.preset) + 1) % len(names)]
        name = command.removeprefix("preset:")
        if name in self._presets:
            self.preset = name
            self.posture = self._presets[name].copy()


# -- registry: robot -> mapping ---------------------------------------------------------------
def _fetch(task: str, config: TeleopConfig) -> ActionMapping:
    step_m = float(_task_class(task).default_config.step_m)
    return FetchMapping(1.0 / config.control_rate_hz, config.max_speed_m_s, step_m)


def _hand(task: str, config: TeleopConfig) -> ActionMapping:
    return HandMapping(
        1.0 / config.control_rate_hz, config.synergy_rate_per_s, config.hand_start_preset
    )


MAPPINGS: dict[str, Callable[[str, TeleopConfig], ActionMapping]] = {
    "fetch": _fetch,
    "shadow_hand": _hand,
}
ROBOT_AXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"fetch": FETCH_AXES, "shadow_hand": HAND_AXES}
)
ROBOT_COMMANDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"fetch": FETCH_COMMANDS, "shadow_hand": HAND_COMMANDS}
)


def robot_of(task: str) -> str:
    """The robot a registered task drives ("fetch", "shadow_hand")."""
    return str(_task_class(task).robot)


def _task_class(task: str) -> Any:
    return task_class(get_task_spec(task).task_class)


def make_mapping(task: str, config: TeleopConfig | None = None) -> ActionMapping:
    """The mapping for `task`'s robot, configured by `config` (defaults if None)."""
    from hardware.teleop.config import TeleopConfig

    robot = robot_of(task)
    if robot not in MAPPINGS:
        raise UnknownNameError("teleop robot", robot, MAPPINGS)
    return MAPPINGS[robot](task, config or TeleopConfig())
