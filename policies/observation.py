"""The policy input layout of goal-conditioned tasks, and each task's observation/action specs.

Torch-free: the trainer, the exporter and the robot-side runner share this one definition
of what a policy sees, so a layout change cannot reach only one of them.

Run: `python -c "from policies.observation import observation_spec as s; print(s('fetch-push'))"`
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import numpy as np

from policies.card import ActionField, FieldSpec
from sim.actuation import actuation_of
from sim.tasks import get_task_spec, task_class
from sim.tasks.base import Task

__all__ = [
    "ActionField",
    "FieldSpec",
    "TaskInfo",
    "action_spec",
    "flatten_observation",
    "observation_spec",
    "task_info",
]


def flatten_observation(obs: dict[str, np.ndarray]) -> np.ndarray:
    """concat(observation, desired_goal) along the last axis, as float32 (batches too).

    `achieved_goal` is left out: for every task here it is a function of `observation`.
    """
    return np.concatenate((obs["observation"], obs["desired_goal"]), axis=-1, dtype=np.float32)


@cache
def _task(task_name: str) -> Task:
    """An unbound Task instance (cheap: no MuJoCo model is loaded)."""
    spec = get_task_spec(task_name)
    return task_class(spec.task_class)(**spec.kwargs)


def observation_spec(task_name: str) -> list[FieldSpec]:
    """The ordered fields of `flatten_observation` for a task: its observation, then the goal."""
    task = _task(task_name)
    fields = [FieldSpec(name, size, unit) for name, size, unit in task.observation_fields()]
    return [*fields, FieldSpec("desired_goal", task.goal_dim, task.goal_unit)]


@dataclass(frozen=True)
class TaskInfo:
    """What a model card records about the task a policy was trained on."""

    task: str
    gym_id: str
    env_version: int
    robot: str
    control_rate_hz: float
    observation: tuple[FieldSpec, ...]
    action: tuple[ActionField, ...]
    actuation: dict[str, Any]  # the env's sim.actuation config (model "robot" or "ideal")

    def card_fields(self) -> dict[str, Any]:
        """The task half of a `ModelCard`: every exporter fills it the same way."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@cache
def task_info(task_name: str) -> TaskInfo:
    """Specs, control rate and ids of a task; loads its MuJoCo model once (~0.1 s)."""
    from sim.twin import Twin

    spec = get_task_spec(task_name)
    task = _task(task_name)
    twin = Twin.load(task.robot, task.scene)
    try:
        rate_hz = 1.0 / (float(twin.model.opt.timestep) * task.frame_skip)
        action = action_spec(task, twin)
    finally:
        twin.close()
    return TaskInfo(
        task=task_name,
        gym_id=spec.gym_id,
        env_version=env_version(spec.gym_id),
        robot=task.robot,
        control_rate_hz=rate_hz,
        observation=tuple(observation_spec(task_name)),
        action=tuple(action),
        actuation=actuation_of(spec.actuation).to_dict(),
    )


def action_spec(task: Task, twin: Any) -> list[ActionField]:
    """The task's action components by name and unit, with the action space's bounds."""
    space = task.action_space
    fields = task.action_fields(twin)
    low, high = space.low.reshape(-1), space.high.reshape(-1)
    if len(fields) != len(low):
        raise ValueError(
            f"{type(task).__name__}.action_fields() names {len(fields)} components but the "
            f"action space has {len(low)}; fix action_fields"
        )
    return [
        ActionField(name, unit, float(lo), float(hi))
        for (name, unit), lo, hi in zip(fields, low, high, strict=True)
    ]


def env_version(gym_id: str) -> int:
    """The N of a Gymnasium id `namespace/Name-vN`."""
    head, sep, version = gym_id.rpartition("-v")
    if not sep or not head or not version.isdigit():
        raise ValueError(f"gym id {gym_id!r} does not end in -v<N>")
    return int(version)
