"""How much of hand-reach is reachable at all: a kinematic upper bound on its success rate.

Run: `.venv/bin/python bench/hand_reach_ceiling.py` (`--seeds 100 --restarts 6`; ~1 min)

For each evaluation episode (reset with seed i, as `twinbridge rollout --seed 0` does) it
searches the joint ranges of the thumb and of the finger the goal moves for fingertip
positions within the task's threshold of the goal, by random-restart hill climbing on
forward kinematics alone: no dynamics, no contacts, no tendon coupling, any joint value
inside its range. The other fingers stay at their start pose, which is their goal. A goal
this search cannot reach is one no controller reaches, so the reachable share bounds every
policy's success rate from above (up to the search missing a narrow solution).
Prints the reachable count per goal type and the bound.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mujoco
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from sim.envs import make_task_env

FINGERS = ("FF", "MF", "RF", "LF")  # fingertip order of the goal; the thumb is index 4


def closest_reach(env, goal: np.ndarray, finger: str, restarts: int, rng) -> float:
    """Smallest fingertip-vector distance to `goal` found moving thumb + `finger` joints."""
    task, twin = env.unwrapped.task, env.unwrapped.twin
    model, data = twin.model, twin.data
    joints = [model.joint(i) for i in range(model.njnt)]
    moving = [j for j in joints if j.name.startswith("robot0:") and
              (f"{finger}J" in j.name or "THJ" in j.name)]  # fmt: skip
    qpos_index = np.array([model.jnt_qposadr[j.id] for j in moving])
    low, high = model.jnt_range[[j.id for j in moving]].T
    twin.set_state(task._initial_state)
    mujoco.mj_kinematics(model, data)
    start = data.qpos.copy()

    def distance(x: np.ndarray) -> float:
        data.qpos[:] = start
        data.qpos[qpos_index] = x
        mujoco.mj_kinematics(model, data)
        return float(np.linalg.norm(data.site_xpos[task._tip_sites].ravel() - goal))

    best = np.inf
    for restart in range(restarts):
        x = start[qpos_index].copy() if restart == 0 else rng.uniform(low, high)
        value = distance(x)
        for scale in (0.3, 0.1, 0.03):
            for _ in range(1000):
                candidate = np.clip(x + rng.normal(scale=scale, size=len(x)), low, high)
                candidate_value = distance(candidate)
                if candidate_value < value:
                    x, value = candidate, candidate_value
        best = min(best, value)
        if best < task.config.distance_threshold_m:
            break
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="episodes 0..N-1")
    parser.add_argument("--restarts", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    env = make_task_env("hand-reach", disable_env_checker=True)
    task = env.unwrapped.task
    threshold = task.config.distance_threshold_m
    rng = np.random.default_rng(0)
    reachable: dict[str, list[bool]] = {}
    for seed in tqdm(range(args.seeds), unit="goal"):
        obs, _ = env.reset(seed=seed)
        goal = obs["desired_goal"]
        moved = [i for i in range(4) if not np.allclose(goal.reshape(5, 3)[i],
                                                        task._initial_goal[i])]  # fmt: skip
        if not moved:
            reachable.setdefault("start pose", []).append(True)
            continue
        finger = FINGERS[moved[0]]
        best = closest_reach(env, goal, finger, args.restarts, rng)
        reachable.setdefault(f"thumb+{finger}", []).append(best < threshold)
    bound = sum(sum(v) for v in reachable.values()) / args.seeds
    report = {"per_goal_type": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(reachable.items())},
              "success_upper_bound": bound, "threshold_m": threshold}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for kind, count in report["per_goal_type"].items():
            print(f"{kind:<12} reachable {count}")
        print(f"hand-reach success upper bound over seeds 0..{args.seeds - 1}: {bound:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
