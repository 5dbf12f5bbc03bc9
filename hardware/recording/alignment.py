"""A recorded episode as arrays aligned at the control rate (what export and replay read).

Run: `python -c "from hardware.recording.alignment import load_episodes as l; print(l('out/pnp.mcap')[0].summary())"`

The contract stamps make alignment exact rather than nearest-in-time: a command, the env
action it came from (`teleop/action`) and the command the robot actually applied
(`joint_command_applied`) all carry the stamp of the state they answer, and an object
pose carries the stamp of its joint state. An episode's states are those from the state
task_node judged it from (`first_judged_stamp_ns` of its end report: the first state a
command answered; else the start marker's `first_stamp_ns`), one per control period, up to
through the state it judged last (`last_judged_stamp_ns` of the end report; older
recordings: the task's last step): the states task_node judged, also when the e-stop paused
the episode clock or the operator ended the episode. A step nothing answered (no
`teleop/action` with its stamp) has no action: it is marked in `action_recorded`, never
filled in; an operator's hold is an action (zero motion) like any other. A step during
which the e-stop was latched is marked in `estopped`: from `estop_state` (a Bool without a
stamp: compared by the recorder's receive times, the clock of every message's log time)
and from the pauses of the episode clock task_node reports (`paused_stamps_ns`).
"""  # noqa: E501

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.recording.errors import RecordingError
from sim.tasks import get_task_spec

# Contract topics by their name inside the robot's namespace.
STATE, POSE, COMMAND, APPLIED, ACTION, ESTOP = (
    "joint_states",
    "object_pose",
    "joint_command",
    "joint_command_applied",
    "teleop/action",
    "estop_state",
)
REQUIRED_TOPICS = (STATE, APPLIED)


@dataclass
class RecordedEpisode:
    """One episode of a recording, one row per control step (T steps, T + 1 states)."""

    index: int
    task: str
    robot: str
    seed: int
    goal: np.ndarray
    success: bool | None  # None: the episode has no end marker (the recording stopped)
    source: str
    stamp_ns: np.ndarray  # (T+1,) measured state stamps
    joint_names: tuple[str, ...]
    joint_position: np.ndarray  # (T+1, joints)
    joint_velocity: np.ndarray  # (T+1, joints)
    object_pose: np.ndarray | None  # (T+1, 7) position + quaternion wxyz, or None
    command_names: tuple[str, ...]
    command: np.ndarray  # (T, commands) as commanded (NaN where none answered the state)
    command_applied: np.ndarray  # (T, commands) after the robot's clamping/hold
    action_names: tuple[str, ...]
    action: np.ndarray  # (T, action size) the operator's env action (NaN where none)
    action_recorded: np.ndarray  # (T,) bool
    marker: dict[str, Any] = field(default_factory=dict)  # the start marker's fields
    end_marker: dict[str, Any] = field(default_factory=dict)  # the end marker's ({}: none)
    estopped: np.ndarray | None = None  # (T,) bool: the e-stop was latched during the step
    expected_steps: int = -1  # the steps task_node judged (-1: the task's step limit)

    def __post_init__(self) -> None:
        if self.estopped is None:
            self.estopped = np.zeros(self.steps, dtype=bool)
        if self.expected_steps < 0:
            self.expected_steps = _max_steps(self.task)

    @property
    def steps(self) -> int:
        return len(self.stamp_ns) - 1

    @property
    def complete(self) -> bool:
        return self.success is not None and self.steps == self.expected_steps

    def summary(self) -> str:
        outcome = {True: "success", False: "failure", None: "incomplete"}[self.success]
        return (
            f"episode {self.index}: {self.task} seed {self.seed}, {self.steps} steps, "
            f"{outcome}, {int(self.action_recorded.sum())} actions recorded"
        )


