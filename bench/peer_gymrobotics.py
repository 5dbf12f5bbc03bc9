"""Time Gymnasium-Robotics envs; runs INSIDE the peer venv (mujoco 3.3.7), never imports `sim`.

Run: `bench/.peer-venv/bin/python bench/peer_gymrobotics.py --env-id FetchPush-v4 --steps 500`

`bench/env_speed.py` creates that venv and drives this script with `--serve`: one JSON request
per stdin line (``{"env_id": ..., "steps": ..., "seed": ...}``), one JSON reply per stdout
line, envs kept alive between requests so each round times stepping, not construction.
The timed region matches ours exactly: the first reset, then `steps` random actions
(pre-drawn, so sampling is not timed) with a reset after every truncation but the last.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from typing import Any


def _load_gymnasium_robotics() -> Any:
    import gymnasium
    import gymnasium_robotics

    gymnasium.register_envs(gymnasium_robotics)
    return gymnasium


def measure(gym: Any, envs: dict[str, Any], env_id: str, steps: int, seed: int) -> dict[str, Any]:
    """Env steps per second of `env_id` over `steps` random steps, resets included."""
    import numpy as np

    if env_id not in envs:
        envs[env_id] = gym.make(env_id, disable_env_checker=True)
    env = envs[env_id]
    space = env.action_space
    actions = np.random.default_rng(seed).uniform(space.low, space.high, (steps, *space.shape))
    actions = actions.astype(space.dtype)
    resets = 1
    gc.collect()
    start = time.perf_counter()
    env.reset(seed=seed)
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if (terminated or truncated) and i + 1 < steps:
            env.reset()
            resets += 1
    seconds = time.perf_counter() - start
    return {
        "env_id": env_id,
        "steps": steps,
        "resets": resets,
        "seconds": seconds,
        "env_steps_per_s": steps / seconds,
    }


def versions() -> dict[str, str]:
    """Versions of the peer stack, for the report."""
    from importlib.metadata import version

    names = ("mujoco", "gymnasium", "gymnasium-robotics", "numpy")
    return {name: version(name) for name in names} | {"python": sys.version.split()[0]}


def serve(gym: Any) -> None:
    """Answer JSON-line requests until stdin closes; errors are replies, not crashes."""
    protocol = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol stream
    envs: dict[str, Any] = {}
    _reply(protocol, {"ready": True, "versions": versions()})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = measure(
                gym, envs, request["env_id"], int(request["steps"]), int(request["seed"])
            )
        except Exception as e:
            reply = {"error": f"{type(e).__name__}: {e}", "env_id": request.get("env_id")}
        _reply(protocol, reply)


def _reply(stream: Any, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="JSON-lines server for env_speed")
    parser.add_argument("--env-id", default="FetchPush-v4")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    gym = _load_gymnasium_robotics()
    if args.serve:
        serve(gym)
        return 0
    result = measure(gym, {}, args.env_id, args.steps, args.seed)
    print(json.dumps(result | {"versions": versions()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
