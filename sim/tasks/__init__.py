"""The task registry: CLI names (`fetch-push`), Gymnasium ids and the Task classes behind them.

The table is plain data (no physics engine, no Gymnasium), so the robot side may read a
task's episode length. `import sim.envs` registers every id with Gymnasium, so
`gymnasium.make("twinbridge/FetchPush-v0")` works; `sim.envs.make_task_env("fetch-push")` is
the same by CLI name. Task classes are imported lazily, by "module:Class" path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from sim.errors import UnknownNameError


@dataclass(frozen=True)
class TaskSpec:
    """One registered task: how users name it and how to build it."""

    name: str  # CLI name, e.g. "fetch-push"
    gym_id: str  # e.g. "twinbridge/FetchPush-v0"
    task_class: str  # "module:Class"
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)  # task constructor arguments


_FETCH = "sim.tasks.fetch"
_HAND = "sim.tasks.hand"
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("fetch-reach", "twinbridge/FetchReach-v0", f"{_FETCH}:FetchReach", 50),
        TaskSpec("fetch-push", "twinbridge/FetchPush-v0", f"{_FETCH}:FetchPush", 50),
        TaskSpec("fetch-slide", "twinbridge/FetchSlide-v0", f"{_FETCH}:FetchSlide", 50),
        TaskSpec(
            "fetch-pick-and-place",
            "twinbridge/FetchPickAndPlace-v0",
            f"{_FETCH}:FetchPickAndPlace",
            50,
        ),
        TaskSpec("hand-reach", "twinbridge/HandReach-v0", f"{_HAND}:HandReach", 50),
        *(
            TaskSpec(
                f"hand-block-{variant}" if variant != "full" else "hand-block",
                "twinbridge/HandBlock-v0",
                f"{_HAND}:HandBlock",
                100,
                {"variant": variant},
            )
            for variant in ("rotate-z", "rotate-parallel", "rotate-xyz", "full")
        ),
        TaskSpec("hand-egg", "twinbridge/HandEgg-v0", f"{_HAND}:HandEgg", 100),
        TaskSpec("hand-pen", "twinbridge/HandPen-v0", f"{_HAND}:HandPen", 100),
    )
}

DEFAULT_TASK = "fetch-push"


def get_task_spec(name: str) -> TaskSpec:
    """The spec registered under CLI name `name`, or an error listing valid names."""
    if name not in TASKS:
        raise UnknownNameError("task", name, TASKS)
    return TASKS[name]


def task_class(path: str) -> type:
    """Import a Task class from its "module:Class" path."""
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)
