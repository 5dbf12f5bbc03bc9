"""Randomization overhead: what domain randomization adds to an episode, vs the plain env.

Run: `.venv/bin/python bench/randomization_overhead.py --json` (`--episodes 30` default,
`--no-fail` to only report).

Target (issue 6): randomization plus reset costs <= 10 % of an episode's stepping time.
For each task and randomization config, in interleaved rounds (machine load hits all alike),
one seeded episode of random actions is run on a randomized env and on a plain env (the
peer, same seed and actions):

- `randomize_ms`: applying the episode's values to the model (`EpisodeRandomizer.apply`);
- `reset_ms`: the whole `env.reset` (randomization included) vs the plain env's reset;
- `step_ms`: the episode's stepping time (the action/observation pipelines included);
- `reset_share`: randomized reset (randomization applied + task reset) / the episode's
  stepping time: the issue's target, <= 0.10;
- `stepping_overhead`: randomized stepping / plain stepping - 1: what the per-step action
  and observation pipelines add (and what the perturbed physics itself costs more or less:
  a heavier arm or a changed timestep changes the solver's work), reported, no target.

Medians over episodes; the report also goes to bench/results/randomization_overhead.json.
Configs: the shipped fetch-push fixed set and the held-out perturbed set, every physics +
action + observation parameter that applies to the robot, and the same plus the visual
family (textures re-uploaded only where a renderer exists; none here, so texture noise
costs the CPU-side noise alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from report import emit  # noqa: E402

from sim.envs import make_task_env  # noqa: E402
from sim.randomization import PARAMETERS, RandomizationConfig, RandomizationError  # noqa: E402
from sim.randomization.config import load_randomization  # noqa: E402
from sim.randomization.engine import EpisodeRandomizer  # noqa: E402

TARGET = 0.10  # randomize + reset, as a share of the episode's stepping time
CONFIG_DIR = BENCH_DIR.parent / "sim" / "randomization" / "configs"


def every_parameter(task: str, families: tuple[str, ...]) -> RandomizationConfig:
    """Every parameter of `families` that applies to the task's robot, over a mid range."""
    env = make_task_env(task, disable_env_checker=True).unwrapped
    ranges: dict[str, tuple[float, float]] = {}
    for path, p in PARAMETERS.items():
        if p.family not in families:
            continue
        span = (p.nominal, p.nominal + 0.1 * (p.legal_high - p.nominal))
        try:
            EpisodeRandomizer(env.twin, env.task, RandomizationConfig(ranges={path: span}))
        except RandomizationError:
            continue  # nothing to randomize on this robot (e.g. tendon coupling on the Fetch)
        ranges[path] = span
    env.close()
    return RandomizationConfig(ranges=ranges, source=f"every {'+'.join(families)} parameter")


def configs() -> list[tuple[str, str, RandomizationConfig]]:
    shipped = ("fetch-push-fixed.yaml", "fetch-perturbed-eval.yaml")
    out = [("fetch-push", name, load_randomization(CONFIG_DIR / name)) for name in shipped]
    for task in ("fetch-push", "hand-block-rotate-z"):
        out.append((task, "physics+action+observation",
                    every_parameter(task, ("physics", "action", "observation"))))  # fmt: skip
        out.append((task, "all four families", every_parameter(task, (
            "physics", "action", "observation", "visual"))))  # fmt: skip
    return out


def episode(env: Any, seed: int, actions: np.ndarray) -> tuple[float, float]:
    """Reset and step time (s) of one seeded episode."""
    start = time.perf_counter()
    env.reset(seed=seed)
    middle = time.perf_counter()
    for action in actions:
        env.step(action)
    return middle - start, time.perf_counter() - middle


def apply_time(env: Any, seed: int) -> float:
    randomizer, rng = env.unwrapped.randomizer, np.random.default_rng(seed)
    values = randomizer.sample(rng)
    start = time.perf_counter()
    randomizer.apply(values, rng)
    return time.perf_counter() - start


def measure(task: str, config: RandomizationConfig, episodes: int) -> dict[str, Any]:
    randomized = make_task_env(task, disable_env_checker=True, randomization=config)
    plain = make_task_env(task, disable_env_checker=True)
    steps = randomized.spec.max_episode_steps
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {k: [] for k in ("r_reset", "r_step", "p_reset", "p_step",
                                                    "apply")}  # fmt: skip
    for seed in range(episodes):
        actions = rng.uniform(-1, 1, (steps, *randomized.action_space.shape))
        for env, prefix in ((randomized, "r"), (plain, "p")):  # interleaved, same work
            reset_s, step_s = episode(env, seed, actions)
            rows[f"{prefix}_reset"].append(reset_s)
            rows[f"{prefix}_step"].append(step_s)
        rows["apply"].append(apply_time(randomized, seed))
    med = {k: statistics.median(v) for k, v in rows.items()}
    stepping = [rs / ps - 1 for rs, ps in zip(rows["r_step"], rows["p_step"], strict=True)]
    shares = [rr / rs for rr, rs in zip(rows["r_reset"], rows["r_step"], strict=True)]
    randomized.close()
    plain.close()
    return {
        "parameters": len(config.paths),
        "randomize_ms": 1e3 * med["apply"],
        "reset_ms": 1e3 * med["r_reset"],
        "plain_reset_ms": 1e3 * med["p_reset"],
        "step_ms": 1e3 * med["r_step"],
        "plain_step_ms": 1e3 * med["p_step"],
        "reset_share": statistics.median(shares),
        "stepping_overhead": statistics.median(stepping),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    results, failures = [], []
    for task, name, config in tqdm(configs(), desc="configs"):
        row = {"task": task, "config": name, **measure(task, config, args.episodes)}
        results.append(row)
        if row["reset_share"] > TARGET:
            failures.append(f"{task} {name}: randomize+reset {row['reset_share']:.3f} of "
                            f"stepping > {TARGET}")  # fmt: skip
    header = (f"{'task':<20} {'config':<28} {'n':>3} {'apply ms':>9} {'reset ms':>9} "
              f"{'plain':>7} {'episode ms':>11} {'plain':>7} {'reset/step':>11} "
              f"{'stepping':>9}")  # fmt: skip
    lines = [header] + [
        f"{r['task']:<20} {r['config']:<28} {r['parameters']:>3} {r['randomize_ms']:>9.3f} "
        f"{r['reset_ms']:>9.2f} {r['plain_reset_ms']:>7.2f} {r['step_ms']:>11.1f} "
        f"{r['plain_step_ms']:>7.1f} {100 * r['reset_share']:>10.1f}% "
        f"{100 * r['stepping_overhead']:>+8.1f}%"
        for r in results
    ]
    report = {"target_overhead": TARGET, "episodes": args.episodes, "results": results,
              "failures": failures}  # fmt: skip
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "randomization_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    return emit(report, "\n".join(lines), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
