"""The zoo policy through the real driver path vs on the twin: does the hardware stack keep it?

Run: `.venv/bin/python bench/hardware_transfer.py --episodes 50 --json` (~4 min: both
sides run in real time, one after the other, same seeds).

- twin: `twinbridge sim --task fetch-push --episodes N --seed S` (twin_node, policy_node,
  task_node; real time).
- driver: `twinbridge sim --hardware emulator ...`: the same policy and task nodes over
  driver_node -> serial protocol -> pseudo-terminal -> `twinbridge emulate` (its default
  deviations: object mass x1.1, friction x0.9, servo gain x0.95, damping x1.1, sensor noise,
  2 ms latencies), with the host safety layer (Fetch URDF velocity limits, 100 Hz).

Goal (issue 5): driver success >= 0.8 x twin success. Prints both rates, the ratio, the
emulator's device counters (watchdog trips, rejected commands), writes JSON and a bar chart
PNG to bench/results/. Exit status 1 if the goal is missed (`--no-fail` to only report).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from report import emit  # noqa: E402

GOAL_RATIO = 0.8
RESULTS = BENCH_DIR / "results"


def _sim(task: str, episodes: int, seed: int, extra: list[str], log_dir: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "sim.cli", "sim", "--task", task, "--episodes", str(episodes),
        "--seed", str(seed), "--json", "--log-dir", str(log_dir), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _device_counters(log: Path) -> dict[str, int]:
    """Events the emulated device logged: what the safety layers on both sides did."""
    events: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        row = json.loads(line)
        key = row["event"]
        if key == "command":
            key = "command_accepted" if row["accepted"] else f"command_{row.get('reason')}"
        events[key] += 1
    return dict(events)


def _plot(twin: float, driver: float, episodes: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    bars = ax.bar(
        ["twin (twin_node)", "driver + emulator"], [twin, driver], color=["#777", "#2a7"]
    )
    ax.axhline(GOAL_RATIO * twin, ls="--", c="k", lw=1, label=f"goal: {GOAL_RATIO:.0%} of twin")
    ax.bar_label(bars, fmt="%.2f")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(f"success over {episodes} episodes")
    ax.set_title("fetch-push zoo policy: twin vs hardware path")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fetch-push")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--emulator-config", type=Path, default=None)
    parser.add_argument("--policy", default=None, help="ONNX policy (default: the zoo's)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hw-transfer-") as tmp:
        logs = Path(tmp)
        print(f"twin: {args.episodes} episodes in real time...", file=sys.stderr, flush=True)
        common = ["--policy", args.policy] if args.policy else []
        twin = _sim(args.task, args.episodes, args.seed, common, logs / "twin")
        print(f"driver: {args.episodes} episodes via the emulator...", file=sys.stderr, flush=True)
        extra = [*common, "--hardware", "emulator"]
        if args.emulator_config is not None:
            extra += ["--emulator-config", str(args.emulator_config)]
        driver = _sim(args.task, args.episodes, args.seed, extra, logs / "driver")
        device = _device_counters(logs / "driver" / "emulator.jsonl")
    ratio = driver["success_rate"] / twin["success_rate"] if twin["success_rate"] else 0.0
    report = {
        "task": args.task, "episodes": args.episodes, "seed": args.seed,
        "twin_success": twin["success_rate"], "driver_success": driver["success_rate"],
        "ratio": round(ratio, 3), "goal_ratio": GOAL_RATIO, "device_events": device,
        "failures": [] if ratio >= GOAL_RATIO else [
            f"driver/twin success {ratio:.2f} < {GOAL_RATIO}"
        ],
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hardware_transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(
        twin["success_rate"],
        driver["success_rate"],
        args.episodes,
        RESULTS / "hardware_transfer.png",
    )
    refused = sum(
        v for k, v in device.items() if k.startswith("command_") and k != "command_accepted"
    )
    table = (
        f"{args.task}, {args.episodes} episodes from seed {args.seed}\n"
        f"  twin (twin_node, real time)      success {twin['success_rate']:.2f}\n"
        f"  driver_node + serial + emulator  success {driver['success_rate']:.2f}\n"
        f"  ratio {ratio:.2f} (goal >= {GOAL_RATIO})\n"
        f"  device: {device.get('command_accepted', 0)} commands accepted, "
        f"{refused} refused, {device.get('watchdog', 0)} watchdog trips"
    )
    return emit(report, table, args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
