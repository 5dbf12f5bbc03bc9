"""Every Fetch zoo policy on the twin and through the real driver path: does it transfer?

Run: `.venv/bin/python bench/hardware_transfer.py --json` (100 seeded episodes per policy and
side; the hardware path runs in real time: about an hour). `--tasks fetch-reach --episodes 5`
is a quick look.

For each task with a policy in policies/zoo, side by side in one run, on seeds S..S+N-1:

- twin: `twinbridge sim --task T --fast` (twin_node with the robot's actuation, policy_node,
  task_node; lockstep, so the same episodes as in real time);
- default: `twinbridge sim --task T --hardware emulator`: the same policy and task nodes over
  driver_node -> serial protocol -> pseudo-terminal -> `twinbridge emulate` with its default
  deviations (object mass x1.1, friction x0.9, servo gain x0.95, damping x1.1, sensor noise,
  2 ms latencies), in real time;
- hard: the same with hardware/config/fetch-hard.yaml (mass x1.5, friction x0.6, gain x0.7,
  damping x2, 4x the sensor noise, one control step more of command latency), written down
  before the zoo was trained on the robot's actuation.

On the hardware path an operator (this script, over the contract's services) watches the
task node: when it waits on a latched fault, the fault is written down and released with
`enable`, as a person would, and the run goes on; every fault is reported. Per episode the
safety layer's interventions are read from driver_node's `diagnostics`: rate-limited
cycles, clamped targets, stale-target holds, latched faults.

Goals (issue 18), for reach, push and pick-and-place: default >= 0.9 x twin and 0 tracking
faults; hard >= 0.8 x twin (slide is reported without one). Writes
bench/results/hardware_transfer.{json,png}; with `--tasks`, the rows of the other tasks from
the last run with the same episodes and seed are kept while their zoo policy is unchanged
(each row names its policy's sha256 and when it was measured). Exit status 1 if a goal is
missed (`--no-fail` to only report).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from report import emit  # noqa: E402

RESULTS = BENCH_DIR / "results"
ZOO = REPO / "policies" / "zoo"
FETCH_TASKS = ("fetch-reach", "fetch-push", "fetch-pick-and-place", "fetch-slide")
CONFIGS = {"default": None, "hard": REPO / "hardware" / "config" / "fetch-hard.yaml"}
GOALS = {"default": 0.9, "hard": 0.8}
# The tasks the goals hold for; fetch-slide is measured and reported with its honest number.
GOAL_TASKS = ("fetch-reach", "fetch-push", "fetch-pick-and-place")
# driver_node's safety counters that are interventions (hardware/safety.py)
INTERVENTIONS = ("rate_limited", "clamped_targets", "stale_holds")


def _sim(task: str, episodes: int, seed: int, extra: list[str], log_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "sim.cli", "sim", "--task", task, "--episodes", str(episodes),
        "--seed", str(seed), "--json", "--log-dir", str(log_dir), *extra,
    ]  # fmt: skip


def _domain() -> str:
    """A ROS domain of the run's own, so runs side by side on one machine never meet."""
    return str(random.SystemRandom().randint(60, 101))


