"""The task registry: CLI names (`fetch-push`), Gymnasium ids and the Task classes behind them.

`import sim` registers every id below with Gymnasium, so
`gymnasium.make("twinbridge/FetchPush-v0")` works; `make_task_env("fetch-push")` is the
same by CLI name. Task classes are imported lazily, by "module:Class" path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

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


def make_env(task: str, render_mode: str | None = None, **kwargs: Any):
    """Gymnasium entry point: build a TwinGoalEnv for the Task class at path `task`."""
    from sim.envs import TwinGoalEnv

    env_keys = {"width", "height", "camera", "privileged_state", "randomization"}
    env_kwargs = {k: v for k, v in kwargs.items() if k in env_keys}
    task_kwargs = {k: v for k, v in kwargs.items() if k not in env_keys}
    return TwinGoalEnv(task_class(task)(**task_kwargs), render_mode=render_mode, **env_kwargs)


def register_all() -> None:
    """Register every task id with Gymnasium (idempotent)."""
    seen: set[str] = set()
    for spec in TASKS.values():
        if spec.gym_id in seen or spec.gym_id in gym.registry:
            continue
        seen.add(spec.gym_id)
        default_kwargs = {"task": spec.task_class}
        if spec.gym_id == "twinbridge/HandBlock-v0":
            default_kwargs["variant"] = "full"
        gym.register(
            id=spec.gym_id,
            entry_point="sim.tasks:make_env",
            kwargs=default_kwargs,
            max_episode_steps=spec.max_episode_steps,
        )


def make_task_env(name: str, **kwargs: Any) -> gym.Env:
    """`gymnasium.make` by CLI task name, with the task's variant arguments filled in."""
    spec = get_task_spec(name)
    register_all()
    return gym.make(spec.gym_id, **{**spec.kwargs, **kwargs})
