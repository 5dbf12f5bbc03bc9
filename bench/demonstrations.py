"""Learning from demonstrations, measured: env steps to 90 % success on fetch-pick-and-place.

Run: `.venv/bin/python bench/demonstrations.py --demos out/demos-pnp` (both runs, one after
the other, ~1-2 h each on one core; `--side baseline` or `--side demos` runs one of them).
Demonstrations generated in-process for development (not recorded; see below):
`.venv/bin/python bench/demonstrations.py --generate-demos 100 --out out/demos-generated`

Two HER-TD3 runs with the same hyperparameters and seed, without and with demonstrations
(Nair et al. 2018: demo buffer, Q-filtered behaviour cloning; `policies.training.
demonstrations`). HER-TD3 with adaptive parameter noise, gamma 0.95, 256x256, 4 envs and
0.5 updates per env step are the settings of this repository's only measured pick-and-place
run (runs/pnp-td3-param: 0.75 success after 1.2 M env steps) and of the zoo's fetch-push
policy; TD3 is also the closest of our learners to the paper's DDPG. Every `--eval-every`
env steps the deterministic policy is evaluated on `--eval-episodes` fixed seeded episodes
(seeds 1,000,000 + i). Reports env steps to the first evaluation >= `--target` for each run,
or "not reached within N env steps, best X %", writes bench/results/demonstrations.json and
.png, and prints a markdown table with the command.

Each run lives in `--runs`/baseline and `--runs`/demos-<sha256 prefix of the dataset>, as a
normal `twinbridge train` run directory (progress.csv, checkpoint/): a rerun resumes an
unfinished run bit-identically and reuses a finished one, so swapping `--demos` for another
dataset (e.g. the recorded, exported 100 demonstrations) is all it takes.

`--generate-demos N --out DIR` runs the scripted operator (`sim.scripted.
ScriptedFetchPolicy`) on the task env in this process and writes its first N successful
episodes with `hardware.recording.dataset.write_dataset`, labelled as generated in-process in
the dataset's `source`: a stand-in until demonstrations are recorded by teleoperation and
exported from bags (`twinbridge bag export FILE.mcap --out DIR`).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout
sys.path.insert(0, str(BENCH_DIR))  # the shared bench/report.py

from report import emit  # noqa: E402

TASK = "fetch-pick-and-place"
SETTINGS: dict[str, Any] = {  # both runs; runs/pnp-td3-param's settings (see docstring)
    "task": TASK,
    "algo": "her-td3",
    "exploration": "parameter",
    "gamma": 0.95,
    "hidden_sizes": (256, 256),
    "num_envs": 4,
    "updates_per_env_step": 0.5,
    "torch_threads": 1,
}
GENERATED_SOURCE = (
    "generated in-process by bench/demonstrations.py --generate-demos (scripted operator "
    "sim.scripted.ScriptedFetchPolicy on the twin env); not recorded by teleoperation"
)
DEMO_SEED = 500_000  # first reset seed of generated demos (eval episodes use 1,000,000 + i)


# -- development demonstrations -----------------------------------------------------------
def generate_demos(count: int, out: Path, first_seed: int = DEMO_SEED) -> dict[str, Any]:
    """The first `count` successful scripted episodes from `first_seed` on, written to `out`."""
    from tqdm import tqdm

    from hardware.recording.dataset import write_dataset
    from policies.observation import task_info
    from sim.envs import make_task_env
    from sim.scripted import ScriptedFetchPolicy

    env = make_task_env(TASK, disable_env_checker=True)
    policy = ScriptedFetchPolicy(TASK)
    info = task_info(TASK)
    tried: list[int] = []

    def episodes() -> Any:
        seed = first_seed
        with tqdm(total=count, desc="generate demos", unit="episode") as bar:
            while bar.n < count:
                episode = scripted_episode(env, policy, seed)
                tried.append(seed)
                seed += 1
                if bool(episode["success"]):
                    bar.update(1)
                    yield episode

    meta = {"robot": info.robot, "task": TASK, "control_rate_hz": info.control_rate_hz,
            "source": GENERATED_SOURCE, "generated": True}  # fmt: skip
    try:
        path = write_dataset(out, episodes(), meta)
    finally:
        env.close()
    return {"meta": str(path), "episodes": count, "attempts": len(tried),
            "seeds": [first_seed, tried[-1]]}  # fmt: skip


def scripted_episode(env: Any, policy: Any, seed: int) -> dict[str, Any]:
    """One episode of the scripted operator, with the arrays of `hardware.recording.dataset`."""
    import numpy as np

    from sim.robots.fetch.builder import (
        ARM_ACTUATORS,
        ARM_JOINTS,
        FINGER_JOINTS,
        GRIPPER_ACTUATOR,
    )

    twin = env.unwrapped.twin
    joints, actuators = (*ARM_JOINTS, *FINGER_JOINTS), (*ARM_ACTUATORS, GRIPPER_ACTUATOR)
    rows: dict[str, list[Any]] = {k: [] for k in ("observation", "achieved_goal",
                                                  "desired_goal", "action", "stamp_ns",
                                                  "joint_position", "joint_velocity",
                                                  "command")}  # fmt: skip

    def state(obs: dict[str, np.ndarray]) -> None:
        for key in ("observation", "achieved_goal", "desired_goal"):
            rows[key].append(obs[key].copy())
        rows["stamp_ns"].append(round(twin.time * 1e9))
        rows["joint_position"].append([float(twin.joint(j).qpos[0]) for j in joints])
        rows["joint_velocity"].append([float(twin.joint(j).qvel[0]) for j in joints])

    obs, _ = env.reset(seed=seed)
    policy.reset()
    state(obs)
    info: dict[str, Any] = {}
    for _ in range(env.spec.max_episode_steps):
        action = policy(obs)
        obs, _, _, _, info = env.step(action)
        rows["action"].append(action)
        rows["command"].append([float(twin.actuator(a).ctrl[0]) for a in actuators])
        state(obs)
    episode: dict[str, Any] = {k: np.asarray(v) for k, v in rows.items()}
    episode["command_applied"] = episode["command"].copy()  # no safety layer in-process
    episode["success"] = bool(info.get("is_success", 0.0) > 0.5)
    episode["seed"] = seed
    return episode


# -- the measured runs --------------------------------------------------------------------
def run_config(args: argparse.Namespace, demos: str) -> Any:
    """The `HerSacConfig` of one side: shared settings, plus the dataset for the demo side."""
    from policies.training.her.config import HerSacConfig

    return HerSacConfig(**{
        **SETTINGS, "seed": args.seed, "total_env_steps": args.total_env_steps,
        "epoch_env_steps": args.eval_every, "eval_episodes": args.eval_episodes,
        "warmup_env_steps": args.warmup_env_steps, "demonstrations_dir": demos,
        "progress": not args.no_progress,
    })  # fmt: skip


def side_dirs(args: argparse.Namespace) -> dict[str, tuple[Path, str]]:
    """Run directory and demonstrations dir of each side (the demo side needs --demos)."""
    from hardware.recording.dataset import load_dataset

    out: dict[str, tuple[Path, str]] = {"baseline": (args.runs / "baseline", "")}
    if args.demos is not None:
        data = load_dataset(args.demos, task=TASK)
        out["demos"] = (args.runs / f"demos-{data.sha256[:8]}", str(args.demos.resolve()))
    return out


def train_side(config: Any, run_dir: Path) -> None:
    """Train into `run_dir`: fresh, resumed from its checkpoint, or not at all if done."""
    from policies.training.checkpoint import load_checkpoint
    from policies.training.her.config import HerSacConfig
    from policies.training.her.trainer import HerSacTrainer
    from policies.training.loop import run_training

    checkpoint = run_dir / "checkpoint"
    if (checkpoint / "checkpoint.json").exists():
        saved = load_checkpoint(checkpoint)
        _check_same_run(HerSacConfig.from_dict(saved.config), config, run_dir)
        if saved.counters["env_steps"] >= config.total_env_steps:
            return
        trainer = HerSacTrainer.resume(checkpoint, total_env_steps=config.total_env_steps,
                                       progress=config.progress)  # fmt: skip
    else:
        trainer = HerSacTrainer(config)
    try:
        run_training(trainer, run_dir)
    finally:
        trainer.close()


def _check_same_run(saved: Any, wanted: Any, run_dir: Path) -> None:
    import dataclasses

    free = ("total_env_steps", "progress", "num_workers")
    differ = [f.name for f in dataclasses.fields(wanted) if f.name not in free
              and getattr(saved, f.name) != getattr(wanted, f.name)]  # fmt: skip
    if differ:
        raise SystemExit(f"error: {run_dir} holds a run with other options {differ}; "
                         "choose another --runs directory")  # fmt: skip


def curve(run_dir: Path) -> list[dict[str, float]]:
    """Evaluations of a run (one per env-step count; a re-logged epoch keeps its last row)."""
    path = run_dir / "progress.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = {int(r["env_steps"]): r for r in csv.DictReader(f)}
    return [{"env_steps": s, "success_rate": float(r["success_rate"]),
             "wall_time_s": float(r["wall_time_s"])} for s, r in sorted(rows.items())]  # fmt: skip


def summarize_side(points: list[dict[str, float]], target: float, limit: int) -> dict[str, Any]:
    """Env steps to the first evaluation >= target, best and final success."""
    within = [p for p in points if p["env_steps"] <= limit]
    hit = next((p for p in within if p["success_rate"] >= target), None)
    best = max(within, key=lambda p: (p["success_rate"], -p["env_steps"]), default=None)
    return {
        "env_steps_to_target": int(hit["env_steps"]) if hit else None,
        "env_steps_trained": int(within[-1]["env_steps"]) if within else 0,
        "best_success_rate": best["success_rate"] if best else None,
        "best_at_env_steps": int(best["env_steps"]) if best else None,
        "final_success_rate": within[-1]["success_rate"] if within else None,
        "wall_minutes": round(within[-1]["wall_time_s"] / 60, 1) if within else None,
        "curve": within,
    }


def report(args: argparse.Namespace, dirs: dict[str, tuple[Path, str]]) -> dict[str, Any]:
    sides: dict[str, Any] = {}
    for side, (run_dir, demos) in dirs.items():
        if not (run_dir / "progress.csv").exists() and args.side not in (side, "both"):
            continue  # not run yet, and not asked for
        sides[side] = {
            "run_dir": str(run_dir),
            "demonstrations_dir": demos,
            **summarize_side(curve(run_dir), args.target, args.total_env_steps),
        }
        if demos:
            sides[side]["demonstrations"] = _dataset_summary(demos)
    failures = [f"{side}: run incomplete ({s['env_steps_trained']} of {args.total_env_steps} "
                "env steps)" for side, s in sides.items()
                if s["env_steps_trained"] < args.total_env_steps]  # fmt: skip
    return {
        "task": TASK, "target": args.target, "total_env_steps": args.total_env_steps,
        "seed": args.seed, "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
        "settings": {**SETTINGS, "hidden_sizes": list(SETTINGS["hidden_sizes"])},
        "command": command_line(args), "sides": sides, "failures": failures,
    }  # fmt: skip


def _dataset_summary(directory: str) -> dict[str, Any]:
    from hardware.recording.dataset import load_dataset

    data = load_dataset(directory)
    return {"source": data.meta["source"], "episodes": len(data.episodes),
            "successful": len(data.successful), "sha256": data.sha256,
            "generated_in_process": bool(data.meta.get("generated", False))}  # fmt: skip


def command_line(args: argparse.Namespace) -> str:
    words = [".venv/bin/python", "bench/demonstrations.py", "--side", args.side,
             "--total-env-steps", str(args.total_env_steps), "--seed", str(args.seed),
             "--runs", str(args.runs)]  # fmt: skip
    if args.side != "baseline":
        words += ["--demos", str(args.demos)]
    return shlex.join(words)


def result_text(side: dict[str, Any], limit: int) -> str:
    if side["env_steps_to_target"] is not None:
        return f"{side['env_steps_to_target']:,}"
    best = side["best_success_rate"]
    best_text = f", best {best:.0%} at {side['best_at_env_steps']:,}" if best is not None else ""
    return f"not reached within {side['env_steps_trained']:,}{best_text}"


def format_table(rep: dict[str, Any]) -> str:
    lines = [
        f"{TASK}, HER-TD3, seed {rep['seed']}: env steps to >= {rep['target']:.0%} success "
        f"({rep['eval_episodes']} fixed seeded episodes every {rep['eval_every']:,} env steps)",
        "",
        "| run | demonstrations | env steps to target | final success | env steps | wall min |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in rep["sides"].items():
        demos = s.get("demonstrations")
        what = "none" if demos is None else (
            f"{demos['successful']} {'generated' if demos['generated_in_process'] else 'recorded'}"
            f" ({s['demonstrations_dir']})")  # fmt: skip
        final = "-" if s["final_success_rate"] is None else f"{s['final_success_rate']:.0%}"
        lines.append(f"| {name} | {what} | {result_text(s, rep['total_env_steps'])} | {final} "
                     f"| {s['env_steps_trained']:,} | {s['wall_minutes']} |")  # fmt: skip
    lines += ["", f"command: `{rep['command']}`"]
    return "\n".join(lines)


def plot(rep: dict[str, Any], path: Path) -> None:
    """Success rate against env steps, one line per run, with the target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, s in rep["sides"].items():
        points = s["curve"]
        label = name if "demonstrations" not in s else f"{s['demonstrations']['successful']} demos"
        ax.plot([p["env_steps"] for p in points], [p["success_rate"] for p in points],
                marker=".", label=label)  # fmt: skip
    ax.axhline(rep["target"], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="env steps", ylabel=f"success rate ({rep['eval_episodes']} episodes)",
           title=f"{TASK}: HER-TD3 with and without demos", ylim=(-0.02, 1.02))  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate-demos", type=int, metavar="N",
                        help="write N scripted (in-process, not recorded) demos")  # fmt: skip
    parser.add_argument("--out", type=Path, help="dataset directory for --generate-demos")
    parser.add_argument("--demo-seed", type=int, default=DEMO_SEED,
                        help="first reset seed of generated demos")  # fmt: skip
    parser.add_argument("--demos", type=Path, help="demonstration dataset of the demo run")
    parser.add_argument("--side", choices=("both", "baseline", "demos"), default="both")
    parser.add_argument("--runs", type=Path, default=REPO / "runs/demos-bench")
    parser.add_argument("--total-env-steps", type=int, default=500_000, help="each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--warmup-env-steps", type=int, default=1000)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--report-only", action="store_true", help="summarize, do not train")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results/demonstrations.json")
    parser.add_argument("--png", type=Path, default=BENCH_DIR / "results/demonstrations.png")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a run is short")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = parser.parse_args(argv)
    if args.generate_demos is not None:
        if args.generate_demos < 1 or args.out is None:
            parser.error("--generate-demos needs N >= 1 and --out DIR")
    elif args.side != "baseline" and args.demos is None:
        parser.error("--demos DIR is needed unless --side baseline")
    from sim.tasks import get_task_spec

    batch = SETTINGS["num_envs"] * get_task_spec(TASK).max_episode_steps
    if args.eval_every % batch:
        parser.error(
            f"--eval-every must be a multiple of {batch} ({SETTINGS['num_envs']} envs x "
            f"{batch // SETTINGS['num_envs']}-step episodes)"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generate_demos is not None:
        print(json.dumps(generate_demos(args.generate_demos, args.out, args.demo_seed)))
        return 0
    from hardware.recording.dataset import DemonstrationError

    try:
        dirs = side_dirs(args)
    except DemonstrationError as e:
        print(f"error: --demos: {e}", file=sys.stderr)
        return 2
    if not args.report_only:
        for side, (run_dir, demos) in dirs.items():
            if args.side in (side, "both"):
                train_side(run_config(args, demos), run_dir)
    rep = report(args, dirs)
    plot(rep, args.png)
    rep["png"] = str(args.png)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(rep, indent=2) + "\n")
    return emit(rep, format_table(rep), args.json, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
