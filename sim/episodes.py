"""`EpisodeJudge`: goals, episode timing and success on measured state (the core of task_node).

An episode starts from a reset whose seed the twin (or an operator) reports; the judge
samples the goal the env would sample for that seed, then watches measured states. At
`max_steps` counted control periods after the first state of the episode (the task's
`max_episode_steps` unless the operator set another length) it judges success with the
env's own test on the mirrored achieved goal, exactly as `twinbridge rollout` reads
`info["is_success"]` at an episode's last step. An operator may end the episode earlier
(`finish`: judged on the newest state). While the e-stop is latched the clock is paused:
states are not counted nor judged, and the pause is reported as stamp intervals so an
exporter can leave those states out.

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
    last_stamp_ns: int = 0  # the state the verdict was judged on
    ended_by: str = "time"  # "time": max_steps reached; "operator": finished by the operator
    paused_steps: int = 0  # states skipped while the e-stop was latched
    # (after_ns, resume_ns): the states strictly between two counted states were paused
    paused_ns: tuple[tuple[int, int], ...] = ()

    def line(self) -> str:
        """The verdict in words, for logs and the operator."""
        outcome = "success" if self.success else "failure"
        return (
            f"{outcome} (seed {self.seed}, distance {self.final_distance:.3f}, "
            f"{self.steps} steps, ended by {self.ended_by})"
        )

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
            "last_judged_stamp_ns": self.last_stamp_ns,
            "steps": self.steps,
            "ended_by": self.ended_by,
            "paused_steps": self.paused_steps,
            "paused_stamps_ns": json.dumps([list(pair) for pair in self.paused_ns]),
            "successes": successes,
        }


@dataclass
class EpisodeJudge:
    """Counts episodes of one task and judges each one's success."""

    task: str
    episode_s: float = 0.0  # episode length in seconds; 0: the task's max_episode_steps
    mirror: TaskMirror = field(init=False)
    results: list[EpisodeResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mirror = TaskMirror(self.task)
        if not 0 <= self.episode_s < float("inf"):
            raise ValueError(f"episode_s must be a finite number >= 0, got {self.episode_s}")
        steps = max(1, round(self.episode_s / self.mirror.dt)) if self.episode_s else 0
        self.max_steps = steps or self.mirror.max_episode_steps
        self._seed: int | None = None
        self._first_stamp_s: float | None = None
        self._not_before_s = 0.0
        self._steps = 0
        self._last_ns = 0  # the newest counted state
        self.paused = False
        self._resuming = False
        self._paused_ns: list[tuple[int, int]] = []
        self._skipped_s = 0.0  # paused time, taken off the episode clock

    @property
    def steps(self) -> int:
        """Control steps counted in the running episode (paused time excluded)."""
        return self._steps

    @property
    def last_stamp_ns(self) -> int:
        """The newest counted state of the running episode (0: none yet)."""
        return self._last_ns

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

    def status(self) -> dict[str, object]:
        """Where the running episode is (task_node's `episode_status`, the operator's
        status line): its index, counted steps of `max_steps`, seconds left, paused."""
        left_s = (self.max_steps - self._steps) * self.mirror.dt if self.running else 0.0
        return {
            "episode": len(self.results),
            "running": self.running,
            "paused": self.paused,
            "steps": self._steps if self.running else 0,
            "max_steps": self.max_steps,
            "time_left_s": round(max(0.0, left_s), 2),
            "successes": self.successes,
        }

    def start_report(self, seed: int, goal: np.ndarray, first_stamp_ns: int) -> dict[str, object]:
        """The `task_node/episode_start` marker recorders keep: episode, task, seed, goal."""
        return {
            "episode": len(self.results),
            "seed": seed,
            "task": self.task,
            "robot": self.mirror.robot,
            "goal": json.dumps([round(float(v), 9) for v in goal]),
            "first_stamp_ns": first_stamp_ns,
            "max_steps": self.max_steps,
        }

    def start(self, seed: int, first_stamp_s: float = 0.0) -> np.ndarray:
        """Begin the episode the env runs with `seed`, whose first state is stamped
        `first_stamp_s` or later (earlier states are from before the reset); its goal."""
        goal = self.mirror.sample_goal(seed)
        self._seed, self._first_stamp_s, self._steps = seed, None, 0
        self._not_before_s = first_stamp_s
        self._last_ns, self._skipped_s, self._paused_ns = 0, 0.0, []
        self.paused = self._resuming = False
        return goal

    def pause(self, last_answered_ns: int | None = None) -> None:
        """The e-stop latched: count and judge nothing until `resume`. The pause starts
        after `last_answered_ns` (the newest state a command answered) when it is older
        than the newest counted state: an unanswered state is not part of the episode."""
        if self.paused or self._seed is None:
            return
        self.paused = True
        if last_answered_ns is not None and self._first_stamp_s is not None:
            first_ns = round(self._first_stamp_s * 1e9)
            if first_ns <= last_answered_ns < self._last_ns:
                self._last_ns = last_answered_ns

    def resume(self) -> None:
        """The e-stop was released: the next state observed continues the episode."""
        if self.paused:
            self.paused, self._resuming = False, self._last_ns > 0

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
        if self._seed is None or self.paused or stamp_s < self._not_before_s - 1e-6:
            return None
        stamp_ns = round(stamp_s * 1e9)
        if self._first_stamp_s is None:
            self._first_stamp_s = stamp_s
        elif stamp_ns <= self._last_ns:
            return None  # older than a counted state
        if self._resuming:
            self._resuming = False
            self._paused_ns.append((self._last_ns, stamp_ns))
            self._skipped_s += (stamp_ns - self._last_ns) * 1e-9 - self.mirror.dt
        self.mirror.update(positions, velocities, object_pose)
        self._last_ns = stamp_ns
        elapsed_s = stamp_s - self._first_stamp_s - self._skipped_s
        self._steps = round(elapsed_s / self.mirror.dt)
        if self._steps < self.max_steps:
            return None
        return self._verdict("time")

    def finish(self) -> EpisodeResult | None:
        """The operator ends the running episode now: judged on the newest counted state
        (None when no state of it was counted yet)."""
        if self._seed is None or self._first_stamp_s is None:
            return None
        return self._verdict("operator")

    def _verdict(self, ended_by: str) -> EpisodeResult:
        achieved = self.mirror.achieved_goal()
        dt_ns = round(self.mirror.dt * 1e9)
        result = EpisodeResult(
            index=len(self.results),
            seed=int(self._seed or 0),
            success=self.mirror.is_success(achieved, self.mirror.goal),
            final_distance=float(np.linalg.norm(achieved[:3] - self.mirror.goal[:3])),
            steps=self._steps,
            last_stamp_ns=self._last_ns,
            ended_by=ended_by,
            paused_steps=sum(round((b - a) / dt_ns) - 1 for a, b in self._paused_ns),
            paused_ns=tuple(self._paused_ns),
        )
        self.results.append(result)
        self._seed = None
        self.paused = self._resuming = False
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
        self._resume_wait = False  # released from a pause: waiting for the next answer
        self._feed_from_ns = 0

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
        self._first_fed_ns = self._feed_from_ns = 0
        self._resume_wait = False
        return self.judge.start(seed, first_stamp_s=reset_stamp_ns * 1e-9)

    def abort(self) -> int | None:
        """The robot could not finish the episode: not judged; its seed."""
        return self.judge.abort()

    def pause(self) -> None:
        """The e-stop latched: the episode clock stops (nothing counted nor judged); the
        pause starts after the newest counted state a command answered."""
        newest = self.judge.last_stamp_ns
        answered = [s for s in self._answered if s <= newest]
        self.judge.pause(max(answered) if answered else None)

    def resume(self, now_s: float) -> None:
        """The e-stop was released: the episode continues from the first state a command
        answers after the pause (or, after `patience_s` without one, the next state)."""
        if not self.judge.paused:
            return
        self.judge.resume()
        self._resume_wait, self._reset_s = self._from_ns is not None, now_s

    def finish(self, now_s: float) -> EpisodeResult | None:
        """The operator ends the episode now: judged on its newest counted state (None
        while paused or before any state was counted)."""
        self._judge(now_s)
        if self.judge.paused or not self.running:
            return None
        done = self.judge.finish()
        return self._completed(done, self._from_ns or 0) if done else None

    def _completed(self, done: EpisodeResult, start: int) -> EpisodeResult:
        answered = sum(1 for s in self._answered if start <= s <= done.last_stamp_ns)
        first = self._first_fed_ns
        return dataclasses.replace(done, answered_states=answered, first_stamp_ns=first)

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
        if self._resume_wait and stamp_ns > self.judge.last_stamp_ns:
            self._resume_wait, self._feed_from_ns = False, stamp_ns
            return self._judge(now_s)
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
        floor = max(start, self._feed_from_ns)
        paired = sorted(
            k for k in self._states if k >= floor and (not has_object or k in self._poses)
        )
        result = None
        for key in paired:
            stamp, pos, vel = self._states.pop(key)
            done = self.judge.observe(stamp, pos, vel, self._poses.pop(key, None))
            self._first_fed_ns = self._first_fed_ns or key
            if done is not None:
                result = self._completed(done, start)
                break
        if paired:
            newest = paired[-1]
            self._states = {k: v for k, v in self._states.items() if k > newest}
            self._poses = {k: v for k, v in self._poses.items() if k > newest}
        return result

    def _judging_from(self, now_s: float) -> int | None:
        if self.judge.paused:
            return None
        if self._resume_wait:
            if now_s - self._reset_s <= self.patience_s:
                return None
            self._resume_wait = False  # no answer since the release: count on regardless
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