def load_episodes(
    path: str | Path, episodes: Sequence[int] | None = None
) -> list[RecordedEpisode]:
    """The episodes (all, or those indexed) of a recording, aligned; a missing topic, or an
    episode index the file does not have, is an error naming the file."""
    from hardware.recording.reader import BagReader

    reader = BagReader(path)
    spans = reader.episodes()
    if not spans:
        raise RecordingError(f"{path}: no episode markers (was task_node running?)")
    wanted = [s for s in spans if episodes is None or s.index in episodes]
    missing = sorted(set(episodes or ()) - {s.index for s in spans})
    if missing:
        raise RecordingError(f"{path}: no episode {missing}; it has {[s.index for s in spans]}")
    namespace = _namespace(reader.topics(), path)
    needed = [f"{namespace}/{t}" for t in REQUIRED_TOPICS]
    reader.require_topics(needed)
    topics = [f"{namespace}/{t}" for t in (STATE, POSE, COMMAND, APPLIED, ACTION)]
    streams, received = _by_stamp(reader.messages(topics), namespace)
    latches = _latches(reader.messages([f"{namespace}/{ESTOP}"]))
    # An episode's states end where the next episode's begin (or at the task's last step).
    starts = {s.index: int(s.start_fields.get("first_stamp_ns", 0)) for s in spans}
    return [
        _episode(span, streams, str(path), starts.get(span.index + 1), received, latches)
        for span in wanted
    ]


def _namespace(topic_names: Iterable[str], path: str | Path) -> str:
    """The robot namespace: the one prefix of a `joint_states` topic in the file."""
    prefixes = sorted({t[: -len("/" + STATE)] for t in topic_names if t.endswith("/" + STATE)})
    if len(prefixes) != 1:
        raise RecordingError(
            f"{path}: expected one robot's joint_states topic, found "
            f"{[p + '/' + STATE for p in prefixes] or 'none'}"
        )
    return prefixes[0]


def _by_stamp(
    messages: Iterable[tuple[str, int, Any]], namespace: str
) -> tuple[dict[str, dict[int, Any]], dict[int, int]]:
    """Each contract stream keyed by header stamp (the first message of a stamp wins), and
    the receive (log) time of each joint state by its stamp."""
    streams: dict[str, dict[int, Any]] = {}
    received: dict[int, int] = {}
    for topic, log_time_ns, msg in messages:
        name = topic[len(namespace) + 1 :]
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        streams.setdefault(name, {}).setdefault(stamp, msg)
        if name == STATE:
            received.setdefault(stamp, log_time_ns)
    return streams, received


def _latches(messages: Iterable[tuple[str, int, Any]]) -> list[tuple[int, bool]]:
    """(receive time, latched) of each `estop_state` message, in time order."""
    return sorted((log_time_ns, bool(msg.data)) for _, log_time_ns, msg in messages)


def _estopped(received: Sequence[int], latches: list[tuple[int, bool]]) -> np.ndarray:
    """Per step (between consecutive states received at `received`): whether the e-stop
    was latched at any time from the step's state to the next one."""
    times = np.array([t for t, _ in latches], dtype=np.int64)
    values = np.array([v for _, v in latches], dtype=bool)
    flags = np.zeros(max(len(received) - 1, 0), dtype=bool)
    for k in range(len(flags)):
        before = np.searchsorted(times, received[k], side="right") - 1
        during = (times > received[k]) & (times <= received[k + 1])
        flags[k] = bool(before >= 0 and values[before]) or bool(values[during].any())
    return flags


