"""`twinbridge train`: HER + SAC/TD3 or PPO-LSTM on a task, with checkpoints and ONNX export.

Run: `twinbridge train --task fetch-reach --algo her-sac --total-env-steps 6000 --seed 0
--out runs/fetch-reach --export policies/zoo/fetch-reach.onnx`, or
`twinbridge train --algo ppo-lstm --task hand-block-rotate-z --out runs/block-z`

`--algo` picks the options dataclass (`policies.training.algorithms`: `HerSacConfig` for
her-sac and her-td3, `PpoLstmConfig` for ppo-lstm); every field of each is a flag (see
--help, grouped by algorithm), and a flag of another algorithm is refused by name.
`--config FILE` (JSON, or YAML with PyYAML) sets fields too, its `algo` included, and
explicit flags win over it. Everything is validated before any env or network is built.
`--resume DIR` continues the checkpoint in DIR (a run directory or its `checkpoint/`; the
algorithm is the checkpoint's) up to the new `--total-env-steps`, bit-identically to an
uninterrupted run. With `--export`, the deterministic policy is written as ONNX + model
card, evaluated on `--export-eval-episodes` seeded episodes through the ONNX runtime
(exactly what `twinbridge rollout --policy FILE --episodes N --json` does), and the card
gets the result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policies.training.algorithms import (
    ALGORITHMS,
    DEFAULT_ALGO,
    algorithms_using,
    config_classes,
    get_algorithm,
    load,
)
from policies.training.errors import TrainingConfigError
from policies.training.options import EXPORT_FROM, load_config_file

OWN_HELP = True  # `twinbridge` leaves -h/--help to add_arguments (`--algo X --help`)


def add_arguments(parser: argparse.ArgumentParser, algo: str | None = None) -> None:
    """One flag per field of every algorithm's options dataclass (only `algo`'s when
    given: its --help), plus run options."""
    classes = config_classes()
    shared = set.intersection(*({f.name for f in dataclasses.fields(c)} for c in classes))
    common = parser.add_argument_group("options of every algorithm")
    seen: set[str] = set()
    shown = [c for c in classes if algo is None or algo in algorithms_using(c)]
    for cls in shown:
        names = ", ".join(algorithms_using(cls))
        group = parser.add_argument_group(f"{names} options")
        for f in dataclasses.fields(cls):
            if f.name not in seen:
                seen.add(f.name)
                _add_flag(common if f.name in shared else group, f, shown)
    _add_run_options(parser)
    parser.add_argument("-h", "--help", action=_AlgoHelp, help="show this help and exit")


class _AlgoHelp(argparse.Action):
    """--help after `--algo X`: the help of X's options (and the common ones) only."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None):
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, *_: Any) -> None:
        algo = getattr(namespace, "algo", None)
        if algo in ALGORITHMS:
            only = type(parser)(prog=parser.prog, description=parser.description, add_help=False)
            add_arguments(only, algo)
            parser = only
        parser.print_help()
        parser.exit()


def _add_flag(group: Any, f: dataclasses.Field, classes: list[type]) -> None:
    """The flag of field `f`; its help names each algorithm's default where they differ."""
    defaults = {c: getattr(c(), f.name) for c in classes if f.name in _names(c)}
    shown = {_shown(v) for v in defaults.values()}
    if len(shown) == 1:
        default = shown.pop()
    else:
        default = "; ".join(f"{_shown(v)} for {', '.join(algorithms_using(c))}"
                            for c, v in defaults.items())  # fmt: skip
    text = f.metadata["help"]
    if f.name == "algo":  # it picks the option set, so its default is the CLI's own
        text, default = f"algorithm, one of: {', '.join(ALGORITHMS)}", DEFAULT_ALGO
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f"{text} (default: {default})"}
    if isinstance(f.default, bool):
        kwargs["action"] = argparse.BooleanOptionalAction
    elif isinstance(f.default, tuple):
        kwargs.update(type=int, nargs="+", metavar="N")
    else:
        kwargs["type"] = type(f.default)
    group.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="JSON/YAML file of option: value")
    parser.add_argument(
        "--out", type=Path, required=True, help="run directory (CSV, PNG, checkpoint/)"
    )
    parser.add_argument("--resume", type=Path, help="continue from this run or checkpoint dir")
    parser.add_argument("--export", type=Path, help="write the final policy here (.onnx + card)")
    parser.add_argument(
        "--export-from",
        choices=EXPORT_FROM,
        default="final",
        help="export the policy after the last step (final) or the one whose epoch "
        "evaluation was best, ties to the later (best; chosen on eval_seed episodes, not on "
        "the export's test episodes) (default final)",
    )
    parser.add_argument(
        "--export-eval-episodes",
        type=int,
        default=100,
        help="seeded episodes (seeds 0..N-1) evaluating the exported ONNX (default 100)",
    )


def run(args: argparse.Namespace) -> int:
    """Validate everything, train, optionally export; prints the last log row as JSON."""
    from policies.training.loop import run_training

    _check_run_options(args)
    given = {k: v for k, v in vars(args).items() if k in _all_field_names()}
    if args.resume is not None:
        trainer = _resumed(args.resume, given)
    else:
        config = _config(args.config, given)
        trainer = load(get_algorithm(config.algo).trainer)(config)
    try:
        if _nothing_to_train(trainer, args):
            if args.export is None:
                return 0
            row = {}
        else:
            row = run_training(trainer, args.out)
        if args.export is not None:
            row["export"] = _export(trainer, args)
    finally:
        trainer.close()
    print(json.dumps(row))
    return 0


