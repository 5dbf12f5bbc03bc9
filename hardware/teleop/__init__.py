"""Teleoperation: keyboard (terminal), gamepad (SDL) and scripted operators for every task.

Run: `python -c "from hardware.teleop import make_operator; print(make_operator('scripted', 'fetch-reach'))"`

`make_operator(device, task, config)` returns an `Operator`: `act(observation) -> action`
and `reset()` like a policy, plus `events()` (e-stop, release, end episode, quit) and
`close()`. Devices produce named intents; `mapping` turns them into the task's env action.
"""  # noqa: E501

from hardware.teleop.config import TeleopConfig
from hardware.teleop.intent import Intent
from hardware.teleop.mapping import make_mapping
from hardware.teleop.operator import (
    OPERATORS,
    DeviceError,
    Operator,
    OperatorEvents,
    TeleopError,
    make_operator,
    register_operator,
)

__all__ = [
    "OPERATORS",
    "DeviceError",
    "Intent",
    "Operator",
    "OperatorEvents",
    "TeleopConfig",
    "TeleopError",
    "make_mapping",
    "make_operator",
    "register_operator",
]
