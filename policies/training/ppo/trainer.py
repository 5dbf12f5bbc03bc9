"""`PpoLstmTrainer`: PPO with a Dactyl-shaped LSTM policy and an asymmetric value function.

Run: `twinbridge train --algo ppo-lstm --task hand-block-rotate-z --total-env-steps 200000
--out runs/block-z`

One iteration collects `episodes_per_rollout` whole episodes from each of the `num_envs`
lockstep envs (reset with seeds from the run's numpy RNG; the LSTM state zeroed at every
episode start), with Gaussian noise around the policy's tanh mean, clipped to the action
bounds only when stepping. The value network sees the privileged simulator state
(`Task.privileged_state`) besides the policy's input. Then GAE(lambda) advantages (nothing
bootstrapped past an episode's end or a drop), normalized; value targets normalized by
running return statistics; `epochs_per_rollout` passes of `num_minibatches` minibatches of
whole BPTT chunks (`policies.training.ppo.rollout`), clipped-surrogate and value losses
(`policies.training.ppo.loss`), Adam, per-network gradient-norm clipping.

Inputs are normalized with the statistics of earlier rollouts and stored normalized, so
training replays the rollout's exact inputs; the statistics then absorb the new rollout.
All randomness comes from one numpy Generator and one torch Generator whose states are
checkpointed with everything else: N steps + resume + M steps equals N + M steps bit for
bit (same thread count). Checkpoints fall between rollouts, i.e. between episodes, so no
env state needs saving.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from policies.observation import flatten_observation
from policies.training.checkpoint import (
    CheckpointState,
    load_optimizer_tensors,
    optimizer_tensors,
)
from policies.training.envs import LockstepEnvs, Options
from policies.training.errors import TrainingConfigError
from policies.training.normalizer import RunningNormalizer
from policies.training.options import RESUMABLE
from policies.training.ppo.config import PpoLstmConfig
from policies.training.ppo.loss import ppo_losses
from policies.training.ppo.networks import LstmGaussianPolicy, PrivilegedValue
from policies.training.ppo.reward import make_training_reward
from policies.training.ppo.rollout import Rollout, gae
from policies.training.trainer_base import TrainerBase

LOG_COLUMNS = (
    "epoch", "env_steps", "updates", "episodes", "wall_time_s", "success_rate", "eval_return",
    "train_success", "train_return", "train_drop_rate", "policy_loss", "value_loss",
    "entropy", "approx_kl", "clip_fraction", "explained_variance", "action_std",
    "env_steps_per_s", "updates_per_s",
)  # fmt: skip
_NORMALIZERS = ("obs", "privileged", "return")


class _Step(NamedTuple):
    """One exploring step of a batch of episodes, as `_record` stores it."""

    raw_obs: np.ndarray  # flatten_observation, before normalization
    policy_in: Tensor  # normalized: what the policy saw
    privileged: np.ndarray
    mean: Tensor
    action: Tensor  # sampled, before clipping
    reward: np.ndarray
    alive: np.ndarray  # the episode had not ended (drop) before this step
    dropped: np.ndarray


class PpoLstmTrainer(TrainerBase):
    """Owns the envs, networks, normalizers, optimizers and RNGs of one PPO-LSTM run."""

    log_columns = LOG_COLUMNS
    config_class = PpoLstmConfig
    resumable = RESUMABLE
    config: PpoLstmConfig

    def __init__(self, config: PpoLstmConfig, envs: LockstepEnvs | None = None):
        self._open_run(config, envs, privileged=True)
        self.episode_steps = config.episode_steps()
        self.steps = config.episodes_per_rollout * self.episode_steps  # per env and rollout
        self.dims = _dims(self.envs)
        c = config
        self.normalizers = {
            "obs": RunningNormalizer(self.dims["policy"], c.norm_eps, c.obs_clip, c.norm_clip),
            "privileged": RunningNormalizer(
                self.dims["privileged"], c.norm_eps, c.obs_clip, c.norm_clip
            ),
            "return": RunningNormalizer(1, c.norm_eps, np.inf, np.inf),
        }
        self.policy = LstmGaussianPolicy(
            self.dims["policy"], self.dims["action"], c.dense_size, c.lstm_size,
            c.initial_action_std,
        )  # fmt: skip
        self.value = PrivilegedValue(self.dims["value"], c.value_hidden_sizes)
        self.optimizers = {
            "policy": torch.optim.Adam(self.policy.parameters(), lr=c.lr_policy),
            "value": torch.optim.Adam(self.value.parameters(), lr=c.lr_value),
        }
        self.reward = make_training_reward(config, self.envs.compute_reward)
        space = self.envs.single_action_space
        self.action_low = torch.as_tensor(space.low, dtype=torch.float32)
        high = torch.as_tensor(space.high, dtype=torch.float32)
        self.action_half_range = (high - self.action_low) / 2
        self._new_counters()

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, "value": self.value}

    # -- one iteration ----------------------------------------------------------------------
    def iterate(self) -> dict[str, float]:
        """Collect one rollout, then train on it; returns mean losses and rollout statistics."""
        start = time.perf_counter()
        rollout, stats = self.collect()
        middle = time.perf_counter()
        stats.update(self._train(rollout))
        self.counters["collect_s"] += middle - start
        self.counters["update_s"] += time.perf_counter() - middle
        self.counters["env_steps"] += self.config.num_envs * self.steps
        self.counters["episodes"] += self.config.num_envs * self.config.episodes_per_rollout
        return stats

    def collect(self) -> tuple[Rollout, dict[str, float]]:
        """`episodes_per_rollout` exploring episodes per env; normalizers absorb them after."""
        n, c = self.config.num_envs, self.config
        rollout = Rollout(
            n * c.episodes_per_rollout, self.episode_steps, c.bptt_steps, self.dims, c.lstm_size
        )
        returns, drops = [], []
        for episode in range(c.episodes_per_rollout):
            seeds = self.rng.integers(0, 2**31 - 1, n).tolist()
            rows = slice(episode * n, (episode + 1) * n)
            options = self.randomization.plan(n, self.rng)
            success, ret, dropped = self._episode(seeds, rollout, rows, options)
            self.randomization.report(success)
            rollout.success[rows] = success
            returns.append(ret)
            drops.append(dropped)
        for name, seen in rollout.raw_inputs.items():
            self.normalizers[name].update(np.concatenate(seen))
        return rollout, {
            "train_success": float(rollout.success.mean()),
            "train_return": float(np.mean(returns)),
            "train_drop_rate": float(np.mean(drops)),
        }

    def _episode(
        self,
        seeds: list[int],
        rollout: Rollout | None = None,
        rows: slice = slice(None),
        options: Options = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One episode per env: exploring into `rollout` if given, else deterministic.

        Returns is_success at the last step, the training-reward return (up to a drop) and
        whether the object was dropped.
        """
        obs = self.envs.reset(seeds, options)
        state = self.policy.initial_state(len(seeds))
        alive = np.ones(len(seeds), dtype=bool)
        ret = np.zeros(len(seeds))
        success = np.zeros(len(seeds), dtype=bool)
        for t in range(self.episode_steps):
            x_raw = flatten_observation(obs)
            x = self.normalizers["obs"].normalize(torch.from_numpy(x_raw))
            if rollout is not None:
                rollout.store_state(rows, t, state)
            with torch.no_grad():
                mean, state = self.policy(x[:, None], state)
                mean = mean[:, 0]
                action = mean if rollout is None else self.policy.sample(mean, self.generator)
            next_obs, success = self.envs.step(self.env_action(action))
            reward, dropped = self.reward(
                obs["achieved_goal"], next_obs["achieved_goal"], obs["desired_goal"], success
            )
            if rollout is not None:
                privileged = obs["privileged_state"]
                step = _Step(x_raw, x, privileged, mean, action, reward, alive, dropped)
                self._record(rollout, rows, t, step)
            ret += np.where(alive, reward, 0.0)
            alive = alive & ~dropped
            obs = next_obs
        return success, ret, ~alive

    def _record(self, rollout: Rollout, rows: slice, t: int, step: _Step) -> None:
        """Store one exploring step (inputs as the networks saw them) in the rollout; the
        raw inputs of the episodes still going feed the normalizers afterwards."""
        alive = step.alive
        value_in = self._value_input(step.policy_in, step.privileged, t)
        with torch.no_grad():
            value = self._denormalized_value(value_in)
            log_prob = self.policy.log_prob(step.mean, step.action)
        last = t == self.episode_steps - 1
        rollout.record(rows, t, {
            "policy_in": step.policy_in, "value_in": value_in, "actions": step.action,
            "log_probs": log_prob, "values": value.numpy(), "valid": alive,
            "rewards": np.where(alive, step.reward, 0.0), "terminal": ~alive | step.dropped | last,
        })  # fmt: skip
        rollout.raw_inputs["obs"].append(step.raw_obs[alive])
        rollout.raw_inputs["privileged"].append(step.privileged[alive])

    def _value_input(self, x: Tensor, privileged: np.ndarray, t: int) -> Tensor:
        """Policy input + normalized privileged state + fraction of the episode left."""
        raw = torch.from_numpy(privileged.astype(np.float32))
        p = self.normalizers["privileged"].normalize(raw)
        left = torch.full((len(x), 1), (self.episode_steps - t) / self.episode_steps)
        return torch.cat((x, p, left), dim=-1)

    def _denormalized_value(self, value_in: Tensor) -> Tensor:
        returns = self.normalizers["return"]
        return self.value(value_in) * returns.std[0] + returns.mean[0]

    def env_action(self, action: Tensor) -> np.ndarray:
        """[-1, 1] (clipped) -> the env's bounds, as `LstmPolicyGraph.scale` computes it."""
        unit = action.clamp(-1.0, 1.0)
        return (self.action_low + (unit + 1) * self.action_half_range).numpy()

    # -- training ---------------------------------------------------------------------------
    def _train(self, rollout: Rollout) -> dict[str, float]:
        """GAE, return normalization, then the PPO passes over whole chunks."""
        c = self.config
        advantages = gae(rollout.rewards, rollout.values, rollout.terminal, c.gamma, c.gae_lambda)
        returns = advantages + rollout.values
        valid = rollout.valid[:, : self.episode_steps]
        self.normalizers["return"].update(returns[valid][:, None])
        scale = self.normalizers["return"]
        targets = (returns - float(scale.mean[0])) / float(scale.std[0])
        normalized = (advantages - advantages[valid].mean()) / (advantages[valid].std() + 1e-8)
        chunks = rollout.chunks(normalized, targets)
        totals: dict[str, float] = {}
        for _ in range(c.epochs_per_rollout):
            order = torch.randperm(len(chunks), generator=self.generator)
            for index in order.tensor_split(c.num_minibatches):
                for key, value in self._update(chunks.select(index)).items():
                    totals[key] = totals.get(key, 0.0) + value
        count = c.epochs_per_rollout * c.num_minibatches
        self.counters["updates"] += count
        stats = {key: value / count for key, value in totals.items()}
        stats["explained_variance"] = _explained_variance(returns[valid], rollout.values[valid])
        stats["action_std"] = float(self.policy.log_std.detach().exp().mean())
        return stats

    def _update(self, batch: Any) -> dict[str, float]:
        losses = ppo_losses(self.policy, self.value, batch, self.config.clip_ratio)
        self._step("policy", losses["policy_loss"] - self.config.entropy_coef * losses["entropy"])
        self._step("value", losses["value_loss"])
        return {key: float(value.detach()) for key, value in losses.items()}

    def _step(self, name: str, loss: Tensor) -> None:
        optimizer, module = self.optimizers[name], self.modules[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), self.config.max_grad_norm)
        optimizer.step()

    # -- evaluation and export --------------------------------------------------------------
    def _eval_batch(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic episodes; the return is the training reward's."""
        success, ret, _ = self._episode(seeds)
        return success, ret

    def _deployable(self) -> tuple[str, nn.Module, Tensor, Tensor]:
        """The policy (its mean is the deployed action) and the policy-input normalizer."""
        obs = self.normalizers["obs"]
        return "policy", self.policy, obs.mean, obs.std

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> CheckpointState:
        """Everything needed to continue this run bit-identically."""
        tensors: dict[str, Tensor] = {}
        for name, module in self.modules.items():
            tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
            tensors.update(optimizer_tensors(f"optim/{name}/", self.optimizers[name]))
        for name in _NORMALIZERS:
            tensors.update(self.normalizers[name].state_tensors(f"normalizer/{name}/"))
        tensors.update(self.run_tensors())
        return CheckpointState(
            self.config.task, self.config.algo, self.config.to_dict(), tensors,
            {**self.counters, **self.randomization.counters()},
        )  # fmt: skip

    def _restore(self, state: CheckpointState) -> None:
        t = state.tensors
        for name, module in self.modules.items():
            prefix = f"{name}/"
            module.load_state_dict(
                {k.removeprefix(prefix): v for k, v in t.items() if k.startswith(prefix)}
            )
            load_optimizer_tensors(f"optim/{name}/", self.optimizers[name], t)
        for name in _NORMALIZERS:
            self.normalizers[name].load_state_tensors(t, f"normalizer/{name}/")
        self._restore_run_tensors(t)
        counters = dict(state.counters)
        self.randomization.restore(counters, int(counters["env_steps"]))
        missing = sorted(set(self.counters) - set(counters))
        if missing:
            raise KeyError(f"counters {missing}")
        self.counters.update(counters)


def _dims(envs: LockstepEnvs) -> dict[str, int]:
    """Widths of the policy input, privileged state, value input and action."""
    space = envs.single_observation_space
    if "privileged_state" not in space.spaces:
        raise TrainingConfigError(
            "PPO's value function needs the privileged state: build the envs with "
            "make_lockstep_envs(..., privileged=True)"
        )
    width = {key: int(box.shape[0]) for key, box in space.spaces.items()}  # type: ignore[index]
    policy, privileged = width["observation"] + width["desired_goal"], width["privileged_state"]
    return {
        "policy": policy,
        "privileged": privileged,
        "value": policy + privileged + 1,
        "action": int(envs.single_action_space.shape[0]),
    }


def _explained_variance(returns: np.ndarray, values: np.ndarray) -> float:
    """1 - Var(returns - values) / Var(returns): 1 is a perfect value function, 0 a constant."""
    spread = returns.var()
    return float(1.0 - (returns - values).var() / spread) if spread > 0 else 0.0