def _episode(
    span: Any,
    streams: dict[str, dict[int, Any]],
    source: str,
    next_first: int | None,
    received: dict[int, int],
    latches: list[tuple[int, bool]],
) -> RecordedEpisode:
    marker = dict(span.start_fields)
    task = str(marker.get("task", ""))
    dt = _control_period_s(task, source)
    # The state task_node judged the episode from (its first answered state); older
    # recordings have only the reset's stamp.
    first = int(span.end_fields.get("first_judged_stamp_ns") or marker.get("first_stamp_ns", 0))
    last = int(span.end_fields.get("last_judged_stamp_ns") or 0)
    states = streams.get(STATE, {})
    stamps = sorted(
        s
        for s in states
        if s >= first and (next_first is None or s < next_first) and (not last or s <= last)
    )
    if not stamps:
        raise RecordingError(f"{source}: episode {span.index} has no joint_states")
    expected = round((last - first) * 1e-9 / dt) if last else _max_steps(task)
    stamps = _control_steps(stamps, dt, expected)
    joints = tuple(states[stamps[0]].name)
    position = np.array([states[s].position for s in stamps], dtype=np.float64)
    velocity = np.array([states[s].velocity for s in stamps], dtype=np.float64)
    poses = streams.get(POSE, {})
    object_pose = None
    if poses:
        object_pose = np.array([_pose_values(poses.get(s)) for s in stamps], dtype=np.float64)
    answered = stamps[:-1]
    command_names, command = _rows(streams.get(COMMAND, {}), answered, _trajectory_values)
    applied_names, applied = _rows(streams.get(APPLIED, {}), answered, _trajectory_values)
    action_names, action = _rows(streams.get(ACTION, {}), answered, _action_values)
    return RecordedEpisode(
        index=span.index,
        task=task,
        robot=str(marker.get("robot", "")),
        seed=int(marker.get("seed", -1)),
        goal=_goal(marker.get("goal", [])),
        success=span.success,
        source=source,
        stamp_ns=np.asarray(stamps, dtype=np.int64),
        joint_names=joints,
        joint_position=position,
        joint_velocity=velocity,
        object_pose=object_pose,
        command_names=command_names or applied_names,
        command=command,
        command_applied=applied,
        action_names=action_names,
        action=action,
        action_recorded=~np.isnan(action).any(axis=1) if action.size else np.zeros(0, bool),
        marker=marker,
        end_marker=dict(span.end_fields),
        estopped=_estopped([received[s] for s in stamps], latches)
        | _paused(stamps, span.end_fields.get("paused_stamps_ns")),
        expected_steps=expected,
    )


def _goal(value: Any) -> np.ndarray:
    """The start marker's goal: a list, or the JSON text of one (task_node's diagnostics)."""
    return np.asarray(json.loads(value) if isinstance(value, str) else value, dtype=np.float64)


def _paused(stamps: Sequence[int], intervals: Any) -> np.ndarray:
    """Per step: whether its state or the next was in a pause task_node reported (the
    end report's `paused_stamps_ns`: states strictly between `after` and `resume`)."""
    inside = np.zeros(len(stamps), dtype=bool)
    values = json.loads(intervals) if isinstance(intervals, str) else intervals or []
    for after, resume in values:
        inside |= (np.asarray(stamps) > int(after)) & (np.asarray(stamps) < int(resume))
    return inside[:-1] | inside[1:]


def _control_steps(stamps: list[int], dt: float, max_steps: int) -> list[int]:
    """One state per control period from the first, through the task's last step: a
    state between periods (a duplicate publish) is skipped."""
    first, kept, last_step = stamps[0], [], -1
    for stamp in stamps:
        step = round((stamp - first) * 1e-9 / dt)
        if step > last_step and step <= max_steps:
            kept.append(stamp)
            last_step = step
    return kept


def _pose_values(msg: Any) -> list[float]:
    if msg is None:
        return [np.nan] * 7
    p, q = msg.pose.position, msg.pose.orientation
    return [p.x, p.y, p.z, q.w, q.x, q.y, q.z]


def _trajectory_values(msg: Any) -> tuple[tuple[str, ...], Sequence[float] | None]:
    """A JointTrajectory's names and its first point's positions."""
    return tuple(msg.joint_names), (msg.points[0].positions if msg.points else None)


def _action_values(msg: Any) -> tuple[tuple[str, ...], Sequence[float] | None]:
    """A `teleop/action` JointState's component names and values."""
    return tuple(msg.name), msg.position


def _rows(
    by_stamp: dict[int, Any], stamps: Sequence[int], values: Callable[[Any], tuple]
) -> tuple[tuple[str, ...], np.ndarray]:
    """The values of the message answering each state (NaN where none did, or where its
    names differ from the stream's first message's), and those names."""
    names: tuple[str, ...] = values(next(iter(by_stamp.values())))[0] if by_stamp else ()
    rows = np.full((len(stamps), len(names)), np.nan)
    for i, stamp in enumerate(stamps):
        msg = by_stamp.get(stamp)
        if msg is not None:
            msg_names, row = values(msg)
            if msg_names == names and row is not None:
                rows[i] = row
    return names, rows


def _control_period_s(task: str, source: str) -> float:
    try:
        return 1.0 / get_task_spec(task).control_rate_hz
    except Exception as e:  # an unknown task name in the marker
        raise RecordingError(f"{source}: episode marker names task {task!r}: {e}") from e


def _max_steps(task: str) -> int:
    return int(get_task_spec(task).max_episode_steps)
