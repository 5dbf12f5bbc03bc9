"""Training rewards for PPO: Dactyl's shaped reward, or the task's own (sparse) reward.

Dactyl (OpenAI et al. 2018) rewards each step with the decrease of the rotation angle to
the goal, d_t - d_{t+1}, adds 5 when the goal is reached and subtracts 20 when the object
is dropped, which ends the episode. Here the distances are the task's own
(`Task.goal_distances`: `rotation_rad`, and `position_m` where position counts), weighted
per unit; since every episode has one goal and a fixed length, the success bonus is paid
for every step that ends at the goal (holding it is what the success metric, `is_success`
at the last step, asks for; a bonus per arrival would pay for leaving and coming back).
Undiscounted, the distance terms of an episode sum to d_0 - d_T: the return is driven by
the final distance, the quantity the success test thresholds.

Numpy only: the trainer calls it on batched goals after each lockstep env step.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from policies.training.errors import TrainingConfigError
from sim.tasks import get_task_spec, task_class
from sim.tasks.base import Task


class TrainingReward(Protocol):
    """Reward of a batch of transitions, and whether each one dropped the object."""

    def __call__(
        self, achieved_before: np.ndarray, achieved_after: np.ndarray, desired: np.ndarray,
        success: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]: ...  # fmt: skip


class DactylReward:
    """Weighted goal-distance decrease + success bonus - drop penalty (see module doc)."""

    def __init__(
        self, task: str, per_unit: dict[str, float], success_bonus: float, drop_penalty: float
    ):
        spec = get_task_spec(task)
        self.task: Task = task_class(spec.task_class)(**spec.kwargs)  # unbound: no MuJoCo
        self.success_bonus, self.drop_penalty = success_bonus, drop_penalty
        self.weights = _weights(self.task, task, per_unit)

    def __call__(
        self, achieved_before: np.ndarray, achieved_after: np.ndarray, desired: np.ndarray,
        success: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        before = self.task.goal_distances(achieved_before, desired)
        after = self.task.goal_distances(achieved_after, desired)
        reward = sum(w * (before[k] - after[k]) for k, w in self.weights.items())
        dropped = self.task.is_dropped(achieved_after)
        reward = reward + self.success_bonus * success - self.drop_penalty * dropped
        return np.asarray(reward, dtype=np.float64), dropped


class EnvReward:
    """The task's own batch `compute_reward`; nothing ends an episode early."""

    def __init__(self, compute_reward: Any):
        self.compute_reward = compute_reward

    def __call__(
        self, achieved_before: np.ndarray, achieved_after: np.ndarray, desired: np.ndarray,
        success: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        reward = np.asarray(self.compute_reward(achieved_after, desired, None), np.float64)
        return reward, np.zeros(len(reward), dtype=bool)


def make_training_reward(config: Any, compute_reward: Any) -> TrainingReward:
    """The reward `config.reward` names ("dactyl" or "env")."""
    if config.reward == "env":
        return EnvReward(compute_reward)
    per_unit = {"rad": config.reward_per_rad, "m": config.reward_per_m}
    return DactylReward(config.task, per_unit, config.success_bonus, config.drop_penalty)


def _weights(task: Task, name_of_task: str, per_unit: dict[str, float]) -> dict[str, float]:
    """Weight of each distance the task reports, from the unit ending its name."""
    probe = np.zeros((1, task.goal_dim))
    probe[:, 3:4] = 1.0  # a unit quaternion where goals are poses; harmless elsewhere
    weights = {}
    for name in task.goal_distances(probe, probe):
        unit = name.rpartition("_")[2]
        if unit not in per_unit:
            raise TrainingConfigError(
                f"task {name_of_task}: goal distance {name!r} has unit {unit!r}; the dactyl "
                f"reward weighs only {', '.join(per_unit)} (use --reward env for this task)"
            )
        weights[name] = per_unit[unit]
    return weights
