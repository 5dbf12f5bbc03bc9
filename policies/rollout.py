"""`twinbridge rollout`: pure-sim evaluation of a policy on a task, with an optional MP4.

Run: `twinbridge rollout --task fetch-push --episodes 10 --policy scripted --json --video out.mp4`

Prints `{"task", "episodes", "success_rate", "mean_return", "steps_per_s"}`; success is
`info["is_success"]` at an episode's last step, as in Gymnasium-Robotics' evaluations.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from sim.envs import make_task_env
from sim.errors import TwinbridgeError, UnknownNameError
from sim.randomization.config import RandomizationConfig
from sim.tasks import DEFAULT_TASK, TASKS, get_task_spec


class Policy(Protocol):
    """What rollout needs of a policy: an action for a dict observation, and episode resets."""

    def reset(self) -> None: ...

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions from the action space, seeded."""

    def __init__(self, action_space: gym.spaces.Box, seed: int):
        self._space = action_space
        self._space.seed(seed)

    def reset(self) -> None:
        """Random actions keep no state."""

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return self._space.sample()


def _random(task: str, env: gym.Env, seed: int) -> Policy:
    return RandomPolicy(env.action_space, seed)  # type: ignore[arg-type]


def _scripted(task: str, env: gym.Env, seed: int) -> Policy:
    from sim.scripted import ScriptedFetchPolicy

    return ScriptedFetchPolicy(task)


def _onnx(path: str, task: str) -> Policy:
    """An exported policy checked against its model card (the sibling .json) and `task`."""
    from policies.runtime import PolicyRunner

    return PolicyRunner.load(Path(path), expected_task=task)


POLICIES: dict[str, Callable[[str, gym.Env, int], Policy]] = {
    "random": _random,
    "scripted": _scripted,
}


def make_policy(name: str, task: str, env: gym.Env, seed: int) -> Policy:
    """A policy by registered name, or an ONNX policy from a `.onnx` file path."""
    if name.endswith(".onnx"):
        return _onnx(name, task)
    if name not in POLICIES:
        raise UnknownNameError("policy", name, POLICIES, "or the path of a policy .onnx file")
    return POLICIES[name](task, env, seed)


@dataclass
class RolloutResult:
    """The printed summary of a rollout."""

    task: str
    episodes: int
    success_rate: float
    mean_return: float
    steps_per_s: float
    policy: str = ""
    seed: int = 0
    video: str | None = None
    per_episode_success: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class RolloutConfig:
    """Options of one rollout (see `twinbridge rollout --help`)."""

    task: str = DEFAULT_TASK
    episodes: int = 10
    policy: str = "random"
    seed: int = 0
    video: Path | None = None
    video_episodes: int = 3
    video_size_px: int = 480
    progress: bool = True
    # A randomization YAML (or config): every episode on a twin perturbed as it says.
    randomization: Path | RandomizationConfig | None = None

    def __post_init__(self) -> None:
        get_task_spec(self.task)
        if self.episodes < 1:
            raise TwinbridgeError(f"--episodes must be >= 1, got {self.episodes}")
        if self.video is not None and self.video.suffix.lower() != ".mp4":
            raise TwinbridgeError(f"--video must name an .mp4 file, got {self.video}")


def rollout(config: RolloutConfig) -> RolloutResult:
    """Run `config.episodes` seeded episodes; episode i uses seed `config.seed + i`."""
    extra = {"randomization": config.randomization} if config.randomization else {}
    env = make_task_env(config.task, render_mode="rgb_array" if config.video else None, **extra)
    policy = make_policy(config.policy, config.task, env, config.seed)
    video = _Video(env, config) if config.video is not None else None
    returns, successes, steps, stepping_s = [], [], 0, 0.0
    episodes = tqdm(range(config.episodes), desc=config.task, disable=not config.progress)
    try:
        for episode in episodes:
            record = video if video is not None and episode < config.video_episodes else None
            ret, success, n, seconds = _episode(env, policy, config.seed + episode, record)
            returns.append(ret)
            successes.append(success)
            steps += n
            stepping_s += seconds
            episodes.set_postfix(success=f"{np.mean(successes):.2f}")
    finally:
        if video is not None:
            video.close()
        env.close()
    return RolloutResult(
        task=config.task,
        episodes=config.episodes,
        success_rate=float(np.mean(successes)),
        mean_return=float(np.mean(returns)),
        steps_per_s=steps / stepping_s if stepping_s > 0 else 0.0,
        policy=config.policy,
        seed=config.seed,
        video=str(config.video) if config.video else None,
        per_episode_success=successes,
    )


class _Video:
    """The rollout's MP4: each frame rendered from the task's video camera with the
    episode's state written on it (sim/overlay.py), streamed to the file."""

    def __init__(self, env: gym.Env, config: RolloutConfig):
        from sim.render import open_mp4

        self._env, self._config = env.unwrapped, config
        self._steps = env.spec.max_episode_steps if env.spec is not None else None
        self._writer = open_mp4(config.video, fps=env.metadata["render_fps"])  # type: ignore[arg-type]
        self.frames = 0

    def capture(self, seed: int, step: int) -> None:
        from sim.overlay import Overlay, draw

        env: Any = self._env
        size = self._config.video_size_px
        frame = env.twin.render(env.task.video_camera, size, size)
        overlay = Overlay.measure(
            self._config.task, env.task, env.twin, env.goal,
            episode=seed - self._config.seed, step=step, steps=self._steps, seed=seed,
        )  # fmt: skip
        self._writer.append_data(draw(frame, overlay))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()


def _episode(
    env: gym.Env, policy: Policy, seed: int, video: _Video | None
) -> tuple[float, bool, int, float]:
    """One episode; with `video`, a frame of each state it passes through, the last too."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    ret, steps, seconds, done = 0.0, 0, 0.0, False
    while not done:
        if video is not None:
            video.capture(seed, steps)
        action = policy(obs)
        start = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(action)
        seconds += time.perf_counter() - start
        ret += float(reward)
        steps += 1
        done = terminated or truncated
    if video is not None:
        video.capture(seed, steps)
    return ret, bool(info["is_success"]), steps, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `twinbridge rollout`."""
    parser.add_argument(
        "--task", default=DEFAULT_TASK, help=f"task name, one of: {', '.join(TASKS)}"
    )
    parser.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument(
        "--policy",
        default="random",
        help="'random', 'scripted' (hand-written Fetch controller) or a policy .onnx "
        "(its model card, the .json beside it, must name this task)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of episode 0; episode i uses seed+i"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--video", type=Path, help="write an MP4 of the first episodes here")
    parser.add_argument(
        "--video-episodes", type=int, default=3, help="episodes in the video (default 3)"
    )
    parser.add_argument(
        "--randomization",
        type=Path,
        help="randomization YAML (sim/randomization/configs/): every episode runs on a twin "
        "perturbed as it says, the same perturbation for the same seed",
    )


def run(args: argparse.Namespace) -> int:
    """Run the rollout and print its summary."""
    config = RolloutConfig(
        task=args.task,
        episodes=args.episodes,
        policy=args.policy,
        seed=args.seed,
        video=args.video,
        video_episodes=args.video_episodes,
        randomization=args.randomization,
    )
    result = rollout(config)
    summary = {k: v for k, v in asdict(result).items() if k != "per_episode_success"}
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>14}: {value}")
    return 0
