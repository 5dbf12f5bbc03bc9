"""Training speed on FetchPush: our HER-TD3 vs stable-baselines3 SAC + HerReplayBuffer.

Run: `.venv/bin/python bench/train_fetch_push.py --json` (~2 h: each side is capped at
`--cap-minutes` 90; `--parallel` runs both at once, one core each; `--cap-minutes 2` for a
smoke run).

- ours: `twinbridge train`'s trainer with the settings of the zoo's fetch-push policy
  (her-td3, adaptive parameter noise, gamma 0.95, 256x256, 4 envs, 0.5 updates per env step),
  on our twin's `fetch-push-v0` (Gymnasium-Robotics' ideal servos and 50 steps, as the peer's).
- peer: SB3 2.9.2 SAC + HerReplayBuffer (future, k=4; gamma 0.95, tau 0.05, lr 1e-3, batch
  256, 256x256, 1 update per env step) on Gymnasium-Robotics' own FetchPush-v4 (mujoco
  3.3.7), in `bench/.peer-sb3-venv` (created on first use) via `bench/peer_sb3_her.py`.

Both train with one torch thread, are evaluated on 50 seeded episodes every 10,000 env steps
(evaluation time not counted), and stop at the first evaluation >= 90 % success or at the
cap. A side still short at its cap counts as the cap. Prints env steps and minutes to the
target, the ratio ours/peer, and writes a PNG of both learning curves. Exit status 1 if ours
misses its goals (<= 45 min and <= 0.5x the peer's minutes; `--no-fail` to only report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout
sys.path.insert(0, str(BENCH_DIR))  # the shared bench/report.py

from peer_venv import PeerVenvError, ensure_venv  # noqa: E402
from report import emit  # noqa: E402

PEER_VENV = BENCH_DIR / ".peer-sb3-venv"
PEER_SCRIPT = BENCH_DIR / "peer_sb3_her.py"
PEER_REQUIREMENTS = (
    "mujoco==3.3.7", "gymnasium-robotics==1.4.2", "gymnasium==1.2.3",
    "stable-baselines3==2.9.2", "torch==2.13.0",
)  # fmt: skip
OURS = {  # the settings of the fetch-push-v0 zoo policy, on the peer's task semantics
    "task": "fetch-push-v0",
    "algo": "her-td3",
    "exploration": "parameter",
    "gamma": 0.95,
    "hidden_sizes": (256, 256),
    "num_envs": 4,
    "updates_per_env_step": 0.5,
    "progress": False,
    "torch_threads": 1,
}
GOAL_MINUTES, GOAL_RATIO = 45.0, 0.5


class BenchError(RuntimeError):
    """The benchmark cannot run (e.g. the peer venv cannot be built)."""


def ensure_peer_venv(venv: Path = PEER_VENV) -> Path:
    """The SB3 venv's python, created with pinned packages on first use."""
    try:
        return ensure_venv(venv, PEER_REQUIREMENTS, "~2 min")
    except PeerVenvError as e:
        raise BenchError(str(e)) from e


def run_ours(args: argparse.Namespace) -> int:
    """Worker mode: train ours, printing one JSON line per evaluation (like the peer)."""
    from policies.training.her.config import HerSacConfig
    from policies.training.her.trainer import HerSacTrainer

    trainer = HerSacTrainer(HerSacConfig(**{**OURS, "seed": args.seed}))  # type: ignore[arg-type]
    train_s = 0.0
    try:
        while train_s < args.cap_minutes * 60:
            start = time.perf_counter()
            trainer.iterate()
            train_s += time.perf_counter() - start
            steps = int(trainer.counters["env_steps"])
            if steps % args.eval_every == 0:
                success, _ = trainer.evaluate(args.eval_episodes)
                print(json.dumps({"env_steps": steps, "train_s": train_s,
                                  "success_rate": success}), flush=True)  # fmt: skip
                if success >= args.target:
                    break
    finally:
        trainer.close()
    return 0


def _command(side: str, args: argparse.Namespace) -> list[str]:
    common = ["--seed", str(args.seed), "--cap-minutes", str(args.cap_minutes),
              "--eval-every", str(args.eval_every), "--eval-episodes", str(args.eval_episodes),
              "--target", str(args.target)]  # fmt: skip
    if side == "ours":
        return [sys.executable, str(Path(__file__).resolve()), "--worker", *common]
    return [str(ensure_peer_venv()), str(PEER_SCRIPT), *common]


