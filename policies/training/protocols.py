"""What the shared training loop, checkpointing and export need of a trainer.

`run_training` (policies.training.loop) and `export_trained_policy`
(policies.training.export) drive any trainer of this shape: every `TrainerBase`
(policies.training.trainer_base) is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import Tensor, nn

    from policies.training.envs import LockstepEnvs
    from policies.training.randomization import TrainingRandomization

COUNTERS = ("env_steps", "updates", "episodes", "epoch")  # kept, checkpointed and logged


class EpochTrainer(Protocol):
    """A trainer whose iterations collect `config.num_envs * steps` env steps each."""

    config: Any  # a config dataclass: task, algo, seed, total_env_steps, epoch_env_steps, ...
    counters: dict[str, Any]  # env_steps, updates, episodes, epoch, *_s timings, best_*
    steps: int  # env steps per env and iteration
    log_columns: tuple[str, ...]  # progress.csv columns
    randomization: TrainingRandomization  # domain randomization / ADR of the run
    envs: LockstepEnvs  # its action space bounds the exported policy

    def iterate(self) -> dict[str, float]: ...

    def evaluate(self, episodes: int | None = None) -> tuple[float, float]: ...

    def note_evaluation(self, success: float) -> bool: ...

    def policy_parts(self, which: str = "final") -> tuple[nn.Module, Tensor, Tensor]: ...

    def save(self, directory: Path) -> Path: ...

    def close(self) -> None: ...
