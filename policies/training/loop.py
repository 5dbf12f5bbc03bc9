"""The epoch loop every trainer runs: iterate, evaluate, log, snapshot, checkpoint.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --seed 0 --out runs/reach`
(the CLI calls `run_training` with the `--algo`'s trainer).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from policies.training.protocols import COUNTERS, EpochTrainer


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
    row: dict[str, Any] = {k: counters[k] for k in (*COUNTERS, "wall_time_s")}
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
