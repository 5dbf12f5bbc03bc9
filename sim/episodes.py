"""`EpisodeJudge`: goals, episode timing and success on measured state (the core of task_node).

An episode starts from a reset whose seed the twin (or an operator) reports; the judge
samples the goal the env would sample for that seed, then watches measured states. At
`max_episode_steps` control periods after the first state of the episode it judges success
with the env's own test on the mirrored achieved goal, exactly as `twinbridge rollout`
reads `info["is_success"]` at an episode's last step.

Run: `python -c "from sim.episodes import EpisodeJudge; j = EpisodeJudge('fetch-push'); print(j.start(0))"`
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from sim.contract.samples import ObjectPose
from sim.mirror import TaskMirror


@dataclass(frozen=True)
class EpisodeResult:
    index: int
    seed: int
    success: bool
    final_distance: float
    steps: int
    answered_states: int = -1  # states of the judged episode a command answered (-1: unknown)
    first_stamp_ns: int = 0  # the judged episode's first state (0: unknown)

    def report(self, successes: str) -> dict[str, object]:
        """task_node's `task_node/episode` status values (`successes`: all so far, "1"/"0"
        per episode, so a late reader misses nothing)."""
        return {
            "episode": self.index,
            "seed": self.seed,
            "success": self.success,
            "final_distance": round(self.final_distance, 5),
            "answered_states": self.answered_states,
            "first_judged_stamp_ns": self.first_stamp_ns,
            "successes": successes,
        }


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

    @property
    def successes(self) -> str:
        """ "1" / "0" per judged episode, in order."""
        return "".join("1" if r.success else "0" for r in self.results)

    def summary(self) -> dict[str, object]:
        """task_node's `task_node/done` status values."""
        rate, successes = self.success_rate, self.successes
        return {"episodes": len(self.results), "success_rate": rate, "successes": successes}

    def start_report(self, seed: int, goal: np.ndarray, first_stamp_ns: int) -> dict[str, object]:
        """The `task_node/episode_start` marker recorders keep: episode, task, seed, goal."""
        return {
            "episode": len(self.results),
            "seed": seed,
            "task": self.task,
            "robot": self.mirror.robot,
            "goal": json.dumps([round(float(v), 9) for v in goal]),
            "first_stamp_ns": first_stamp_ns,
        }

    def start(self, seed: int, first_stamp_s: float = 0.0) -> np.ndarray:
        """Begin the episode the env runs with `seed`, whose first state is stamped
        `first_stamp_s` or later (earlier states are from before the reset); its goal."""
        goal = self.mirror.sample_goal(seed)
        self._seed, self._first_stamp_s, self._steps = seed, None, 0
        self._not_before_s = first_stamp_s
        return goal

    def abort(self) -> int | None:
        """End the running episode without judging it (the robot could not finish it);
        returns its seed."""
        seed, self._seed = self._seed, None
        return seed

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


class EpisodeTracker:
    """A task node's episodes from measured topics (the core of task_node): pairs each
    joint state with the object pose of the same stamp, judges an episode from its first
    state a commander answered (a policy that joins late costs nothing), and counts the
    answered states of each judged episode."""

    def __init__(self, judge: EpisodeJudge, command_names: tuple[str, ...], patience_s: float):
        self.judge = judge
        self.command_names = set(command_names)
        self.patience_s = patience_s  # unanswered this long: judged from its first state
        self.unanswered_episodes = 0
        self._states: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
        self._poses: dict[int, ObjectPose] = {}
        self._answered: set[int] = set()
        self._reset_stamp_ns = 0
        self._reset_s = 0.0
        self._from_ns: int | None = None
        self._first_fed_ns = 0

    @property
    def running(self) -> bool:
        return self.judge.running

    def start(self, seed: int, reset_stamp_ns: int, now_s: float) -> np.ndarray:
        """Begin the episode the robot reset to `seed`; states stamped before
        `reset_stamp_ns` are older than it. Returns its goal."""
        self._states.clear()
        self._poses.clear()
        self._answered.clear()
        self._reset_stamp_ns, self._reset_s, self._from_ns = reset_stamp_ns, now_s, None
        self._first_fed_ns = 0
        return self.judge.start(seed, first_stamp_s=reset_stamp_ns * 1e-9)

    def abort(self) -> int | None:
        """The robot could not finish the episode (e-stop): not judged; its seed."""
        return self.judge.abort()

    def on_state(
        self, stamp_ns: int, positions: np.ndarray, velocities: np.ndarray, now_s: float
    ) -> EpisodeResult | None:
        self._states[stamp_ns] = (stamp_ns * 1e-9, positions, velocities)
        return self._judge(now_s)

    def on_pose(self, pose: ObjectPose, now_s: float) -> EpisodeResult | None:
        self._poses[pose.stamp_ns] = pose
        return self._judge(now_s)

    def on_command(self, stamp_ns: int, names: list[str], now_s: float) -> EpisodeResult | None:
        """A full command answering a state of this episode (partial ones are no answer)."""
        if set(names) != self.command_names or stamp_ns < self._reset_stamp_ns:
            return None
        self._answered.add(stamp_ns)
        if self._from_ns is None and self.running:
            self._from_ns = stamp_ns
            return self._judge(now_s)
        return None

    def _judge(self, now_s: float) -> EpisodeResult | None:
        """Feed every state whose joint state and object pose (if any) both arrived, in
        stamp order, from the judged start on; what is older than the newest judged state
        can no longer pair."""
        start = self._judging_from(now_s)
        if start is None:
            return None
        has_object = self.judge.mirror.has_object
        paired = sorted(
            k for k in self._states if k >= start and (not has_object or k in self._poses)
        )
        result = None
        for key in paired:
            stamp, pos, vel = self._states.pop(key)
            done = self.judge.observe(stamp, pos, vel, self._poses.pop(key, None))
            self._first_fed_ns = self._first_fed_ns or key
            if done is not None:
                answered = sum(1 for s in self._answered if start <= s <= key)
                first = self._first_fed_ns
                result = dataclasses.replace(done, answered_states=answered, first_stamp_ns=first)
                break
        if paired:
            newest = paired[-1]
            self._states = {k: v for k, v in self._states.items() if k > newest}
            self._poses = {k: v for k, v in self._poses.items() if k > newest}
        return result

    def _judging_from(self, now_s: float) -> int | None:
        if self._from_ns is None and self.running and now_s - self._reset_s > self.patience_s:
            self.unanswered_episodes += 1
            self._from_ns = self._reset_stamp_ns
        return self._from_ns


def parse_reset_answer(message: str) -> dict[str, int] | None:
    """`seed=<n> [stamp_ns=<t>]` from the message of a successful `reset` (words without
    `=` are a note, e.g. that the device could not reset its scene), or None."""
    values = {}
    for key, is_field, value in (word.partition("=") for word in message.split()):
        if is_field:
            try:
                values[key] = int(value)
            except ValueError:
                return None
    return values if "seed" in values else None
