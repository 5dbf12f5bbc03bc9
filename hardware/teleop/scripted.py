"""The scripted operator: `sim.scripted`'s Fetch controllers behind the `Operator` protocol.

Run: `python -c "from hardware.teleop import make_operator as m; print(m('scripted', 'fetch-pick-and-place').device)"`

A careful, tireless human for tests and demo recording: it reads only the observation dict,
so it drives the twin or the real arm alike. It drives the Fetch tasks the controller solves
(reach, push, slide, pick-and-place) at the controller's own speed (`TeleopConfig.max_speed_m_s`
is for humans and does not apply). For a hand task it refuses by name: there is no scripted
in-hand manipulation. It never asks for events; the episode's time limit ends it.
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from hardware.teleop.config import TeleopConfig
from hardware.teleop.operator import OperatorEvents, TeleopError
from sim.errors import UnknownNameError
from sim.scripted import ScriptedFetchPolicy

_KEYS = ("observation", "desired_goal")


class ScriptedOperator:
    """`ScriptedFetchPolicy` as an operator (no device, no events)."""

    device = "scripted"

    def __init__(self, task: str, config: TeleopConfig | None = None):
        if task not in ScriptedFetchPolicy.TASKS:
            raise UnknownNameError("scripted operator task", task, ScriptedFetchPolicy.TASKS)
        self.task = task
        self.config = config or TeleopConfig()
        self._policy = ScriptedFetchPolicy(task)

    def reset(self) -> None:
        self._policy.reset()

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        missing = [key for key in _KEYS if key not in observation]
        if missing:
            raise TeleopError(
                f"scripted operator for {self.task}: the observation has no {missing} "
                f"(keys present: {sorted(observation)}); pass the env's observation dict"
            )
        return np.asarray(self._policy(observation), dtype=np.float32)

    def events(self) -> OperatorEvents:
        return OperatorEvents()

    def close(self) -> None:
        """Nothing to release."""
