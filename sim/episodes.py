"""`EpisodeJudge`: goals, episode timing and success on measured state (the core of task_node).

An episode starts from a reset whose seed the twin (or an operator) reports; the judge
samples the goal the env would sample for that seed, then watches measured states. At
`max_episode_steps` control periods after the first state of the episode it judges success
with the env's own test on the mirrored achieved goal, exactly as `twinbridge rollout`
reads `info["is_success"]` at an episode's last step.

Run: `python -c "from sim.episodes import EpisodeJudge; j = EpisodeJudge('fetch-push'); print(j.start(0))"`
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from sim.mirror import ObjectPose, TaskMirror


@dataclass(frozen=True)
class EpisodeResult:
    index: int
    seed: int
    success: bool
    final_distance: float
    steps: int


@dataclass
class EpisodeJudge:
    """Counts episodes of one task and judges each one's success."""

    task: str
    mirror: TaskMirror = field(init=False)
    results: list[EpisodeResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mirror = TaskMirror(self.task)
        self._seed: int | None = None
        self._first_stamp_s: float | None = None
        self._not_before_s = 0.0
        self._steps = 0

    @property
    def goal(self) -> np.ndarray:
        return self.mirror.goal.copy()

    @property
    def running(self) -> bool:
        return self._seed is not None

    @property
    def success_rate(self) -> float:
        return float(np.mean([r.success for r in self.results])) if self.results else 0.0

    def start(self, seed: int, first_stamp_s: float = 0.0) -> np.ndarray:
        """Begin the episode the env runs with `seed`, whose first state is stamped
        `first_stamp_s` or later (earlier states are from before the reset); its goal."""
        goal = self.mirror.sample_goal(seed)
        self._seed, self._first_stamp_s, self._steps = seed, None, 0
        self._not_before_s = first_stamp_s
        return goal

    def observe(
        self,
        stamp_s: float,
        positions: ArrayLike,
        velocities: ArrayLike,
        object_pose: ObjectPose | None,
    ) -> EpisodeResult | None:
        """Feed one measured state; returns the result when this state ends the episode."""
        if self._seed is None or stamp_s < self._not_before_s - 1e-6:
            return None
        if self._first_stamp_s is None:
            self._first_stamp_s = stamp_s
        self.mirror.update(positions, velocities, object_pose)
        steps = round((stamp_s - self._first_stamp_s) / self.mirror.dt)
        if steps < self.mirror.max_episode_steps:
            return None
        achieved = self.mirror.achieved_goal()
        result = EpisodeResult(
            index=len(self.results),
            seed=self._seed,
            success=self.mirror.is_success(achieved, self.mirror.goal),
            final_distance=float(np.linalg.norm(achieved[:3] - self.mirror.goal[:3])),
            steps=steps,
        )
        self.results.append(result)
        self._seed = None
        return result
