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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies.observation import flatten_observation
from policies.training.checkpoint import (
    CheckpointState,
    ResumableTrainer,
)
from policies.training.checkpoint import load_optimizer_tensors as _load_optimizer
from policies.training.checkpoint import optimizer_tensors as _optimizer_tensors
from policies.training.config import RESUMABLE, HerSacConfig
from policies.training.demonstrations import DemoBuffer, DemoIdentity, load_demo_buffer
from policies.training.envs import LockstepEnvs, make_lockstep_envs
from policies.training.errors import CheckpointCorruptError, CheckpointMismatchError
from policies.training.logs import COLUMNS
from policies.training.normalizer import RunningNormalizer
from policies.training.protocols import EpochTrainer
from policies.training.randomization import TrainingRandomization
from policies.training.replay import EpisodeBatch, EpisodeReplay, Transitions
from policies.training.rng import numpy_state_from_tensor, numpy_state_to_tensor
from policies.training.sac import Batch
from policies.training.td3 import make_agent

_COUNTERS = ("env_steps", "updates", "episodes", "epoch")
_DEMO_COUNTER = "demonstrations"  # checkpoint counter: the dataset's identity (JSON)
DEMO_COLUMNS = ("bc_loss", "q_filter_pass")  # progress.csv columns of runs with demos


