"""`DaggerTrainer`: the expert labels every state the student visits; the student imitates.

Run: `twinbridge train --task fetch-pick-and-place --algo dagger --total-env-steps 60000
--out runs/pnp-dagger --export policies/zoo/fetch-pick-and-place.onnx --export-from best`

Why: behaviour cloning of a fixed set of demonstrations learns only the expert's states, and
a lagging, speed-limited arm leaves them after one imperfect action (99 recorded
pick-and-place demonstrations cloned to 0.57). DAgger (Ross, Gordon and Bagnell 2011) asks the
expert what it would do in the states the student itself reaches, aggregates those labels
and trains on all of them, so the student learns to recover from its own mistakes. The
expert here is a scripted controller (`experts`), queried at every step of every episode
on the true observation (without the randomization's observation noise, which the student
sees: it learns what the expert would do in the state it can only measure noisily).

One iteration collects an episode batch: the first `expert_env_steps` are driven by the
expert (its demonstrations), later episodes by the expert with probability `expert_share`
(falling to 0), otherwise by the deterministic student. Every visited (observation, expert
action) pair joins the dataset; then `updates_per_env_step` regression updates (mean squared
error of the tanh policy against the expert's action) run on dataset samples. Evaluation,
checkpoints, resume and export are the shared ones (TrainerBase); randomization and ADR
apply to every episode, and ADR hears only of episodes the student drove.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor, nn

from policies.observation import flatten_observation
from policies.training.checkpoint import CheckpointState
from policies.training.checkpoint import load_optimizer_tensors as _load_optimizer
from policies.training.checkpoint import optimizer_tensors as _optimizer_tensors
from policies.training.dagger.config import DaggerConfig
from policies.training.dagger.experts import make_experts
from policies.training.envs import LockstepEnvs
from policies.training.layers import mlp
from policies.training.normalizer import RunningNormalizer
from policies.training.options import RESUMABLE
from policies.training.trainer_base import TrainerBase

COLUMNS = (
    "epoch", "env_steps", "updates", "episodes", "wall_time_s", "success_rate", "eval_return",
    "imitation_loss", "expert_share", "env_steps_per_s", "updates_per_s",
)  # fmt: skip


class LabelledStates:
    """A ring buffer of (policy input, expert action) rows: DAgger's aggregated dataset."""

    def __init__(self, capacity: int, in_dim: int, action_dim: int):
        self.inputs = np.zeros((capacity, in_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.size = self.next = 0

    def add(self, inputs: np.ndarray, actions: np.ndarray) -> None:
        """Append rows, overwriting the oldest once full."""
        rows = (self.next + np.arange(len(inputs))) % len(self.inputs)
        self.inputs[rows], self.actions[rows] = inputs, actions
        self.next = int(rows[-1] + 1) % len(self.inputs)
        self.size = min(self.size + len(inputs), len(self.inputs))

    def sample(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        rows = rng.integers(0, self.size, count)
        return self.inputs[rows], self.actions[rows]

    def state_tensors(self, prefix: str) -> dict[str, Tensor]:
        rows = slice(0, self.size)
        return {f"{prefix}inputs": torch.from_numpy(self.inputs[rows].copy()),
                f"{prefix}actions": torch.from_numpy(self.actions[rows].copy())}  # fmt: skip

    def load_state_tensors(self, tensors: dict[str, Tensor], prefix: str, next_row: int) -> None:
        inputs, actions = tensors[f"{prefix}inputs"].numpy(), tensors[f"{prefix}actions"].numpy()
        self.size, self.next = len(inputs), next_row
        self.inputs[: self.size], self.actions[: self.size] = inputs, actions


def _expert_view(obs: dict[str, np.ndarray], env: int) -> dict[str, np.ndarray]:
    """Env `env`'s observation dict as the expert sees it: without observation noise."""
    return {"observation": obs["true_observation"][env],
            "achieved_goal": obs["achieved_goal"][env],
            "desired_goal": obs["desired_goal"][env]}  # fmt: skip


class DaggerTrainer(TrainerBase):
    """Owns the envs, experts, dataset, normalizer, policy and RNGs of one run."""

    log_columns: tuple[str, ...] = COLUMNS
    config_class = DaggerConfig
    resumable = RESUMABLE
    config: DaggerConfig

    def __init__(self, config: DaggerConfig, envs: LockstepEnvs | None = None):
        self._open_run(config, envs, privileged=True)  # the expert sees true observations
        self.steps = config.episode_steps()
        space = self.envs.single_observation_space
        in_dim = int(space["observation"].shape[0]) + int(space["desired_goal"].shape[0])  # type: ignore[index]
        action_dim = int(self.envs.single_action_space.shape[0])
        self.experts = make_experts(config.expert, config.task, config.num_envs)
        self.normalizer = RunningNormalizer(
            in_dim, config.norm_eps, config.obs_clip, config.norm_clip
        )
        self.policy = nn.Sequential(mlp(in_dim, config.hidden_sizes, action_dim), nn.Tanh())
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.dataset = LabelledStates(config.dataset_size_transitions, in_dim, action_dim)
        self._new_counters(update_credit=0.0)

    # -- one iteration ----------------------------------------------------------------------
    def iterate(self) -> dict[str, float]:
        """Collect one episode batch, add its labelled states, run the updates it pays for."""
        start = time.perf_counter()
        share = self.expert_share()
        inputs, labels = self.collect(share)
        self.dataset.add(inputs, labels)
        self.normalizer.update(inputs)
        n = self.config.num_envs * self.steps
        self.counters["env_steps"] += n
        self.counters["episodes"] += self.config.num_envs
        middle = time.perf_counter()
        losses = self._train(n)
        self.counters["collect_s"] += middle - start
        self.counters["update_s"] += time.perf_counter() - middle
        return {**losses, "expert_share": share}

    def expert_share(self) -> float:
        """The probability that the expert drives an episode of the next batch."""
        c, done = self.config, self.counters["env_steps"]
        if done < c.expert_env_steps:
            return 1.0
        span = c.expert_share_end_env_steps - c.expert_env_steps
        left = 1.0 - (done - c.expert_env_steps) / span if span > 0 else 0.0
        return c.expert_share * min(max(left, 0.0), 1.0)

    def collect(self, share: float) -> tuple[np.ndarray, np.ndarray]:
        """One episode per env; every visited state labelled by its env's expert."""
        n = self.config.num_envs
        seeds = self.rng.integers(0, 2**31 - 1, n).tolist()
        obs = self.envs.reset(seeds, self.randomization.plan(n, self.rng))
        expert_drives = self.rng.random(n) < share
        for expert in self.experts:
            expert.reset()
        inputs, labels = [], []
        success = np.zeros(n, dtype=bool)
        for _ in range(self.steps):
            x = flatten_observation(obs)
            label = np.stack([expert(_expert_view(obs, i))
                              for i, expert in enumerate(self.experts)])  # fmt: skip
            action = np.where(expert_drives[:, None], label, self._act(x))
            inputs.append(x)
            labels.append(label)
            obs, success = self.envs.step(action.astype(np.float32))
        self.randomization.report(success, counted=~expert_drives)
        return np.concatenate(inputs), np.concatenate(labels).astype(np.float32)

    def _act(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.policy(self.normalizer.normalize(torch.from_numpy(x))).numpy()

    def _train(self, new_steps: int) -> dict[str, float]:
        self.counters["update_credit"] += self.config.updates_per_env_step * new_steps
        count = int(self.counters["update_credit"])
        self.counters["update_credit"] -= count
        losses = [self._update() for _ in range(count)]
        self.counters["updates"] += count
        return {"imitation_loss": float(np.mean(losses))} if losses else {}

    def _update(self) -> float:
        inputs, labels = self.dataset.sample(self.rng, self.config.batch_size)
        x = self.normalizer.normalize(torch.from_numpy(inputs))
        loss = (self.policy(x) - torch.from_numpy(labels)).square().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    # -- evaluation and export --------------------------------------------------------------
    def _eval_batch(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        obs = self.envs.reset(seeds)
        ret = np.zeros(len(seeds))
        success = np.zeros(len(seeds), dtype=bool)
        for _ in range(self.steps):
            obs, success = self.envs.step(self._act(flatten_observation(obs)))
            ret += success.astype(float) - 1.0  # sparse reward: 0 on success, else -1
        return success, ret

    def _deployable(self) -> tuple[str, nn.Module, Tensor, Tensor]:
        """The policy (normalized input -> tanh action) and the input normalizer."""
        return "policy", self.policy, self.normalizer.mean, self.normalizer.std

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> CheckpointState:
        """Everything needed to continue this run bit-identically."""
        tensors = {f"policy/{k}": v for k, v in self.policy.state_dict().items()}
        tensors.update(_optimizer_tensors("optim/policy/", self.optimizer))
        tensors.update(self.normalizer.state_tensors("normalizer/"))
        tensors.update(self.dataset.state_tensors("dataset/"))
        tensors.update(self.run_tensors())
        counters = {**self.counters, "dataset_next": self.dataset.next}
        counters.update(self.randomization.counters())
        return CheckpointState(
            self.config.task, self.config.algo, self.config.to_dict(), tensors, counters
        )

    def _restore(self, state: CheckpointState) -> None:
        t = state.tensors
        self.policy.load_state_dict(
            {k.removeprefix("policy/"): v for k, v in t.items() if k.startswith("policy/")}
        )
        _load_optimizer("optim/policy/", self.optimizer, t)
        self.normalizer.load_state_tensors(t, "normalizer/")
        self._restore_run_tensors(t)
        counters = dict(state.counters)
        self.dataset.load_state_tensors(t, "dataset/", int(counters.pop("dataset_next")))
        self.randomization.restore(counters, int(counters["env_steps"]))
        self.counters.update(counters)