def _twin(task: str, episodes: int, seed: int, log_dir: Path) -> dict[str, Any]:
    command = _sim(task, episodes, seed, ["--fast", "--domain-id", _domain()], log_dir)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Operator:
    """A person at the robot, through the contract only: reads `diagnostics`, releases a
    latched fault the task node waits on with `enable`, and notes what the safety layer did
    in each episode."""

    def __init__(self, domain: int):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_srvs.srv import Trigger

        from ros_ws.discovery import sim_discovery

        os.environ.update(sim_discovery(domain))
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("transfer_bench_operator", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/fetch/diagnostics", self._on, qos)
        self.enable = self.node.create_client(Trigger, "/fetch/enable")
        self._trigger = Trigger
        self.driver: dict[str, str] = {}
        self.waiting = ""
        self.episodes: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self._at_episode_start: dict[str, str] = {}

    def _on(self, msg: Any) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == "driver_node":
                self.driver = values
            elif status.name == "task_node":
                self.waiting = values.get("waiting", "")
            elif status.name == "task_node/episode":
                self._episode_done(values)

    def _episode_done(self, values: dict[str, str]) -> None:
        before, now = self._at_episode_start, self.driver
        counts = {key: _count(now, key) - _count(before, key) for key in INTERVENTIONS}
        self.episodes.append({"seed": int(values.get("seed", -1)),
                              "success": values.get("success") == "True", **counts})  # fmt: skip
        self._at_episode_start = dict(now)

    def supervise(self, bringup: subprocess.Popen) -> None:
        """Spin until the bringup ends, releasing each fault the task node waits on."""
        while bringup.poll() is None:
            self.executor.spin_once(timeout_sec=0.1)
            if "fault:" in self.waiting and self.enable.service_is_ready():
                self.faults.append({
                    "episode": len(self.episodes), "waiting": self.waiting,
                    "fault": self.driver.get("safety_fault", ""),
                })  # fmt: skip
                future = self.enable.call_async(self._trigger.Request())
                end = time.monotonic() + 5.0
                while not future.done() and time.monotonic() < end:
                    self.executor.spin_once(timeout_sec=0.05)
                self.waiting = ""
                time.sleep(0.5)  # the task node's next report

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _count(values: dict[str, str], key: str) -> int:
    try:
        return int(float(values.get(f"safety_count.{key}", 0)))
    except ValueError:
        return 0


def _hardware(
    task: str, episodes: int, seed: int, config: Path | None, log_dir: Path
) -> dict[str, Any]:
    domain = _domain()
    extra = ["--hardware", "emulator", "--domain-id", domain]
    if config is not None:
        extra += ["--emulator-config", str(config)]
    command = _sim(task, episodes, seed, extra, log_dir)
    operator = Operator(int(domain))
    bringup = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        operator.supervise(bringup)
        stdout, stderr = bringup.communicate(timeout=60)
    finally:
        if bringup.poll() is None:
            bringup.kill()
        operator.close()
    if bringup.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    return {**summary, "per_episode": operator.episodes, "faults": operator.faults,
            "device_events": _device_events(log_dir / "emulator.jsonl")}  # fmt: skip


def _device_events(log: Path) -> dict[str, int]:
    """What the emulated device logged: its own watchdog trips, faults, refusals."""
    events: Counter[str] = Counter()
    if not log.exists():
        return {}
    for line in log.read_text().splitlines():
        row = json.loads(line)
        key = row["event"]
        if key == "command":
            key = "command_accepted" if row["accepted"] else f"command_{row.get('reason')}"
        events[key] += 1
    return dict(events)


def _row(task: str, twin: dict[str, Any], paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    measured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    row: dict[str, Any] = {
        "task": task, "twin": twin["success_rate"], "policy_sha256": _policy_sha256(task),
        "measured_utc": measured,
    }  # fmt: skip
    for name, result in paths.items():
        episodes = result["per_episode"]
        rate = result["success_rate"]
        row[name] = rate
        row[f"{name}_ratio"] = round(rate / twin["success_rate"], 3) if twin["success_rate"] else 0
        row[f"{name}_faults"] = len(result["faults"])
        row[f"{name}_tracking_faults"] = sum(
            1 for f in result["faults"] if "tracking" in f["fault"] or "tracking" in f["waiting"]
        )
        for key in INTERVENTIONS:
            values = sorted(e[key] for e in episodes) or [0]
            row[f"{name}_{key}_median"] = values[len(values) // 2]
    return row


def _plot(rows: list[dict[str, Any]], episodes: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sides = ["twin", *CONFIGS]
    colors = {"twin": "#777", "default": "#2a7", "hard": "#c63"}
    x = np.arange(len(rows))
    width = 0.8 / len(sides)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, side in enumerate(sides):
        values = [row.get(side, np.nan) for row in rows]
        bars = ax.bar(x + (i - 1) * width, values, width, label=side, color=colors[side])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [row["task"] for row in rows])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(f"success over {episodes} episodes")
    ax.set_title("Fetch zoo: twin vs driver_node + serial + emulator")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _policy_sha256(task: str) -> str:
    return str(json.loads((ZOO / f"{task}.json").read_text())["onnx_sha256"])


def _with_earlier_rows(
    rows: list[dict[str, Any]], results: dict[str, Any], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """This run's rows, plus those of an earlier run (same episodes, seeds and configs) for
    the other tasks whose zoo policy has not changed since (`--tasks` re-measures some,
    keeps the rest); a row of a replaced policy is dropped, never shown."""
    path = RESULTS / "hardware_transfer.json"
    if not path.exists():
        return rows, results
    earlier = json.loads(path.read_text())
    if (earlier.get("episodes"), earlier.get("seed")) != (args.episodes, args.seed):
        return rows, results
    ours = {row["task"] for row in rows}
    kept = [row for row in earlier.get("rows", []) if row["task"] not in ours
            and all(name in row for name in args.configs)
            and (ZOO / f"{row['task']}.json").exists()
            and row.get("policy_sha256") == _policy_sha256(row["task"])]  # fmt: skip
    merged = {**{row["task"]: earlier["results"][row["task"]] for row in kept}, **results}
    order = {task: i for i, task in enumerate(FETCH_TASKS)}
    return sorted(kept + rows, key=lambda row: order.get(row["task"], 99)), merged


def _tasks(names: list[str] | None) -> list[str]:
    tasks = names or [t for t in FETCH_TASKS if (ZOO / f"{t}.onnx").exists()]
    missing = [t for t in tasks if not (ZOO / f"{t}.onnx").exists()]
    if missing:
        raise SystemExit(f"no zoo policy for {', '.join(missing)} (policies/zoo/<task>.onnx)")
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=None, help="default: every zoo policy")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="hw-transfer-") as tmp:
        for task in _tasks(args.tasks):
            print(f"{task}: twin, {args.episodes} episodes...", file=sys.stderr, flush=True)
            twin = _twin(task, args.episodes, args.seed, Path(tmp) / task / "twin")
            paths = {}
            for name in args.configs:
                print(f"{task}: {name} emulator, {args.episodes} episodes in real time...",
                      file=sys.stderr, flush=True)  # fmt: skip
                logs = Path(tmp) / task / name
                paths[name] = _hardware(task, args.episodes, args.seed, CONFIGS[name], logs)
            results[task] = {"twin": twin, **paths}
            rows.append(_row(task, twin, paths))
    rows, results = _with_earlier_rows(rows, results, args)
    failures = [
        f"{row['task']} {name}: {row[f'{name}_ratio']:.2f} x twin < {GOALS[name]}"
        for row in rows for name in args.configs
        if row["task"] in GOAL_TASKS and row[f"{name}_ratio"] < GOALS[name]
    ] + [
        f"{row['task']} default: {row['default_tracking_faults']} tracking faults"
        for row in rows if row["task"] in GOAL_TASKS and row.get("default_tracking_faults")
    ]  # fmt: skip
    report = {"episodes": args.episodes, "seed": args.seed, "goals": GOALS, "rows": rows,
              "results": results, "failures": failures}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hardware_transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(rows, args.episodes, RESULTS / "hardware_transfer.png")
    lines = [f"{args.episodes} seeded episodes from seed {args.seed} per side"]
    for row in rows:
        line = f"  {row['task']:22s} twin {row['twin']:.2f}"
        for name in args.configs:
            line += (f" | {name} {row[name]:.2f} ({row[f'{name}_ratio']:.2f} x), "
                     f"{row[f'{name}_faults']} faults")  # fmt: skip
        lines.append(line)
    return emit(report, "\n".join(lines), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
