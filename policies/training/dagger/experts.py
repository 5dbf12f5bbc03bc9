"""Experts DAgger can query on any state the student visits: `--expert scripted`.

Run: `python -c "import policies.training.dagger.experts as e; print(e.make_experts('scripted',
'fetch-push', 2))"`

An expert acts on one env's observation dict and keeps its own per-episode state (a scripted
controller's phase), so the trainer holds one per env, resets it with its env, and calls it
at every step, also when the student drives: its phase then follows the student's episode.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from policies.training.errors import TrainingConfigError
from sim.scripted import ScriptedFetchPolicy

EXPERTS = ("scripted",)


class Expert(Protocol):
    """One env's expert: an action for each observation dict, per-episode state reset."""

    def reset(self) -> None: ...

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...


def _scripted_task(task: str) -> str:
    """The scripted controller's name of a Fetch task of any version (fetch-push-v0: push)."""
    return task.removesuffix("-v0")


def check_expert(expert: str, task: str) -> None:
    """Refuse an unknown expert, or one that cannot act on `task`, naming the option."""
    if expert not in EXPERTS:
        raise TrainingConfigError(f"option expert {expert!r}: use one of {', '.join(EXPERTS)}")
    if _scripted_task(task) not in ScriptedFetchPolicy.TASKS:
        raise TrainingConfigError(
            f"option expert {expert!r} has no controller for task {task!r}; it solves "
            f"{', '.join(ScriptedFetchPolicy.TASKS)} (and their -v0 versions)"
        )


def make_experts(expert: str, task: str, count: int) -> list[Expert]:
    """`count` independent experts for `task` (each with `reset()` and `__call__(obs)`)."""
    check_expert(expert, task)
    return [ScriptedFetchPolicy(_scripted_task(task)) for _ in range(count)]
