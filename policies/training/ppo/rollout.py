"""PPO rollout storage, GAE(lambda), and the BPTT chunks minibatches are made of.

A rollout is `episodes_per_rollout` whole episodes of every env; row r holds episode
r // num_envs of env r % num_envs. Time is padded to whole chunks of `bptt_steps`, and each
chunk carries the LSTM state the policy had at its first step (zero when that step starts
an episode). Chunks never cross an episode boundary, so training replays exactly the
states the rollout saw: truncated BPTT over a chunk starts from the stored state, never
from another episode's. Padding and the steps after a drop are masked out by `valid`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from policies.training.ppo.networks import LstmState


@dataclass
class Chunks:
    """Training view of a rollout: one row per BPTT chunk, [num_chunks, bptt, ...]."""

    policy_in: Tensor
    value_in: Tensor
    actions: Tensor
    log_probs: Tensor
    advantages: Tensor
    value_targets: Tensor  # normalized returns
    valid: Tensor
    h0: Tensor
    c0: Tensor

    def __len__(self) -> int:
        return int(self.policy_in.shape[0])

    def select(self, index: Tensor) -> Chunks:
        """The chunks at `index` (a minibatch)."""
        return Chunks(*(getattr(self, f.name)[index] for f in fields(self)))


class Rollout:
    """Arrays of one rollout, filled step by step by the trainer (see the module doc)."""

    def __init__(self, rows: int, steps: int, bptt: int, dims: dict[str, int], lstm_size: int):
        self.steps, self.bptt = steps, bptt
        self.num_chunks = -(-steps // bptt)
        padded = self.num_chunks * bptt
        self.policy_in = torch.zeros(rows, padded, dims["policy"])
        self.value_in = torch.zeros(rows, padded, dims["value"])
        self.actions = torch.zeros(rows, padded, dims["action"])
        self.log_probs = torch.zeros(rows, padded)
        self.values = np.zeros((rows, steps))  # in return units
        self.rewards = np.zeros((rows, steps))
        self.valid = np.zeros((rows, padded), dtype=bool)
        self.terminal = np.zeros((rows, steps), dtype=bool)
        self.h0 = torch.zeros(rows, self.num_chunks, lstm_size)
        self.c0 = torch.zeros(rows, self.num_chunks, lstm_size)
        self.success = np.zeros(rows, dtype=bool)  # is_success at each episode's last step
        self.raw_inputs: dict[str, list[np.ndarray]] = {"obs": [], "privileged": []}

    def record(self, rows: slice, t: int, step: dict[str, Tensor | np.ndarray]) -> None:
        """Store step t of the episodes in `rows` (keys: the arrays above, per row)."""
        for name, value in step.items():
            getattr(self, name)[rows, t] = value

    def store_state(self, rows: slice, t: int, state: LstmState) -> None:
        """Record the LSTM state before step t when t starts a chunk."""
        if t % self.bptt == 0:
            self.h0[rows, t // self.bptt] = state[0]
            self.c0[rows, t // self.bptt] = state[1]

    def chunks(self, advantages: np.ndarray, value_targets: np.ndarray) -> Chunks:
        """Everything training needs, one row per chunk ([rows * num_chunks, bptt, ...])."""
        rows, padded = self.valid.shape

        def per_chunk(x: Tensor) -> Tensor:
            return x.reshape(rows * self.num_chunks, self.bptt, *x.shape[2:])

        return Chunks(
            per_chunk(self.policy_in), per_chunk(self.value_in), per_chunk(self.actions),
            per_chunk(self.log_probs), per_chunk(_padded(advantages, padded)),
            per_chunk(_padded(value_targets, padded)),
            per_chunk(torch.from_numpy(self.valid)),
            self.h0.reshape(rows * self.num_chunks, -1),
            self.c0.reshape(rows * self.num_chunks, -1),
        )  # fmt: skip


def gae(
    rewards: np.ndarray, values: np.ndarray, terminal: np.ndarray, gamma: float, lam: float
) -> np.ndarray:
    """GAE(lambda) advantages over [rows, steps]; nothing is bootstrapped past a terminal step.

    Every episode ends at a terminal step (its last, or a drop): the value sees the
    fraction of the episode left, so the finite-horizon return is what it estimates.
    """
    advantages = np.zeros_like(rewards)
    running = np.zeros(len(rewards))
    for t in reversed(range(rewards.shape[1])):
        going_on = 1.0 - terminal[:, t]
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else 0.0
        delta = rewards[:, t] + gamma * going_on * next_value - values[:, t]
        running = delta + gamma * lam * going_on * running
        advantages[:, t] = running
    return advantages


def _padded(x: np.ndarray, width: int) -> Tensor:
    out = np.zeros((len(x), width), dtype=np.float32)
    out[:, : x.shape[1]] = x
    return torch.from_numpy(out)
