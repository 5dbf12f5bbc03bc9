"""One helper for the bit-identical-resume tests of every trainer: a straight run of N env
steps, and a run of M < N steps resumed from its checkpoint up to N."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from policies.training.checkpoint import CheckpointState, load_checkpoint
from policies.training.loop import run_training


def straight_and_resumed(
    make_trainer: Callable[[int], Any], total: int, split: int, tmp_path: Path
) -> tuple[CheckpointState, CheckpointState]:
    """Final checkpoints of `make_trainer(total)` run straight, and of `make_trainer(split)`
    run then resumed (`type(trainer).resume`) to `total`, in tmp_path/straight and /split."""
    straight = make_trainer(total)
    run_training(straight, tmp_path / "straight")
    straight.close()
    first = make_trainer(split)
    run_training(first, tmp_path / "split")
    first.close()
    resumed = type(first).resume(tmp_path / "split" / "checkpoint", total_env_steps=total)
    run_training(resumed, tmp_path / "split")
    resumed.close()
    return (
        load_checkpoint(tmp_path / "straight" / "checkpoint"),
        load_checkpoint(tmp_path / "split" / "checkpoint"),
    )
