"""`HerSacTrainer`: collect fixed-length episodes, store them, relabel with HER, train SAC.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --seed 0 --out runs/reach`
(add `--randomization sim/randomization/configs/fetch-push-adr.yaml` for DR or ADR)

One iteration collects an episode batch (`num_envs` episodes of T steps, all envs reset with
seeds drawn from the run's numpy RNG), adds it to the replay and the normalizer, then runs
`updates_per_env_step * num_envs * T` gradient updates (fractions carry over). Every
`epoch_env_steps` the deterministic policy is evaluated on seeded episodes, a CSV row and the
learning-curve PNG are written, and a checkpoint is saved. All randomness comes from one
numpy Generator and one torch Generator whose states are checkpointed, so N steps + resume +
M steps equals N + M steps bit for bit (on the same thread count).
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import torch
from torch import Tensor, nn

from policies.observation import flatten_observation
from policies.training.checkpoint import CheckpointState
from policies.training.checkpoint import load_optimizer_tensors as _load_optimizer
from policies.training.checkpoint import optimizer_tensors as _optimizer_tensors
from policies.training.envs import LockstepEnvs
from policies.training.errors import CheckpointMismatchError
from policies.training.her.config import HerSacConfig
from policies.training.her.demonstrations import DemoBuffer, DemoIdentity, load_demo_buffer
from policies.training.her.replay import EpisodeBatch, EpisodeReplay, Transitions
from policies.training.her.sac import Batch
from policies.training.her.td3 import make_agent
from policies.training.logs import COLUMNS
from policies.training.normalizer import RunningNormalizer
from policies.training.options import RESUMABLE
from policies.training.trainer_base import TrainerBase

_DEMO_COUNTER = "demonstrations"  # checkpoint counter: the dataset's identity (JSON)
DEMO_COLUMNS = ("bc_loss", "q_filter_pass")  # progress.csv columns of runs with demos


class HerSacTrainer(TrainerBase):
    """Owns the envs, replay, normalizer, agent and RNGs of one run."""

    log_columns: tuple[str, ...] = COLUMNS  # plus DEMO_COLUMNS with demonstrations
    config_class = HerSacConfig
    resumable = RESUMABLE
    config: HerSacConfig

    def __init__(self, config: HerSacConfig, envs: LockstepEnvs | None = None):
        self._open_run(config, envs, privileged=False)
        self.steps = config.episode_steps()
        space = self.envs.single_observation_space
        self.dims = {
            "obs": int(space["observation"].shape[0]),  # type: ignore[index]
            "goal": int(space["desired_goal"].shape[0]),  # type: ignore[index]
            "action": int(self.envs.single_action_space.shape[0]),
        }
        in_dim = self.dims["obs"] + self.dims["goal"]
        self.normalizer = RunningNormalizer(
            in_dim, config.norm_eps, config.obs_clip, config.norm_clip
        )
        self.agent = make_agent(config.algo, in_dim, self.dims["action"], config)
        capacity = config.buffer_size_transitions // self.steps
        self.replay = EpisodeReplay(capacity, self.steps, self.dims)
        self.demos: DemoBuffer | None = None
        self.demo_identity: DemoIdentity | None = None
        if config.demonstrations_dir:
            self._load_demonstrations()
        self._new_counters(update_credit=0.0)

    def _load_demonstrations(self) -> None:
        """Read the dataset (checked against task, robot, control rate and sizes; the envs
        are closed if it does not fit), and add its inputs to the normalizer."""
        from policies.observation import task_info

        info = task_info(self.config.task)
        try:
            self.demos, self.demo_identity = load_demo_buffer(
                self.config.demonstrations_dir, self.config.task, info.robot,
                info.control_rate_hz, self.dims,
            )  # fmt: skip
        except BaseException:
            self.envs.close()
            raise
        self.log_columns = (*COLUMNS, *DEMO_COLUMNS)
        relabel_p = self.config.relabel_probability
        self.normalizer.update(self.demos.normalizer_inputs(self.rng, relabel_p))

    # -- one iteration ----------------------------------------------------------------------
    def iterate(self) -> dict[str, float]:
        """Collect one episode batch, store it, and run the updates it pays for."""
        start = time.perf_counter()
        batch = self.collect()
        self.replay.add(batch)
        self._update_normalizer(batch)
        n = self.config.num_envs * self.steps
        self.counters["env_steps"] += n
        self.counters["episodes"] += self.config.num_envs
        middle = time.perf_counter()
        losses = self._train(n)
        end = time.perf_counter()
        self.counters["collect_s"] += middle - start
        self.counters["update_s"] += end - middle
        return losses

    def collect(self) -> EpisodeBatch:
        """One episode per env with the stochastic policy (uniform random during warmup)."""
        n, steps = self.config.num_envs, self.steps
        seeds = self.rng.integers(0, 2**31 - 1, n).tolist()
        obs = self.envs.reset(seeds, self.randomization.plan(n, self.rng))
        random = self.counters["env_steps"] < self.config.warmup_env_steps
        if not random:
            self.agent.begin_episodes(n, self.generator)
        rows: dict[str, list[np.ndarray]] = {"obs": [], "achieved": [], "desired": [], "act": []}
        for _ in range(steps):
            action = self._explore(obs, random)
            rows["obs"].append(obs["observation"])
            rows["achieved"].append(obs["achieved_goal"])
            rows["desired"].append(obs["desired_goal"])
            rows["act"].append(action)
            obs, success = self.envs.step(action)
        self.randomization.report(success)
        rows["obs"].append(obs["observation"])
        rows["achieved"].append(obs["achieved_goal"])
        keys = ("obs", "achieved", "desired", "act")
        return EpisodeBatch(*(np.stack(rows[k], axis=1) for k in keys))

    def _explore(self, obs: dict[str, np.ndarray], random: bool) -> np.ndarray:
        shape = (self.config.num_envs, self.dims["action"])
        if random:
            return self.rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        x = self.normalizer.normalize(torch.from_numpy(flatten_observation(obs)))
        return self.agent.act(x, self.generator, deterministic=False).numpy()

    def _update_normalizer(self, batch: EpisodeBatch) -> None:
        """Statistics of the inputs the networks will see: goals HER-relabelled as in sampling."""
        n, steps = len(batch.obs), self.steps
        ep, t = np.repeat(np.arange(n), steps), np.tile(np.arange(steps), n)
        goal = batch.desired[ep, t]
        relabel = self.rng.random(len(ep)) < self.config.relabel_probability
        future = t + 1 + (self.rng.random(len(ep)) * (steps - t)).astype(np.int64)
        goal[relabel] = batch.achieved[ep[relabel], future[relabel]]
        self.normalizer.update(np.concatenate([batch.obs[ep, t], goal], axis=-1))

    def _train(self, new_steps: int) -> dict[str, float]:
        if self.counters["env_steps"] < self.config.warmup_env_steps:
            return {}
        self.counters["update_credit"] += self.config.updates_per_env_step * new_steps
        count = int(self.counters["update_credit"])
        self.counters["update_credit"] -= count
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(count):
            for key, value in self.agent.update(self._batch(), self.generator).items():
                totals[key] = totals.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
        self.counters["updates"] += count
        # per key: TD3 reports actor values only on its delayed actor updates
        return {key: value / counts[key] for key, value in totals.items()}

    def _batch(self) -> Batch:
        """`batch_size` replay transitions, then (with demonstrations) `demo_batch_size`
        demo transitions, both HER-relabelled; the demo rows come last."""
        c, reward_fn = self.config, self.envs.compute_reward
        t: Transitions = self.replay.sample(
            self.rng, c.batch_size, c.relabel_probability, reward_fn
        )
        parts = [t]
        if self.demos is not None:
            parts.append(
                self.demos.sample(self.rng, c.demo_batch_size, c.relabel_probability, reward_fn)
            )
        obs, goal, action, reward, next_obs = (
            np.concatenate([getattr(p, name) for p in parts]) if len(parts) > 1
            else getattr(t, name)
            for name in ("obs", "goal", "action", "reward", "next_obs")
        )  # fmt: skip
        goal_t = torch.from_numpy(goal.astype(np.float32))
        x = torch.cat((torch.from_numpy(obs), goal_t), dim=-1)
        next_x = torch.cat((torch.from_numpy(next_obs), goal_t), dim=-1)
        return Batch(
            self.normalizer.normalize(x), torch.from_numpy(action),
            torch.from_numpy(reward), self.normalizer.normalize(next_x),
            demo_rows=len(parts[1].action) if len(parts) > 1 else 0,
        )  # fmt: skip

    # -- evaluation and export --------------------------------------------------------------
    def _eval_batch(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        obs = self.envs.reset(seeds)
        ret = np.zeros(len(seeds))
        success = np.zeros(len(seeds), dtype=bool)
        for _ in range(self.steps):
            x = self.normalizer.normalize(torch.from_numpy(flatten_observation(obs)))
            action = self.agent.act(x, self.generator, deterministic=True).numpy()
            obs, success = self.envs.step(action)
            ret += success.astype(float) - 1.0  # sparse reward: 0 on success, else -1
        return success, ret

    def _deployable(self) -> tuple[str, nn.Module, Tensor, Tensor]:
        """The deterministic actor (tanh of the mean) and the input normalizer."""
        actor = self.agent.deterministic_actor()
        return "actor", actor, self.normalizer.mean, self.normalizer.std

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> CheckpointState:
        """Everything needed to continue this run bit-identically."""
        tensors: dict[str, Tensor] = {}
        for name, module in self.agent.modules.items():
            tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
        tensors.update(self.agent.extra_state())
        for name, optimizer in self.agent.optimizers.items():
            tensors.update(_optimizer_tensors(f"optim/{name}/", optimizer))
        tensors.update(self.normalizer.state_tensors("normalizer/"))
        tensors.update(self.replay.state_tensors("replay/"))
        tensors.update(self.run_tensors())
        counters = {**self.counters, "replay_size": self.replay.size}
        counters["replay_next"] = self.replay.next
        counters.update(self.randomization.counters())
        if self.demo_identity is not None:
            counters[_DEMO_COUNTER] = json.dumps(dataclasses.asdict(self.demo_identity))
        return CheckpointState(
            self.config.task, self.config.algo, self.config.to_dict(), tensors, counters
        )

    def restore(self, state: CheckpointState) -> None:
        """Load what `state()` saved, trained on the same demonstrations as this run."""
        self._check_demo_identity(state)
        super().restore(state)

    def _check_demo_identity(self, state: CheckpointState) -> None:
        """Refuse to continue a run on other demonstrations than it learned from."""
        saved = state.counters.get(_DEMO_COUNTER)
        ours = self.demo_identity
        if saved is None and ours is None:
            return
        before = DemoIdentity(**json.loads(saved)) if saved is not None else None
        if before is not None and ours is not None and before.sha256 == ours.sha256:
            return
        what = before.describe() if before is not None else "no demonstrations"
        now = ours.describe() if ours is not None else "none"
        raise CheckpointMismatchError(
            f"checkpoint of {state.task!r} was trained with {what}, but this run's "
            f"demonstrations are {now}; resume with the original dataset, or start a new run"
        )

    def _restore(self, state: CheckpointState) -> None:
        t = state.tensors
        for name, module in self.agent.modules.items():
            prefix = f"{name}/"
            params = {k.removeprefix(prefix): v for k, v in t.items() if k.startswith(prefix)}
            module.load_state_dict(params)
        self.agent.load_extra_state(t)
        for name, optimizer in self.agent.optimizers.items():
            _load_optimizer(f"optim/{name}/", optimizer, t)
        self.normalizer.load_state_tensors(t, "normalizer/")
        self._restore_run_tensors(t)
        counters = dict(state.counters)
        counters.pop(_DEMO_COUNTER, None)
        self.randomization.restore(counters, int(counters["env_steps"]))
        self.replay.load_state_tensors(
            t, "replay/", counters.pop("replay_size"), counters.pop("replay_next")
        )
        self.counters.update(counters)