def _follow(side: str, command: list[str], curves: dict[str, list[dict]], position: int) -> None:
    """Run one side to the end, collecting its evaluation lines under a progress bar."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    bar = tqdm(desc=side, position=position, unit="eval", leave=True)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            point = json.loads(line)
            curves[side].append(point)
            bar.update(1)
            bar.set_postfix(steps=point["env_steps"], min=f"{point['train_s'] / 60:.1f}",
                            success=point["success_rate"])  # fmt: skip
    bar.close()
    if proc.returncode != 0:
        raise BenchError(f"{side} exited with status {proc.returncode}")


def run_sides(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Both sides, one after the other (default) or at once (`--parallel`)."""
    curves: dict[str, list[dict]] = {"ours": [], "peer": []}
    commands = {side: _command(side, args) for side in curves}  # builds the venv first
    if not args.parallel:
        for i, side in enumerate(curves):
            _follow(side, commands[side], curves, i)
        return curves
    errors: list[BaseException] = []

    def follow(side: str, position: int) -> None:
        try:
            _follow(side, commands[side], curves, position)
        except BaseException as e:  # re-raised below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=follow, args=(s, i)) for i, s in enumerate(curves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return curves


def summarize(curves: dict[str, list[dict]], args: argparse.Namespace) -> dict[str, Any]:
    """Steps and minutes to the target per side (the cap if missed) and the ratio."""
    sides: dict[str, Any] = {}
    for side, curve in curves.items():
        in_cap = [p for p in curve if p["train_s"] <= args.cap_minutes * 60]
        hit = next((p for p in in_cap if p["success_rate"] >= args.target), None)
        sides[side] = {
            "env_steps_to_target": hit["env_steps"] if hit else None,
            "minutes_to_target": round(hit["train_s"] / 60, 2) if hit else None,
            "minutes_counted": round(hit["train_s"] / 60, 2) if hit else args.cap_minutes,
            "final_success_rate": curve[-1]["success_rate"] if curve else None,
            "env_steps_per_s": round(curve[-1]["env_steps"] / curve[-1]["train_s"], 1)
            if curve
            else None,
            "curve": curve,
        }
    ratio = sides["ours"]["minutes_counted"] / sides["peer"]["minutes_counted"]
    failures = []
    if sides["ours"]["minutes_to_target"] is None or sides["ours"]["minutes_counted"] > (
        GOAL_MINUTES
    ):
        failures.append(f"ours took {sides['ours']['minutes_counted']} min (goal {GOAL_MINUTES})")
    if ratio > GOAL_RATIO:
        failures.append(f"ours/peer wall-clock {ratio:.2f} (goal <= {GOAL_RATIO})")
    return {
        "target": args.target, "cap_minutes": args.cap_minutes, "parallel": args.parallel,
        "seed": args.seed, "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
        "ours_settings": {**OURS, "hidden_sizes": list(OURS["hidden_sizes"])},  # type: ignore[call-overload]
        "sides": sides, "ratio_minutes_ours_over_peer": round(ratio, 3), "failures": failures,
    }  # fmt: skip


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"FetchPush, success >= {report['target']} on {report['eval_episodes']} episodes "
        f"(cap {report['cap_minutes']} min, {'parallel' if report['parallel'] else 'sequential'})",
        f"{'side':<6} {'env steps':>10} {'minutes':>8} {'steps/s':>8} {'final':>6}",
    ]
    for side, s in report["sides"].items():
        steps = s["env_steps_to_target"] or "miss"
        minutes = s["minutes_to_target"] or f">{report['cap_minutes']}"
        lines.append(f"{side:<6} {steps:>10} {minutes:>8} {s['env_steps_per_s']:>8} "
                     f"{s['final_success_rate']:>6}")  # fmt: skip
    lines.append(f"ours/peer minutes: {report['ratio_minutes_ours_over_peer']}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Success rate against training minutes, both sides, with the target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = {"ours": "twinbridge HER-TD3 + param noise", "peer": "SB3 SAC + HER"}
    for side, s in report["sides"].items():
        minutes = [p["train_s"] / 60 for p in s["curve"]]
        ax.plot(minutes, [p["success_rate"] for p in s["curve"]], marker=".", label=labels[side])
    ax.axhline(report["target"], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="training wall-clock (min)", ylabel="success rate (50 episodes)",
           title="FetchPush: time to learn", ylim=(-0.02, 1.02))  # fmt: skip
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap-minutes", type=float, default=90.0, help="per side")
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--parallel", action="store_true", help="run both sides at once")
    parser.add_argument("--png", type=Path, default=REPO / "out/bench/train_fetch_push.png")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a goal is missed")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cap_minutes <= 0 or args.eval_every <= 0 or args.eval_episodes <= 0:
        parser.error("--cap-minutes, --eval-every and --eval-episodes must be > 0")
    if args.eval_every % (OURS["num_envs"] * 50):  # type: ignore[operator]
        parser.error("--eval-every must be a multiple of 200 (4 envs x 50-step episodes)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_ours(args)
    try:
        report = summarize(run_sides(args), args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    plot(report, args.png)
    report["png"] = str(args.png)
    return emit(report, format_table(report), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