def _nothing_to_train(trainer: Any, args: argparse.Namespace) -> bool:
    """A resumed run already at its --total-env-steps: say so (one line) instead of
    printing the old last row as if it had trained."""
    done, total = int(trainer.counters["env_steps"]), trainer.config.total_env_steps
    if done < total:
        return False
    then = f"; exporting it to {args.export}" if args.export is not None else ""
    print(
        f"twinbridge train: nothing to train: the checkpoint in {args.resume} is at {done} "
        f"env steps, --total-env-steps is {total}; pass --total-env-steps above {done} to "
        f"continue it{then}",
        file=sys.stderr,
    )
    return True


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _all_field_names() -> set[str]:
    return set().union(*(_names(c) for c in config_classes()))


def _config(path: Path | None, overrides: dict[str, Any]) -> Any:
    """The options dataclass of the chosen algorithm, from the file and the flags."""
    values = load_config_file(path) if path is not None else {}
    algo = overrides.get("algo", values.get("algo", DEFAULT_ALGO))
    cls: Any = get_algorithm(algo).config_class
    _refuse_foreign_flags(cls, algo, overrides)
    for f in dataclasses.fields(cls):
        if f.name in overrides and isinstance(f.default, tuple):
            overrides[f.name] = tuple(overrides[f.name])
    return cls.from_dict({**values, **overrides}, str(path or "command line"))


def _refuse_foreign_flags(cls: type, algo: str, flags: dict[str, Any]) -> None:
    """A flag of another algorithm is a mistake worth naming, not something to ignore."""
    foreign = sorted(set(flags) - _names(cls))
    if foreign:
        listed = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise TrainingConfigError(
            f"{listed}: not option(s) of --algo {algo}; drop them (its options: "
            f"`twinbridge train --algo {algo} --help`)"
        )


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


def _resumed(path: Path, flags: dict[str, Any]) -> Any:
    """A trainer of the checkpoint's algorithm continuing it; flags may change only what
    does not affect learning, and a different task is a checkpoint mismatch."""
    from policies.training.checkpoint import load_checkpoint

    directory = _checkpoint_dir(path)
    saved = load_checkpoint(directory, task=flags.get("task"))
    algorithm = get_algorithm(saved.algo)
    _refuse_foreign_flags(algorithm.config_class, saved.algo, flags)
    for key, value in flags.items():
        old = saved.config.get(key)
        same = value == old or (isinstance(value, list | tuple) and list(value) == old)
        if key not in algorithm.resumable and not same:
            raise TrainingConfigError(
                f"--{key.replace('_', '-')} {value!r} differs from the checkpoint's {old!r}; a "
                f"resumed run may change only {', '.join(algorithm.resumable)}"
            )
    overrides = {k: v for k, v in flags.items() if k in algorithm.resumable}
    return load(algorithm.trainer).resume(directory, **overrides)


def reproduce_command(
    config: Any,
    out: Path,
    export: Path,
    export_from: str = "final",
    history: Sequence[tuple[int, str]] = (),
) -> str:
    """The `twinbridge train` command(s) that recreate this policy from scratch.

    `history` is the run's randomization history ((from env step, file) pairs): a run
    resumed with another `--randomization` is replayed as its first part, then one
    `--resume` per change, joined by `&&`.
    """
    tail = ["--export", str(export)] + (["--export-from", export_from] if export_from != "final"
                                        else [])  # fmt: skip
    if len(history) <= 1:
        return shlex.join([*_train_words(config), "--out", str(out), *tail])
    first = dataclasses.replace(config, randomization=history[0][1], total_env_steps=history[1][0])
    commands = [shlex.join([*_train_words(first), "--out", str(out)])]
    for i, (_, path) in enumerate(history[1:], start=1):
        last = i == len(history) - 1
        end = config.total_env_steps if last else history[i + 1][0]
        words = ["twinbridge", "train", "--resume", str(out), "--out", str(out),
                 "--total-env-steps", str(end), "--randomization", path]  # fmt: skip
        commands.append(shlex.join(words + (tail if last else [])))
    return " && ".join(commands)


def _train_words(config: Any) -> list[str]:
    """`twinbridge train` and every option that differs from its default."""
    defaults = type(config)()
    words = ["twinbridge", "train"]
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        always = f.name in ("task", "algo", "total_env_steps", "seed")
        if f.name == "progress" or (value == getattr(defaults, f.name) and not always):
            continue
        values = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
        words += ["--" + f.name.replace("_", "-"), *values]
    return words


def _export(trainer: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Export ONNX + card, evaluate the ONNX file like `twinbridge rollout`, record it."""
    from policies.training.export import export_trained_policy

    config = trainer.config
    return export_trained_policy(
        trainer,
        args.export,
        episodes=args.export_eval_episodes,
        reproduce=reproduce_command(
            config, args.out, args.export, args.export_from, trainer.randomization.history
        ),
        which=args.export_from,
    )
