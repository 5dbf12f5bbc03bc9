"""Train stable-baselines3 SAC + HerReplayBuffer on Gymnasium-Robotics FetchPush; runs INSIDE
the SB3 peer venv (mujoco 3.3.7), never imports `sim` or `policies`.

Run: `bench/.peer-sb3-venv/bin/python bench/peer_sb3_her.py --cap-minutes 5`
(`bench/train_fetch_push.py` creates that venv and drives this script.)

Prints one JSON line per evaluation on stdout: {"env_steps", "train_s", "success_rate"}.
`train_s` is wall-clock spent in `model.learn` (collection + updates), evaluation excluded,
exactly as the driver times our trainer. Stops at the first evaluation at or above
`--target`, or when `train_s` passes `--cap-minutes`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def make_model(env: Any, seed: int) -> Any:
    """SAC + HER with the HER/rl-zoo Fetch settings, networks sized like ours (256x256)."""
    from stable_baselines3 import SAC, HerReplayBuffer

    return SAC(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        buffer_size=1_000_000,
        batch_size=256,
        gamma=0.95,
        tau=0.05,
        learning_rate=1e-3,
        learning_starts=1000,
        train_freq=1,
        gradient_steps=1,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        verbose=0,
        device="cpu",
    )


def evaluate(model: Any, env: Any, episodes: int, seed: int) -> float:
    """Success rate of the deterministic policy on `episodes` seeded episodes."""
    successes = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        info: dict[str, Any] = {}
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes += bool(info.get("is_success", False))
    return successes / episodes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="FetchPush-v4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap-minutes", type=float, default=90.0)
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--eval-seed", type=int, default=1_000_000)
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args()

    import gymnasium
    import gymnasium_robotics
    import torch

    torch.set_num_threads(1)
    gymnasium.register_envs(gymnasium_robotics)
    env = gymnasium.make(args.env_id)
    eval_env = gymnasium.make(args.env_id)
    model = make_model(env, args.seed)
    train_s, steps = 0.0, 0
    while train_s < args.cap_minutes * 60:
        start = time.perf_counter()
        model.learn(args.eval_every, reset_num_timesteps=False)
        train_s += time.perf_counter() - start
        steps = int(model.num_timesteps)
        success = evaluate(model, eval_env, args.eval_episodes, args.eval_seed)
        print(json.dumps({"env_steps": steps, "train_s": train_s, "success_rate": success}),
              flush=True)  # fmt: skip
        if success >= args.target:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