class HerSacTrainer(ResumableTrainer):
    """Owns the envs, replay, normalizer, agent and RNGs of one run."""

    log_columns: tuple[str, ...] = COLUMNS  # plus DEMO_COLUMNS with demonstrations
    config_class = HerSacConfig
    resumable = RESUMABLE
    envs: LockstepEnvs

    def __init__(self, config: HerSacConfig, envs: LockstepEnvs | None = None):
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)  # network initialization only
        self.config = config
        self.randomization = TrainingRandomization.from_path(config.randomization)
        self.envs = envs or make_lockstep_envs(
            config.task, config.num_envs, config.num_workers,
            randomization=self.randomization.config,
        )  # fmt: skip
        self.steps = config.episode_steps()
        space = self.envs.single_observation_space
        self.dims = {
            "obs": int(space["observation"].shape[0]),  # type: ignore[index]
            "goal": int(space["desired_goal"].shape[0]),  # type: ignore[index]
            "action": int(self.envs.single_action_space.shape[0]),
        }
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
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
        self.counters: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)
        self.counters.update(update_credit=0.0, wall_time_s=0.0, collect_s=0.0, update_s=0.0)
        self.counters.update(best_success=-1.0, best_env_steps=0)
        self.best_policy: dict[str, torch.Tensor] = {}  # see `note_evaluation`

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

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, episodes: int | None = None) -> tuple[float, float]:
        """Success rate and mean return of the deterministic policy on seeded episodes.

        Episode i is reset with seed `eval_seed + i`; the training RNGs are not touched, so
        evaluating never changes the training run.
        """
        episodes = episodes or self.config.eval_episodes
        n = self.config.num_envs
        successes: list[bool] = []
        returns: list[float] = []
        for first in range(0, episodes, n):
            seeds = [self.config.eval_seed + first + i for i in range(n)]
            done, ret = self._eval_batch(seeds)
            successes += done.tolist()
            returns += ret.tolist()
        return float(np.mean(successes[:episodes])), float(np.mean(returns[:episodes]))

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

    def note_evaluation(self, success: float) -> bool:
        """Snapshot the deterministic policy when an epoch evaluation ties or beats the best.

        Success rates of one run swing by 10-20 points between epochs, so `--export-from
        best` exports this snapshot instead of whatever the last epoch left. It is chosen on
        the epoch evaluation's episodes (seeds from `eval_seed`), never on the zoo's test
        episodes (seeds 0..N-1), so the card's number is not selected on its own test set.
        Ties go to the later policy (more data behind it). Returns whether it snapshotted.
        """
        if success < self.counters["best_success"]:
            return False
        actor = self.agent.deterministic_actor().state_dict()
        self.best_policy = {f"best/actor/{k}": v.detach().clone() for k, v in actor.items()}
        self.best_policy["best/obs_mean"] = self.normalizer.mean.clone()
        self.best_policy["best/obs_std"] = self.normalizer.std.clone()
        self.counters["best_success"] = float(success)
        self.counters["best_env_steps"] = int(self.counters["env_steps"])
        return True

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> CheckpointState:
        """Everything needed to continue this run bit-identically."""
        tensors: dict[str, torch.Tensor] = {}
        for name, module in self.agent.modules.items():
            tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
        tensors.update(self.agent.extra_state())
        for name, optimizer in self.agent.optimizers.items():
            tensors.update(_optimizer_tensors(f"optim/{name}/", optimizer))
        tensors.update(self.normalizer.state_tensors("normalizer/"))
        tensors.update(self.best_policy)
        tensors.update(self.replay.state_tensors("replay/"))
        tensors["rng/numpy"] = numpy_state_to_tensor(self.rng)
        tensors["rng/torch"] = self.generator.get_state()
        counters = {**self.counters, "replay_size": self.replay.size}
        counters["replay_next"] = self.replay.next
        counters.update(self.randomization.counters())
        if self.demo_identity is not None:
            counters[_DEMO_COUNTER] = json.dumps(dataclasses.asdict(self.demo_identity))
        return CheckpointState(
            self.config.task, self.config.algo, self.config.to_dict(), tensors, counters
        )

    def restore(self, state: CheckpointState) -> None:
        """Load what `state()` saved (into a trainer built from the same config)."""
        self._check_demo_identity(state)
        try:
            self._restore(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointCorruptError(
                f"checkpoint of {state.task!r} does not fit a {self.config.algo} trainer with "
                f"this config (missing or mis-shaped tensor or counter): {e}"
            ) from e

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
        self.best_policy = {k: v.clone() for k, v in t.items() if k.startswith("best/")}
        counters = dict(state.counters)
        counters.pop(_DEMO_COUNTER, None)
        self.randomization.restore(counters, int(counters["env_steps"]))
        self.replay.load_state_tensors(
            t, "replay/", counters.pop("replay_size"), counters.pop("replay_next")
        )
        self.rng = numpy_state_from_tensor(t["rng/numpy"])
        self.generator.set_state(t["rng/torch"])
        self.counters.update(counters)


def run_training(trainer: EpochTrainer, out_dir: Path) -> dict[str, Any]:
    """Train until `total_env_steps`, logging, evaluating and checkpointing every epoch.

    Writes `out_dir/config.json`, `progress.csv`, `learning_curve.png` and
    `checkpoint/`; returns the last CSV row.
    """
    from tqdm import tqdm

    from policies.training.logs import EpochLog

    config, counters = trainer.config, trainer.counters
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    title = f"{config.algo} {config.task} seed {config.seed}"
    log = EpochLog(out_dir, title, trainer.log_columns)
    bar = tqdm(total=config.total_env_steps, initial=min(counters["env_steps"],
               config.total_env_steps), disable=not config.progress, unit="step",
               desc=config.task)  # fmt: skip
    losses: list[dict[str, float]] = []
    row: dict[str, Any] = {}
    try:
        while counters["env_steps"] < config.total_env_steps:
            start = time.perf_counter()
            losses.append(trainer.iterate())
            counters["wall_time_s"] += time.perf_counter() - start
            bar.update(config.num_envs * trainer.steps)
            boundary = (counters["epoch"] + 1) * config.epoch_env_steps
            if counters["env_steps"] >= min(boundary, config.total_env_steps):
                row = _end_epoch(trainer, losses, log, out_dir)
                bar.set_postfix(success=f"{row['success_rate']:.2f}")
                losses = []
    finally:
        bar.close()
    return row or (log.rows()[-1] if log.rows() else {})


def _end_epoch(
    trainer: EpochTrainer, losses: list[dict[str, float]], log: Any, out_dir: Path
) -> dict[str, Any]:
    """Evaluate, append the CSV row and redraw the curve, then checkpoint."""
    counters = trainer.counters
    start = time.perf_counter()
    success, ret = trainer.evaluate()
    counters["wall_time_s"] += time.perf_counter() - start
    trainer.note_evaluation(success)
    counters["epoch"] += 1
    row: dict[str, Any] = {k: counters[k] for k in (*_COUNTERS, "wall_time_s")}
    row.update(success_rate=success, eval_return=ret, **_mean_losses(losses))
    row["env_steps_per_s"] = counters["env_steps"] / max(counters["collect_s"], 1e-9)
    row["updates_per_s"] = counters["updates"] / max(counters["update_s"], 1e-9)
    log.write(row)
    trainer.randomization.log_epoch(out_dir, counters["env_steps"])
    trainer.save(out_dir / "checkpoint")
    return row


def _mean_losses(losses: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for entry in losses for k in entry}
    return {k: float(np.mean([e[k] for e in losses if k in e])) for k in keys}
