"""Exploration: her-td3 with action-space vs adaptive parameter-space noise, env steps to 0.9.

Run: `.venv/bin/python bench/exploration.py --json` (add `--seeds 0 1` or `--max-env-steps
2000` for a shorter run, `--jobs 1` on a busy machine).

For each exploration mode and seed, trains her-td3 on one task with the small settings of the
learning test in `tests/test_her_sac.py` (64x64 MLPs, batch 256, 1 update per env step, 200
warmup env steps, 2 envs), evaluates the deterministic policy (`HerSacTrainer.evaluate`, 20
seeded episodes) every `--eval-every` env steps and records the first env-step count whose
success rate is >= `--target`. A run that never gets there within `--max-env-steps` counts
as missed. Runs go to `--jobs` worker processes (one torch thread each). Exit status 1 if
any run missed (`--no-fail` to only report).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run as a script from a checkout
sys.path.insert(0, str(BENCH_DIR))  # the shared bench/report.py

from report import emit  # noqa: E402

from policies.training.her.config import EXPLORATIONS, HerSacConfig  # noqa: E402

SMALL = {  # the learning test's settings (tests/test_her_sac.py FAST)
    "hidden_sizes": (64, 64),
    "updates_per_env_step": 1.0,
    "warmup_env_steps": 200,
    "num_envs": 2,
    "progress": False,
}


@dataclass(frozen=True)
class Job:
    """One training run to measure."""

    task: str
    exploration: str
    seed: int
    target: float
    eval_every: int
    max_env_steps: int


@dataclass
class Result:
    """Env steps to the target (None: missed), and the success curve seen on the way."""

    exploration: str
    seed: int
    steps_to_target: int | None
    curve: list[tuple[int, float]]
    final_param_noise_std: float | None


def run_job(job: Job) -> Result:
    """Train until the target success rate or the budget; evaluate every `eval_every`."""
    from policies.training.her.trainer import HerSacTrainer

    config = HerSacConfig(
        task=job.task, algo="her-td3", exploration=job.exploration, seed=job.seed, **SMALL
    )
    trainer = HerSacTrainer(config)
    curve: list[tuple[int, float]] = []
    try:
        while trainer.counters["env_steps"] < job.max_env_steps:
            trainer.iterate()
            steps = trainer.counters["env_steps"]
            if steps % job.eval_every == 0:
                curve.append((steps, trainer.evaluate(20)[0]))
                if curve[-1][1] >= job.target:
                    break
    finally:
        trainer.close()
    hit = curve[-1][0] if curve and curve[-1][1] >= job.target else None
    noise = trainer.agent.param_noise
    std = None if noise is None else float(noise.std)
    return Result(job.exploration, job.seed, hit, curve, std)


def run_all(jobs: list[Job], workers: int) -> list[Result]:
    """All jobs over `workers` processes, with a progress bar."""
    results: list[Result] = []
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), unit="run"):
            results.append(future.result())
    return sorted(results, key=lambda r: (r.exploration, r.seed))


def format_table(report: dict[str, Any]) -> str:
    """Per mode: env steps to the target per seed, and their median."""
    rows = {mode: " / ".join(str(s) if s else "miss" for s in summary["steps"])
            for mode, summary in report["modes"].items()}  # fmt: skip
    width = max(len("per seed"), *(len(r) for r in rows.values()))
    lines = [f"{report['task']}, her-td3, env steps to success >= {report['target']} "
             f"(eval every {report['eval_every']}, budget {report['max_env_steps']})",
             f"{'exploration':<12} {'per seed':<{width}} {'median':>7}"]  # fmt: skip
    for mode, per_seed in rows.items():
        median = report["modes"][mode]["median"]
        lines.append(f"{mode:<12} {per_seed:<{width}} {'-' if median is None else median:>7}")
    return "\n".join(lines)


def summarize(results: list[Result], args: argparse.Namespace) -> dict[str, Any]:
    """JSON-ready report; a missed run is a failure."""
    modes: dict[str, Any] = {}
    for mode in args.modes:
        steps = [r.steps_to_target for r in results if r.exploration == mode]
        hits = [s for s in steps if s is not None]
        median = statistics.median(hits) if len(hits) == len(steps) and hits else None
        modes[mode] = {"seeds": args.seeds, "steps": steps, "median": median}
    failures = [f"{r.exploration} seed {r.seed} missed {args.target} within "
                f"{args.max_env_steps} env steps" for r in results
                if r.steps_to_target is None]  # fmt: skip
    return {
        "task": args.task, "target": args.target, "eval_every": args.eval_every,
        "max_env_steps": args.max_env_steps, "settings": {**SMALL, "batch_size": 256},
        "modes": modes, "runs": [asdict(r) for r in results], "failures": failures,
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fetch-reach")
    parser.add_argument("--modes", nargs="+", default=list(EXPLORATIONS), choices=EXPLORATIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=0.9, help="eval success rate to reach")
    parser.add_argument("--eval-every", type=int, default=200, help="env steps between evals")
    parser.add_argument("--max-env-steps", type=int, default=3000, help="budget per run")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a run missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    jobs = [Job(args.task, mode, seed, args.target, args.eval_every, args.max_env_steps)
            for mode in args.modes for seed in args.seeds]  # fmt: skip
    report = summarize(run_all(jobs, args.jobs), args)
    return emit(report, format_table(report), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
