"""What an operator asks for (`Intent`) and what turns it into an env action (`ActionMapping`).

Run: `python -c "from hardware.teleop.intent import Intent; print(Intent({'x': 1.0}))"`

Devices differ (keys, sticks), the meaning of an input does not: devices produce only
intents, named axes in [-1, 1] and named discrete commands, and a mapping (one of the kinds
in `hardware.teleop.bindings.MAPPING_KINDS`) turns them into the task's env action. The
event commands are the loop's, not the robot's, and mean the same on every robot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

EVENT_COMMANDS = ("estop", "release_estop", "end_episode", "quit")


@dataclass(frozen=True)
class Intent:
    """What the operator asks for during one control period."""

    axes: Mapping[str, float] = field(default_factory=dict)  # named axes, each in [-1, 1]
    commands: tuple[str, ...] = ()  # discrete commands, in the order they were given


class ActionMapping(Protocol):
    """Intent -> env action; `axes` and `commands` are the names it understands."""

    @property
    def axes(self) -> tuple[str, ...]: ...
    @property
    def commands(self) -> tuple[str, ...]: ...

    def reset(self) -> None: ...
    def action(self, intent: Intent) -> np.ndarray: ...
    def state_text(self) -> str: ...  # for the status line: "gripper open", "preset power"


def axis_value(intent: Intent, name: str) -> float:
    """The axis `name` clipped to [-1, 1]; 0 when absent or not finite."""
    value = float(intent.axes.get(name, 0.0))
    return min(max(value, -1.0), 1.0) if np.isfinite(value) else 0.0
