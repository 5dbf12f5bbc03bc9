"""Robustness of fetch-push policies trained (a) without randomization, (b) with fixed
randomization, (c) with ADR: success on the nominal twin, on a held-out perturbed set, on
each perturbation alone, and through the hardware path (driver_node + serial + emulator).

Run: `.venv/bin/python bench/robustness.py --json` (~12 min: 1,000 episodes per policy and
set in two processes, ~5 min; then 50 real-time emulator episodes per policy, ~7 min;
`--no-emulator` skips those, `--episodes`/`--emulator-episodes` change the counts), and
`--task hand-reach`. At 200 episodes a rate's standard error is ~0.035, too coarse to rank
policies a few points apart, hence 1,000.

The policies are those of the README's robustness table (`policies/robustness/`, each
fine-tuned for the same env steps from one checkpoint; their cards hold the commands);
`--policy NAME=FILE.onnx` runs others. The perturbed set is `sim/randomization/configs/
fetch-perturbed-eval.yaml` (friction x0.5-2, masses x0.5-2, actuator gains x0.7-1.3, latency
0-2 control steps, observation noise up to 1 cm; for the hand, hand-perturbed-eval.yaml),
which no policy trained on; episode i uses seed i, and a seed fixes both the
task (initial state, goal) and the perturbation, so every policy meets the same episodes.
Each row also shows the binomial standard error. Goal (issue 6): (c) >= (b) > (a) on the
perturbed set. Writes bench/results/robustness-<task>.{json,png}; exit 1 if the goal is
missed.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH_DIR))

from report import emit  # noqa: E402

CONFIGS = REPO / "sim" / "randomization" / "configs"
RESULTS = BENCH_DIR / "results"
# Per task: the held-out perturbed set, and the policies of the README's table.
TASKS: dict[str, tuple[Path, dict[str, str]]] = {
    "fetch-push-v0": (CONFIGS / "fetch-perturbed-eval.yaml", {
        "zoo (no DR, 450k)": "policies/zoo/fetch-push-v0.onnx",
        "(a) no randomization": "policies/robustness/fetch-push-none.onnx",
        "(b) fixed randomization": "policies/robustness/fetch-push-fixed.onnx",
        "(c) ADR": "policies/robustness/fetch-push-adr.onnx",
    }),
    "hand-reach": (CONFIGS / "hand-perturbed-eval.yaml", {
        "(a) no randomization": "policies/robustness/hand-reach-none.onnx",
        "(b) fixed randomization": "policies/robustness/hand-reach-fixed.onnx",
        "(c) ADR": "policies/robustness/hand-reach-adr.onnx",
    }),
}  # fmt: skip


def eval_sets(perturbed: Path) -> dict[str, dict[str, list[float]] | None]:
    """Nominal, the whole perturbed set, and each of its perturbations alone."""
    from sim.config_loader import load_yaml_mapping

    ranges = load_yaml_mapping(perturbed, "perturbed evaluation set")["parameters"]
    sets: dict[str, dict[str, list[float]] | None] = {"nominal": None, "perturbed": ranges}
    sets.update({f"only {path}": {path: r} for path, r in ranges.items()})
    return sets


def success_rate(
    task: str, policy: str, ranges: dict[str, list[float]] | None, episodes: int
) -> float:
    """Success of `policy` on `episodes` seeded episodes of the twin randomized by `ranges`."""
    from policies.rollout import RolloutConfig, rollout
    from sim.randomization import RandomizationConfig

    randomization = (
        None if ranges is None
        else RandomizationConfig.from_dict({"parameters": ranges}, "eval set")
    )  # fmt: skip
    config = RolloutConfig(task=task, episodes=episodes, policy=policy, seed=0, progress=False,
                           randomization=randomization)  # fmt: skip
    return rollout(config).success_rate


def emulator_success(task: str, policy: str, episodes: int) -> float:
    """Success through driver_node + serial + `twinbridge emulate`, in real time."""
    with tempfile.TemporaryDirectory(prefix="robustness-") as tmp:
        command = [
            sys.executable, "-m", "sim.cli", "sim", "--task", task, "--episodes", str(episodes),
            "--seed", "0", "--json", "--log-dir", tmp, "--policy", policy,
            "--hardware", "emulator",
            "--allow-ideal-actuation",  # the table's -v0 policies: what ideal training costs
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["success_rate"])


def _plot(task: str, rows: dict[str, dict[str, float]], columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(rows)
    x = np.arange(len(columns))
    for i, (name, values) in enumerate(rows.items()):
        ax.bar(x + i * width, [values.get(c, np.nan) for c in columns], width, label=name)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels([c.replace("only ", "only\n") for c in columns], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(f"{task}: robustness of policies trained without/with randomization")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _table(rows: dict[str, dict[str, float]], columns: list[str], n: dict[str, int]) -> str:
    lines = [f"{'eval set':<36}" + "".join(f"{name[:24]:>26}" for name in rows)]
    for column in columns:
        cells = []
        for values in rows.values():
            p = values.get(column, float("nan"))
            se = math.sqrt(p * (1 - p) / n[column]) if n[column] and p == p else float("nan")
            cells.append(f"{p:>19.3f} +-{se:.3f}")
        lines.append(f"{column:<36}" + "".join(cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="fetch-push-v0")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--emulator-episodes", type=int, default=50)
    parser.add_argument("--no-emulator", action="store_true", help="(hand-reach never has one)")
    parser.add_argument("--policy", action="append", default=[], help="NAME=FILE.onnx")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    perturbed, default_policies = TASKS[args.task]
    policies = dict(p.split("=", 1) for p in args.policy) if args.policy else default_policies
    sets = eval_sets(perturbed)
    jobs = [(name, column) for name in policies for column in sets]
    from tqdm import tqdm

    rows: dict[str, dict[str, float]] = {name: {} for name in policies}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {job: pool.submit(success_rate, args.task, policies[job[0]], sets[job[1]],
                                    args.episodes) for job in jobs}  # fmt: skip
        for (name, column), future in tqdm(futures.items(), desc="rollouts"):
            rows[name][column] = future.result()
    columns = list(sets)
    counts = dict.fromkeys(columns, args.episodes)
    if not args.no_emulator and args.task.startswith("fetch"):
        for name, policy in tqdm(policies.items(), desc="emulator"):
            rows[name]["emulator (driver_node)"] = emulator_success(
                args.task, policy, args.emulator_episodes
            )
        columns.append("emulator (driver_node)")
        counts["emulator (driver_node)"] = args.emulator_episodes
    failures = _goal_failures(rows)
    report = {"task": args.task, "episodes": counts,
              "perturbed_set": str(perturbed.relative_to(REPO)),
              "policies": policies, "success": rows, "failures": failures}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"robustness-{args.task}.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(args.task, rows, columns, RESULTS / f"robustness-{args.task}.png")
    return emit(report, _table(rows, columns, counts), args.json, args.no_fail)


def _goal_failures(rows: dict[str, dict[str, float]]) -> list[str]:
    by_letter = {name[:3]: values for name, values in rows.items() if name.startswith("(")}
    if set(by_letter) != {"(a)", "(b)", "(c)"}:
        return []
    a, b, c = (by_letter[k]["perturbed"] for k in ("(a)", "(b)", "(c)"))
    failures = []
    if not c >= b:
        failures.append(f"perturbed: (c) ADR {c:.3f} < (b) fixed {b:.3f}")
    if not b > a:
        failures.append(f"perturbed: (b) fixed {b:.3f} <= (a) none {a:.3f}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
