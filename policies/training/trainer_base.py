"""What every trainer shares: run set-up, counters, evaluation, the best-policy snapshot.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --seed 0 --out runs/reach`
(`HerSacTrainer` and `PpoLstmTrainer` are `TrainerBase`s; `run_training` drives them).

A subclass calls `_open_run` first in `__init__` (threads, seeds, randomization, envs, RNGs,
in the order resumed runs depend on), then builds its networks and `_new_counters`. It
names its deployable policy in `_deployable` (what `--export` and the best snapshot take),
runs one batch of seeded deterministic episodes in `_eval_batch`, and reloads its own
tensors in `_restore`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from policies.training.checkpoint import CheckpointState, ResumableTrainer
from policies.training.envs import LockstepEnvs, make_lockstep_envs
from policies.training.errors import CheckpointCorruptError, TrainingConfigError
from policies.training.options import EXPORT_FROM
from policies.training.protocols import COUNTERS
from policies.training.randomization import TrainingRandomization
from policies.training.rng import numpy_state_from_tensor, numpy_state_to_tensor

_BEST = "best/"  # checkpoint tensors of the best snapshot: best/<module>/..., best/obs_*


class TrainerBase(ResumableTrainer):
    """Owns a run's config, envs, randomization, RNGs, counters and best snapshot."""

    config: Any
    randomization: TrainingRandomization
    envs: LockstepEnvs
    rng: np.random.Generator
    generator: torch.Generator
    counters: dict[str, Any]
    best_policy: dict[str, Tensor]

    def _open_run(self, config: Any, envs: LockstepEnvs | None, privileged: bool) -> None:
        """Threads and seeds, randomization, envs (built unless given) and the run's RNGs."""
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)  # network initialization only
        self.config = config
        self.randomization = TrainingRandomization.from_path(config.randomization)
        self.envs = envs or make_lockstep_envs(
            config.task, config.num_envs, config.num_workers, privileged=privileged,
            randomization=self.randomization.config,
        )  # fmt: skip
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)

    def _new_counters(self, **extra: float) -> None:
        """Zero counters and timings, no best snapshot yet; `extra` are the subclass's own."""
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.counters.update(extra, wall_time_s=0.0, collect_s=0.0, update_s=0.0)
        self.counters.update(best_success=-1.0, best_env_steps=0)
        self.best_policy = {}  # see `note_evaluation`

    def _deployable(self) -> tuple[str, nn.Module, Tensor, Tensor]:
        """Name, module (normalized input -> [-1, 1] action) and input mean and std."""
        raise NotImplementedError

    def _eval_batch(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Success at the last step and return of one deterministic episode per seed."""
        raise NotImplementedError

    def _restore(self, state: CheckpointState) -> None:
        raise NotImplementedError

    def evaluate(self, episodes: int | None = None) -> tuple[float, float]:
        """Success rate and mean return of the deterministic policy on seeded episodes.

        Episode i is reset with seed `eval_seed + i`; the training RNGs (and normalizers)
        are not touched, so evaluating never changes the training run.
        """
        episodes = episodes or self.config.eval_episodes
        n = self.config.num_envs
        successes: list[bool] = []
        returns: list[float] = []
        for first in range(0, episodes, n):
            success, ret = self._eval_batch([self.config.eval_seed + first + i for i in range(n)])
            successes += success.tolist()
            returns += ret.tolist()
        return float(np.mean(successes[:episodes])), float(np.mean(returns[:episodes]))

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
        name, module, mean, std = self._deployable()
        params = module.state_dict().items()
        self.best_policy = {f"{_BEST}{name}/{k}": v.detach().clone() for k, v in params}
        self.best_policy[f"{_BEST}obs_mean"] = mean.clone()
        self.best_policy[f"{_BEST}obs_std"] = std.clone()
        self.counters["best_success"] = float(success)
        self.counters["best_env_steps"] = int(self.counters["env_steps"])
        return True

    def policy_parts(self, which: str = "final") -> tuple[nn.Module, Tensor, Tensor]:
        """A copy of the deployable module with its input mean and std: as it is now
        ("final") or as the best snapshot holds it ("best")."""
        if which not in EXPORT_FROM:
            raise TrainingConfigError(f"export from {which!r}: use one of {EXPORT_FROM}")
        name, module, mean, std = self._deployable()
        module = copy.deepcopy(module).eval()
        if which == "final":
            return module, mean, std
        if not self.best_policy:
            raise TrainingConfigError(
                "--export-from best: this run has no best-policy snapshot yet (it is taken "
                "at each epoch evaluation); train at least one epoch or export the final policy"
            )
        prefix = f"{_BEST}{name}/"
        module.load_state_dict({k.removeprefix(prefix): v for k, v in
                                self.best_policy.items() if k.startswith(prefix)})  # fmt: skip
        return module, self.best_policy[f"{_BEST}obs_mean"], self.best_policy[f"{_BEST}obs_std"]

    def run_tensors(self) -> dict[str, Tensor]:
        """The best snapshot and both RNG states, for `state()`."""
        tensors = dict(self.best_policy)
        tensors["rng/numpy"] = numpy_state_to_tensor(self.rng)
        tensors["rng/torch"] = self.generator.get_state()
        return tensors

    def restore(self, state: CheckpointState) -> None:
        """Load what `state()` saved (into a trainer built from the same config)."""
        try:
            self._restore(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointCorruptError(
                f"checkpoint of {state.task!r} does not fit a {self.config.algo} trainer with "
                f"this config (missing or mis-shaped tensor or counter): {e}"
            ) from e

    def _restore_run_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Reload what `run_tensors` saved."""
        self.best_policy = {k: v.clone() for k, v in tensors.items() if k.startswith(_BEST)}
        self.rng = numpy_state_from_tensor(tensors["rng/numpy"])
        self.generator.set_state(tensors["rng/torch"])
