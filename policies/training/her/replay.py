"""Episode-structured replay with HER `future` relabelling, vectorized in numpy.

Episodes have a fixed length T, so the buffer is a ring of whole episodes: observations and
achieved goals have T + 1 rows (the last is the final state), desired goals and actions T.
Sampling draws (episode, t) pairs, replaces the goal of a `relabel_probability` share with an
achieved goal from a later step of the same episode (HER's `future`, Andrychowicz et al. 2017),
and recomputes every reward with the env's batch `compute_reward` — no per-sample Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

RewardFn = Callable[[np.ndarray, np.ndarray, Any], Any]
_FIELDS = ("obs", "achieved", "desired", "actions")


@dataclass
class EpisodeBatch:
    """n complete episodes: obs/achieved (n, T+1, .), desired/actions (n, T, .)."""

    obs: np.ndarray
    achieved: np.ndarray
    desired: np.ndarray
    actions: np.ndarray


@dataclass
class Transitions:
    """A sampled minibatch (float32 tensors except `achieved_next`/`goal`, kept for tests)."""

    obs: np.ndarray
    goal: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    achieved_next: np.ndarray
    relabelled: np.ndarray


class EpisodeReplay:
    """A ring buffer of whole episodes with HER sampling."""

    def __init__(self, capacity_episodes: int, steps: int, dims: dict[str, int]):
        self.capacity, self.steps = capacity_episodes, steps
        self.obs = np.zeros((capacity_episodes, steps + 1, dims["obs"]), np.float32)
        self.achieved = np.zeros((capacity_episodes, steps + 1, dims["goal"]))
        self.desired = np.zeros((capacity_episodes, steps, dims["goal"]))
        self.actions = np.zeros((capacity_episodes, steps, dims["action"]), np.float32)
        self.size = 0
        self.next = 0  # ring position of the next episode written

    def add(self, batch: EpisodeBatch) -> None:
        """Store the episodes of `batch`, overwriting the oldest when full."""
        n = len(batch.obs)
        rows = (self.next + np.arange(n)) % self.capacity
        for name in _FIELDS:
            getattr(self, name)[rows] = getattr(batch, name)
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(
        self, rng: np.random.Generator, batch_size: int, relabel_p: float, reward_fn: RewardFn
    ) -> Transitions:
        """`batch_size` transitions, a `relabel_p` share with future achieved goals."""
        ep = rng.integers(0, self.size, batch_size)
        t = rng.integers(0, self.steps, batch_size)
        relabel = rng.random(batch_size) < relabel_p
        # future step in [t + 1, T]: an achieved goal reached after this action
        future = t + 1 + (rng.random(batch_size) * (self.steps - t)).astype(np.int64)
        goal = self.desired[ep, t]
        goal[relabel] = self.achieved[ep[relabel], future[relabel]]
        achieved_next = self.achieved[ep, t + 1]
        reward = np.asarray(reward_fn(achieved_next, goal, None), dtype=np.float32)
        return Transitions(
            self.obs[ep, t], goal, self.actions[ep, t], reward, self.obs[ep, t + 1],
            achieved_next, relabel,
        )  # fmt: skip

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The filled part of every array, for bit-identical resume."""
        return {
            f"{prefix}{name}": torch.from_numpy(getattr(self, name)[: self.size].copy())
            for name in _FIELDS
        }

    def load_state_tensors(
        self, tensors: dict[str, torch.Tensor], prefix: str, size: int, next_row: int
    ) -> None:
        """Restore what `state_tensors` saved (`size`, `next_row` come from the JSON)."""
        for name in _FIELDS:
            getattr(self, name)[:size] = tensors[f"{prefix}{name}"].numpy()
        self.size, self.next = size, next_row
