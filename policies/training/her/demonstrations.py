"""Learning from demonstrations (Nair et al. 2018) for the HER learner: demo buffer and losses.

Run: `twinbridge train --task fetch-pick-and-place --algo her-td3 --demonstrations-dir DIR
--out runs/pnp-demos` (DIR: a dataset of `hardware.recording.dataset`)

Why: on tasks whose reward is almost never reached by exploration (pick-and-place needs a
grasp before any goal in the air can be met), a hundred demonstrations give the learner the
states and actions that lead there. Nair et al. add three things to DDPG + HER, kept here:

1. A second buffer of demonstration transitions, sampled every update (`demo_batch_size`
   next to `batch_size` replay samples) and HER-relabelled exactly like the replay: a
   `relabel_probability` share gets a future achieved goal of the same demonstration, and
   every reward is recomputed with the task's batch `compute_reward`. Critic and actor's Q
   term train on both parts.
2. A behaviour-cloning term on the demonstration part of the actor loss,
   `bc_loss_weight * mean_i ||pi(s_i) - a_i||^2` (the paper's sum with lambda / N_D).
3. The Q-filter: that term counts only where the critic rates the demonstrated action above
   the actor's, Q(s, a_i) > Q(s, pi(s)), so the policy can outgrow imperfect demonstrations.

For SAC, pi(s) in both is the deterministic action tanh(mean); the Q is the one each actor
loss uses (TD3: the first critic; SAC: the minimum of the two). The paper's resets to demo
states are not implemented. Demonstrations do not live in checkpoints: the dataset is read
again on resume, and its identity (directory and sha256) must match the checkpoint's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hardware.recording.dataset import DemonstrationError, Demonstrations, load_dataset
from policies.training.errors import TrainingConfigError
from policies.training.her.replay import RewardFn, Transitions

QFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, action) -> (batch,)


class DemoBuffer:
    """Every transition of the successful demonstrations, with HER `future` sampling.

    Episodes may differ in length: states of all episodes are stacked (T_e + 1 rows each),
    and each transition knows its state row and its episode's last state row.
    """

    def __init__(self, episodes: list[dict[str, np.ndarray]]):
        if not episodes:
            raise ValueError("DemoBuffer needs at least one episode")
        states = np.cumsum([0] + [len(e["action"]) + 1 for e in episodes])[:-1]  # first rows
        self.obs = np.concatenate([e["observation"] for e in episodes]).astype(np.float32)
        self.achieved = np.concatenate([e["achieved_goal"] for e in episodes]).astype(np.float64)
        self.desired = np.concatenate([e["desired_goal"][:-1] for e in episodes]).astype(
            np.float64
        )
        self.actions = np.concatenate([e["action"] for e in episodes]).astype(np.float32)
        pairs = list(zip(states, [len(e["action"]) for e in episodes], strict=True))
        self.state_row = np.concatenate([s + np.arange(t) for s, t in pairs])
        self.last_row = np.concatenate([np.full(t, s + t) for s, t in pairs])
        self.episodes = len(episodes)

    def __len__(self) -> int:
        return len(self.actions)

    def sample(
        self, rng: np.random.Generator, batch_size: int, relabel_p: float, reward_fn: RewardFn
    ) -> Transitions:
        """`batch_size` demo transitions, a `relabel_p` share with future achieved goals."""
        i = rng.integers(0, len(self), batch_size)
        s, last = self.state_row[i], self.last_row[i]
        relabel = rng.random(batch_size) < relabel_p
        # future state in [s + 1, last]: an achieved goal reached after this action
        future = s + 1 + (rng.random(batch_size) * (last - s)).astype(np.int64)
        goal = self.desired[i]
        goal[relabel] = self.achieved[future[relabel]]
        achieved_next = self.achieved[s + 1]
        reward = np.asarray(reward_fn(achieved_next, goal, None), dtype=np.float32)
        return Transitions(
            self.obs[s], goal, self.actions[i], reward, self.obs[s + 1], achieved_next, relabel
        )

    def normalizer_inputs(self, rng: np.random.Generator, relabel_p: float) -> np.ndarray:
        """Every transition's (obs, goal) with goals relabelled as in sampling, for the
        normalizer's statistics (the networks see demo inputs too)."""
        s, last = self.state_row, self.last_row
        goal = self.desired.copy()
        relabel = rng.random(len(self)) < relabel_p
        future = s + 1 + (rng.random(len(self)) * (last - s)).astype(np.int64)
        goal[relabel] = self.achieved[future[relabel]]
        return np.concatenate([self.obs[s], goal], axis=-1)


@dataclass(frozen=True)
class DemoIdentity:
    """What a checkpoint records of the dataset a run learned from."""

    directory: str
    sha256: str
    episodes: int

    def describe(self) -> str:
        return f"{self.directory} (sha256 {self.sha256[:12]}..., {self.episodes} episodes)"


def load_demo_buffer(
    directory: str, task: str, robot: str, rate_hz: float, dims: dict[str, int]
) -> tuple[DemoBuffer, DemoIdentity]:
    """The successful episodes of the dataset in `directory`, checked against the run's
    task, robot, control rate and obs/goal/action sizes; a bad dataset is a config error."""
    try:
        data: Demonstrations = load_dataset(
            directory, task=task, robot=robot, dims=dims, control_rate_hz=rate_hz
        )
    except DemonstrationError as e:
        raise TrainingConfigError(f"option demonstrations_dir: {e}") from e
    episodes = data.successful
    identity = DemoIdentity(str(data.directory.resolve()), data.sha256, len(episodes))
    return DemoBuffer(episodes), identity


# -- losses -------------------------------------------------------------------------------
@torch.no_grad()
def q_filter_mask(
    q: QFunction, x: torch.Tensor, demo_action: torch.Tensor, policy_action: torch.Tensor
) -> torch.Tensor:
    """1.0 where Q(s, a_demo) > Q(s, pi(s)), else 0.0 (the Q-filter; no gradients)."""
    return (q(x, demo_action) > q(x, policy_action)).to(demo_action.dtype)


def behaviour_cloning_loss(
    policy_action: torch.Tensor, demo_action: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """mean_i mask_i * ||pi(s_i) - a_i||^2 over the demo samples (masked ones count as 0)."""
    return ((policy_action - demo_action).square().sum(-1) * mask).mean()


def demo_actor_term(
    q: QFunction,
    x: torch.Tensor,
    policy_action: torch.Tensor,
    demo_action: torch.Tensor,
    weight: float,
    q_filter: bool,
) -> tuple[torch.Tensor, dict[str, float]]:
    """`weight` times the (Q-filtered) BC loss on demo rows, and its log values.

    `policy_action` is the actor's deterministic action on `x` (with gradients).
    """
    if q_filter:
        mask = q_filter_mask(q, x, demo_action, policy_action.detach())
    else:
        mask = torch.ones(len(x), dtype=demo_action.dtype)
    loss = behaviour_cloning_loss(policy_action, demo_action, mask)
    return weight * loss, {"bc_loss": float(loss.detach()), "q_filter_pass": float(mask.mean())}
