"""Lockstep envs for fixed-length episodes: in this process, or in `SubprocVectorEnv` workers.

Training and evaluation both reset every env with explicit seeds, then step exactly T times;
no autoreset is involved, so the step-T observation (the final one HER needs) is simply the
last one returned, and a run is a deterministic function of the seeds. With
`privileged=True` the batched observations also carry `privileged_state` (see `sim.envs`),
for asymmetric critics. With `randomization` every env randomizes its physics before each
reset (`sim.randomization`); `reset(seeds, options)` gives env i its own reset options
(an ADR plan's values), wherever the env runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

import gymnasium as gym
import numpy as np

from sim.envs import make_task_env

if TYPE_CHECKING:
    from sim.randomization.config import RandomizationConfig

Options = list[dict[str, Any] | None] | None  # reset options per env, or None


class LockstepEnvs(Protocol):
    """What the trainer needs: seeded batch reset, batch step, batch reward, spaces."""

    num_envs: int
    single_observation_space: gym.spaces.Dict
    single_action_space: gym.spaces.Box

    def reset(self, seeds: list[int], options: Options = None) -> dict[str, np.ndarray]: ...

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]: ...

    def compute_reward(self, achieved: np.ndarray, desired: np.ndarray, info: Any) -> Any: ...

    def close(self) -> None: ...


class LocalEnvs:
    """`num_envs` envs stepped one after another in this process (tests, tiny runs)."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        privileged: bool = False,
        randomization: RandomizationConfig | None = None,
    ):
        self.envs = [
            make_task_env(
                task, disable_env_checker=True, privileged_state=privileged,
                randomization=randomization,
            )
            for _ in range(num_envs)
        ]  # fmt: skip
        self.num_envs = num_envs
        self.single_observation_space = cast(gym.spaces.Dict, self.envs[0].observation_space)
        self.single_action_space = cast(gym.spaces.Box, self.envs[0].action_space)

    def reset(self, seeds: list[int], options: Options = None) -> dict[str, np.ndarray]:
        """Reset env i with seed `seeds[i]` (and `options[i]`); batched dict observation."""
        per_env = options or [None] * len(self.envs)
        return _stack([
            env.reset(seed=int(s), options=o)[0]
            for env, s, o in zip(self.envs, seeds, per_env, strict=True)
        ])  # fmt: skip

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Step every env; batched observation and `is_success` flags."""
        results = [env.step(a) for env, a in zip(self.envs, actions, strict=True)]
        success = np.array([r[4]["is_success"] for r in results], dtype=bool)
        return _stack([r[0] for r in results]), success

    def compute_reward(self, achieved: np.ndarray, desired: np.ndarray, info: Any) -> Any:
        """The task's batch reward (any env's: they are identical)."""
        return self.envs[0].unwrapped.compute_reward(achieved, desired, info)  # type: ignore[attr-defined]

    def close(self) -> None:
        for env in self.envs:
            env.close()


class WorkerEnvs:
    """The same lockstep interface over `sim.vector.SubprocVectorEnv` (autoreset disabled)."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        num_workers: int,
        privileged: bool = False,
        randomization: RandomizationConfig | None = None,
    ):
        from gymnasium.vector import AutoresetMode

        from sim.vector import SubprocVectorEnv

        kwargs: dict[str, Any] = {"privileged_state": privileged}
        if randomization is not None:
            kwargs["randomization"] = randomization
        self.vector = SubprocVectorEnv(
            task, num_envs, num_workers, autoreset_mode=AutoresetMode.DISABLED,
            env_kwargs=kwargs,
        )  # fmt: skip
        self.num_envs = num_envs
        self.single_observation_space = cast(gym.spaces.Dict, self.vector.single_observation_space)
        self.single_action_space = cast(gym.spaces.Box, self.vector.single_action_space)

    def reset(self, seeds: list[int], options: Options = None) -> dict[str, np.ndarray]:
        """Reset every sub-env with its own seed (and its own options)."""
        per_env = {"per_env": options} if options else None
        obs = self.vector.reset(seed=[int(s) for s in seeds], options=per_env)[0]
        return obs  # type: ignore[return-value]

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Step every sub-env; batched observation and `is_success` flags."""
        obs, _, _, _, info = self.vector.step(actions)
        return obs, np.asarray(info["is_success"], dtype=bool)

    def compute_reward(self, achieved: np.ndarray, desired: np.ndarray, info: Any) -> Any:
        """The vector env's in-process passthrough to the task's batch reward."""
        return self.vector.compute_reward(achieved, desired, info)

    def close(self) -> None:
        self.vector.close()


def make_lockstep_envs(
    task: str,
    num_envs: int,
    num_workers: int,
    privileged: bool = False,
    randomization: RandomizationConfig | None = None,
) -> LockstepEnvs:
    """Worker processes when `num_workers` > 0, else envs in this process."""
    if num_workers > 0:
        return WorkerEnvs(task, num_envs, num_workers, privileged, randomization)
    return LocalEnvs(task, num_envs, privileged, randomization)


def _stack(observations: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
