"""`twinbridge train`: HER + SAC on a goal-conditioned task, with checkpoints and ONNX export.

Run: `twinbridge train --task fetch-reach --algo her-sac --total-env-steps 6000 --seed 0
--out runs/fetch-reach --export policies/zoo/fetch-reach.onnx`

Every `HerSacConfig` field is a flag (see --help); `--config FILE` (JSON, or YAML with
PyYAML) sets fields too, and explicit flags win over it. Everything is validated before any
env or network is built. `--resume DIR` continues the checkpoint in DIR (a run directory or
its `checkpoint/`) up to the new `--total-env-steps`, bit-identically to an uninterrupted run.
With `--export`, the final deterministic policy is written as ONNX + model card, evaluated
on `--export-eval-episodes` seeded episodes through the ONNX runtime (exactly what
`twinbridge rollout --policy FILE --episodes N --json` does), and the card gets the result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from policies.training.config import RESUMABLE, HerSacConfig, load_config_file
from policies.training.errors import TrainingConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per `HerSacConfig` field (default from the dataclass), plus run options."""
    defaults = HerSacConfig()
    for f in dataclasses.fields(HerSacConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {getattr(defaults, f.name)})"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text}
        if isinstance(f.default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(f.default, tuple):
            kwargs.update(type=int, nargs="+", metavar="N")
        else:
            kwargs["type"] = type(f.default)
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--config", type=Path, help="JSON/YAML file of option: value")
    parser.add_argument(
        "--out", type=Path, required=True, help="run directory (CSV, PNG, checkpoint/)"
    )
    parser.add_argument("--resume", type=Path, help="continue from this run or checkpoint dir")
    parser.add_argument("--export", type=Path, help="write the final policy here (.onnx + card)")
    parser.add_argument(
        "--export-eval-episodes",
        type=int,
        default=100,
        help="seeded episodes (seeds 0..N-1) evaluating the exported ONNX (default 100)",
    )


def run(args: argparse.Namespace) -> int:
    """Validate everything, train, optionally export; prints the last log row as JSON."""
    from policies.training.trainer import HerSacTrainer, run_training

    _check_run_options(args)
    overrides = {k: v for k, v in vars(args).items() if k in _field_names()}
    if args.resume is not None:
        trainer = HerSacTrainer.resume(_checkpoint_dir(args.resume), **_resume_overrides(
            args.resume, overrides))  # fmt: skip
    else:
        trainer = HerSacTrainer(_config(args.config, overrides))
    try:
        row = run_training(trainer, args.out)
        if args.export is not None:
            row["export"] = _export(trainer, args)
    finally:
        trainer.close()
    print(json.dumps(row))
    return 0


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(HerSacConfig)}


def _config(path: Path | None, overrides: dict[str, Any]) -> HerSacConfig:
    values = load_config_file(path) if path is not None else {}
    if "hidden_sizes" in overrides:
        overrides["hidden_sizes"] = tuple(overrides["hidden_sizes"])
    return HerSacConfig.from_dict({**values, **overrides}, str(path or "command line"))


def _check_run_options(args: argparse.Namespace) -> None:
    if args.export is not None and args.export.suffix != ".onnx":
        raise TrainingConfigError(f"--export must name a .onnx file, got {args.export}")
    if args.export_eval_episodes < 1:
        raise TrainingConfigError(f"--export-eval-episodes must be >= 1, got "
                                  f"{args.export_eval_episodes}")  # fmt: skip
    if args.resume is not None and args.config is not None:
        raise TrainingConfigError("--resume takes its config from the checkpoint; drop --config")
    fresh_into_old_run = args.resume is None and (args.out / "progress.csv").exists()
    if fresh_into_old_run:
        raise TrainingConfigError(
            f"--out {args.out} already holds a run; continue it with --resume {args.out}, "
            "or choose another --out"
        )


def _checkpoint_dir(path: Path) -> Path:
    """A run directory's `checkpoint/`, or the directory itself."""
    return path / "checkpoint" if (path / "checkpoint").is_dir() else path


def _resume_overrides(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Only options that do not change learning; a different task is a checkpoint mismatch."""
    from policies.training.checkpoint import load_checkpoint

    saved = load_checkpoint(_checkpoint_dir(path), task=overrides.get("task"))
    for key, value in overrides.items():
        old = saved.config.get(key)
        if key not in RESUMABLE and value != old and not (key == "hidden_sizes" and list(value)
                                                          == old):  # fmt: skip
            raise TrainingConfigError(
                f"--{key.replace('_', '-')} {value!r} differs from the checkpoint's {old!r}; a "
                f"resumed run may change only {', '.join(RESUMABLE)}"
            )
    return {k: v for k, v in overrides.items() if k in RESUMABLE}


def reproduce_command(config: HerSacConfig, out: Path, export: Path) -> str:
    """The `twinbridge train` command that recreates this policy from scratch."""
    defaults = HerSacConfig()
    words = ["twinbridge", "train"]
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        always = f.name in ("task", "algo", "total_env_steps", "seed")
        if f.name == "progress" or (value == getattr(defaults, f.name) and not always):
            continue
        values = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
        words += ["--" + f.name.replace("_", "-"), *values]
    words += ["--out", str(out), "--export", str(export)]
    return shlex.join(words)


def _export(trainer: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Export ONNX + card, evaluate the ONNX file like `twinbridge rollout`, record it."""
    from policies.training.export import export_trained_policy

    config = trainer.config
    return export_trained_policy(
        trainer,
        args.export,
        episodes=args.export_eval_episodes,
        reproduce=reproduce_command(config, args.out, args.export),
    )
