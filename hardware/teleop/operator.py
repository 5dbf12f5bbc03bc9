"""The `Operator` protocol, its events, the device registry and the shared device machinery.

Run: `python -c "from hardware.teleop import make_operator; o = make_operator('scripted', 'fetch-push'); print(o.device)"`

An operator stands where a policy stands: `act(observation) -> action` once per control
period, `reset()` at every episode start. Besides actions a human asks for things the loop
must do (e-stop now, release it, end the episode, quit); `events()` returns what was asked
since the previous call. Devices are looked up by name in `OPERATORS` ("module:Class",
imported on first use, so `import hardware.teleop` never starts SDL).
"""  # noqa: E501

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hardware.teleop.bindings import teleop_bindings
from hardware.teleop.config import TeleopConfig
from hardware.teleop.intent import EVENT_COMMANDS, Intent
from hardware.teleop.mapping import make_mapping, robot_of
from sim.errors import TwinbridgeError, UnknownNameError
from sim.tasks import get_task_spec


class TeleopError(TwinbridgeError, RuntimeError):
    """A teleoperation failure; the message names the device or input and the fix."""


class DeviceError(TeleopError):
    """An input device that cannot be used (no terminal, no or unsuitable gamepad)."""


@dataclass(frozen=True)
class OperatorEvents:
    """What the human asked for since the last `events()` call.

    When both `estop` and `release_estop` were asked for in one interval, `estop` wins
    (`release_estop` is then False): a release never overrides a stop.
    """

    estop: bool = False  # engage the e-stop now (keyboard: space; gamepad: B)
    release_estop: bool = False
    end_episode: bool = False  # the operator declares the episode over
    quit: bool = False

    @property
    def any(self) -> bool:
        return self.estop or self.release_estop or self.end_episode or self.quit


@runtime_checkable
class Operator(Protocol):
    """A source of env actions and operator events (a human with a device, or a script)."""

    device: str  # "keyboard" | "gamepad" | "scripted"

    def reset(self) -> None: ...
    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...
    def events(self) -> OperatorEvents: ...
    def close(self) -> None: ...


class EventLatch:
    """Collects event commands between two `take()` calls."""

    def __init__(self) -> None:
        self._asked: set[str] = set()

    def add(self, command: str) -> None:
        if command not in EVENT_COMMANDS:
            raise UnknownNameError("operator event", command, EVENT_COMMANDS)
        self._asked.add(command)

    def take(self) -> OperatorEvents:
        asked, self._asked = self._asked, set()
        estop = "estop" in asked
        return OperatorEvents(
            estop=estop,
            release_estop="release_estop" in asked and not estop,
            end_episode="end_episode" in asked,
            quit="quit" in asked,
        )


class DeviceOperator:
    """Shared behaviour of human devices: the robot's bindings and mapping, an event latch,
    checked actions.

    Both `act` and `events` read the device, so e-stop and quit requests arrive even while
    the loop holds and does not ask for actions. Robot commands read by `events` wait for
    the next `act`. Subclasses implement `_poll() -> Intent` (what arrived since the last
    poll, and the axes now; event commands may be among its commands) and `_close()`;
    `_on_estop()` forgets held inputs.
    """

    device = "device"

    def __init__(self, task: str, config: TeleopConfig | None = None):
        self.task = task
        self.config = config or TeleopConfig()
        self.robot = robot_of(task)
        self.bindings = teleop_bindings(self.robot)  # its robot.yaml's teleop section
        self.mapping = make_mapping(task, self.config)
        self._latch = EventLatch()
        self._closed = False
        self._pending: list[str] = []  # robot commands read, not yet applied
        self._axes: dict[str, float] = {}
        self._stopped = False  # an e-stop was asked for since the last action
        self.last_input = ""  # the newest key or button read, for the status line

    def reset(self) -> None:
        """A new episode: the mapping's start state (gripper open, start posture)."""
        self.mapping.reset()
        self._pending.clear()

    def state_text(self) -> str:
        """What the robot keeps between actions (gripper open/closed, preset), in words."""
        return self.mapping.state_text()

    def act(self, observation: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The env action for this control period (the observation is not needed).

        With no input it is a hold: zero motion, gripper (posture) unchanged. No motion in
        the period an e-stop was asked for (held inputs are forgotten)."""
        self._pump()
        axes = {} if self._stopped else self._axes
        commands, self._pending, self._stopped = tuple(self._pending), [], False
        action = self.mapping.action(Intent(axes, commands))
        if not np.isfinite(action).all():  # unreachable: mappings clip finite values
            raise TeleopError(f"{self.device} operator produced a non-finite action {action}")
        return action

    def events(self) -> OperatorEvents:
        self._pump()
        return self._latch.take()

    def _pump(self) -> None:
        if self._closed:
            raise TeleopError(f"the {self.device} operator is closed; make a new one")
        intent = self._poll()
        for command in intent.commands:
            if command in EVENT_COMMANDS:
                self._latch.add(command)
            else:
                self._pending.append(command)
        self._axes = dict(intent.axes)
        if "estop" in intent.commands:
            self._on_estop()
            self._stopped = True

    def close(self) -> None:
        """Release the device (restore the terminal / quit SDL); safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> DeviceOperator:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- hooks -------------------------------------------------------------------------
    def _poll(self) -> Intent:
        raise NotImplementedError

    def _close(self) -> None:
        """Release the device."""

    def _on_estop(self) -> None:
        """Forget held inputs so nothing moves when the e-stop is released."""


# -- registry ---------------------------------------------------------------------------------
OPERATORS: dict[str, str] = {
    "keyboard": "hardware.teleop.keyboard:KeyboardOperator",
    "gamepad": "hardware.teleop.gamepad:GamepadOperator",
    "scripted": "hardware.teleop.scripted:ScriptedOperator",
}


def register_operator(device: str, path: str) -> None:
    """Add a device: `path` is "module:Class", the class takes (task, config, **options)."""
    OPERATORS[device] = path


def _operator_class(device: str) -> Callable[..., Operator]:
    if device not in OPERATORS:
        raise UnknownNameError("teleop device", device, OPERATORS)
    module, _, name = OPERATORS[device].partition(":")
    return getattr(importlib.import_module(module), name)


def make_operator(
    device: str, task: str, config: TeleopConfig | None = None, **options: Any
) -> Operator:
    """An operator for `task` on `device` ("keyboard" | "gamepad" | "scripted").

    `options` go to the device (keyboard: `fd`, `out`, `clock`; gamepad: `clock`).
    """
    cls = _operator_class(device)
    get_task_spec(task)  # an unknown task is named before a device is opened
    return cls(task, config or TeleopConfig(), **options)
