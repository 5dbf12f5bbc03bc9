"""What every goal-conditioned task provides to `TwinGoalEnv`: the Task half of Physics/Task.

A task owns reset, action mapping, observation, goals, reward and success; it never steps
physics itself (the env does, `frame_skip` substeps per control step).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from gymnasium import spaces

from sim.errors import StateError
from sim.twin import Twin


class Task(ABC):
    """A goal-conditioned task on one robot/scene.

    Subclasses set `robot`, `scene`, `frame_skip` and `max_episode_steps`, and implement the
    abstract methods. `compute_reward` and `is_success` must accept batches: arrays of shape
    (..., goal_dim), returning shape (...).
    """

    robot: str
    scene: str
    frame_skip: int = 20  # 20 x 2 ms = 25 Hz control, as in Gymnasium-Robotics
    max_episode_steps: int = 50
    video_camera: str | int = -1  # camera for rollout videos (-1: MuJoCo's free camera)
    # True when compute_reward is exactly 0 on success and -1 otherwise, so the env can
    # take a step's reward from its success test instead of computing both.
    sparse_reward: bool = True
    goal_unit: str = "mixed"  # unit of achieved/desired goal entries, for model cards

    def bind(self, twin: Twin) -> None:  # noqa: B027 - optional hook
        """Resolve names to indices once, after the twin is loaded (keeps `step` cheap)."""

    def restart_targets(self, twin: Twin) -> None:  # noqa: B027 - optional hook
        """A new episode starts from the robot's measured pose (the policy node's mirror):
        a task that keeps targets between steps restarts them from there."""

    @property
    @abstractmethod
    def action_space(self) -> spaces.Box:
        """Normalized action space (usually [-1, 1]^n)."""

    @property
    @abstractmethod
    def goal_dim(self) -> int:
        """Length of achieved and desired goal vectors."""

    @abstractmethod
    def reset(self, twin: Twin, rng: np.random.Generator) -> np.ndarray:
        """Put the twin in a randomized initial state and return a sampled desired goal."""

    @abstractmethod
    def apply_action(self, twin: Twin, action: np.ndarray) -> None:
        """Turn a (finite, in-space) action into actuator controls on the twin."""

    @abstractmethod
    def observation(self, twin: Twin) -> np.ndarray:
        """The proprioceptive + object observation vector (float64)."""

    @abstractmethod
    def achieved_goal(self, twin: Twin) -> np.ndarray:
        """The goal-space quantity the robot controls (e.g. object position)."""

    @abstractmethod
    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """Batch success test, boolean array of shape achieved.shape[:-1]."""

    def compute_reward(
        self, achieved: np.ndarray, desired: np.ndarray, info: Any = None
    ) -> np.ndarray | float:
        """Sparse reward: 0 on success, -1 otherwise (batch-capable)."""
        reward = -(~self.is_success(achieved, desired)).astype(np.float64)
        return float(reward) if np.ndim(reward) == 0 else reward

    def observation_fields(self, twin: Twin | None = None) -> list[tuple[str, int, str]]:
        """(name, size, unit) of each observation slice, in order, for model cards.

        Tasks override this with their layout (it needs no twin). The default is one field
        of unknown unit, measured on a bound `twin`. Never called while stepping.
        """
        if twin is None:
            raise StateError(
                f"{type(self).__name__} does not declare observation_fields(); "
                "pass a twin it is bound to, or override the method"
            )
        return [("observation", len(self.observation(twin)), "mixed")]

    def action_fields(self, twin: Twin) -> list[tuple[str, str]]:
        """(name, unit) of each action component, for model cards: by default the twin's
        actuators in order, an action of 1.0 being the top of the actuator's normalized range.
        """
        return [(name, "normalized ctrlrange") for name in twin.actuator_names]

    def extra_info(self, twin: Twin) -> dict[str, Any]:
        """Per-step diagnostic additions to `info` (cheap; called every step)."""
        return {}

    # -- for training only: never part of what a deployed policy observes --------------------
    def privileged_state(self, twin: Twin) -> np.ndarray:
        """Simulator state a real robot cannot measure, for asymmetric critics (float64).

        Default: every joint's position and velocity, the actuator forces and the joint-space
        constraint (contact and limit) forces. Forces are those of the last physics step.
        """
        data = twin.data
        return np.concatenate((data.qpos, data.qvel, data.actuator_force, data.qfrc_constraint))

    def goal_distances(self, achieved: np.ndarray, desired: np.ndarray) -> dict[str, Any]:
        """Named distances to the goal (batch-capable; the unit ends each name), the progress
        measure of shaped training rewards. Default: the Euclidean norm, as `position_m`
        (every positional goal here is in metres); tasks with other goals override it."""
        achieved, desired = np.asarray(achieved), np.asarray(desired)
        return {"position_m": np.linalg.norm(achieved - desired, axis=-1)}

    def is_dropped(self, achieved: np.ndarray) -> np.ndarray:
        """Whether the manipulated object fell out of reach (batch): never, by default."""
        return np.zeros(np.shape(achieved)[:-1], dtype=bool)
