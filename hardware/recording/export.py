"""`twinbridge bag export`: a recording's episodes as a demonstration dataset.

Run: `twinbridge bag export out/pnp.mcap --out out/demos-pnp`

Each episode becomes `.npz` files of arrays aligned at the control rate (the layout is
defined once, in hardware/recording/dataset.py): the env observation the operator's controller
saw at each state (rebuilt from the measured joint states and object poses by the task's
mirror, exactly as teleop_node and policy_node build it), the goal, the env action, and
the commanded and applied joint targets.

What is exported is what the operator did, nothing invented: a hold (the operator pressing
nothing) is a recorded zero-motion action and is exported as it is. A step that is not the
operator's - the e-stop was latched during it, or no `teleop/action` answered its state (a
gap) - is left out, and the episode is split there: each run of consecutive operator
steps is one file, whose meta.json entry keeps the recording's episode index, seed and
verdict (`episode`, `segment`, `first_step`). Learners read an episode as consecutive
transitions (HER's future-goal relabelling, LeRobot's frame windows) and have no per-step
mask, so a split keeps every transition real where a mask would leave a filled-in action
for them to learn. Episodes left out entirely (no end marker, states the recorder lost,
no operator actions at all) are named with the reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.recording.alignment import RecordedEpisode, load_episodes
from hardware.recording.errors import BagIdentityError, RecordingError
from sim.contract.samples import ObjectPose
from sim.mirror import TaskMirror


@dataclass
class ExportReport:
    """What an export wrote and what it left out (recording episode index -> reason)."""

    out_dir: Path
    exported: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    excluded: dict[int, str] = field(default_factory=dict)  # steps left out, per episode
    successes: int = 0
    files: int = 0

    def skipped_lines(self) -> str:
        return "".join(f"\n  episode {i} skipped: {why}" for i, why in self.skipped.items())

    def line(self) -> str:
        split = "".join(f"\n  episode {i}: {why}" for i, why in self.excluded.items())
        return (
            f"{len(self.exported)} episodes ({self.successes} successful) -> "
            f"{self.out_dir} ({self.files} files){split}{self.skipped_lines()}"
        )


def export_bag(
    bag: Path, out_dir: Path, task: str | None = None, episodes: list[int] | None = None
) -> ExportReport:
    """Write the operator's steps of `bag`'s episodes (of `task`, if given) in `out_dir`."""
    from hardware.recording.dataset import DemonstrationError, write_dataset

    recorded = load_episodes(bag, episodes)
    tasks = sorted({e.task for e in recorded})
    if len(tasks) != 1 or (task is not None and tasks != [task]):
        raise BagIdentityError(
            f"{bag}: its episodes are of {tasks}; export needs one task"
            + (f" ({task!r} asked for)" if task else "")
        )
    report = ExportReport(out_dir)
    mirror = TaskMirror(tasks[0])
    rows = _exportable(recorded, mirror, report)
    meta = {
        "robot": mirror.robot,
        "task": tasks[0],
        "control_rate_hz": 1.0 / mirror.dt,
        "source": str(bag),
        "action_names": list(recorded[0].action_names),
        "command_names": list(recorded[0].command_names),
        "joint_names": list(recorded[0].joint_names),
        "skipped_episodes": report.skipped,  # filled while the rows stream; written last
    }
    try:
        write_dataset(out_dir, rows, meta)  # streams: one episode in memory at a time
    except DemonstrationError as e:
        if report.exported:
            raise
        raise RecordingError(f"{bag}: no whole episode to export;{report.skipped_lines()}") from e
    return report


def _exportable(
    recorded: list[RecordedEpisode], mirror: TaskMirror, report: ExportReport
) -> Iterator[dict[str, Any]]:
    """The arrays of each run of operator steps, in order; what is left out is reported."""
    for episode in recorded:
        reason = _not_whole(episode)
        if reason:
            report.skipped[episode.index] = reason
            continue
        spans = operator_spans(episode)
        if not spans:
            report.skipped[episode.index] = "no step is the operator's: " + _left_out(episode)
            continue
        if sum(b - a for a, b in spans) < episode.steps:
            report.excluded[episode.index] = f"split in {len(spans)}: " + _left_out(episode)
        report.exported.append(episode.index)
        report.successes += bool(episode.success)
        observation, achieved = _observations(episode, mirror)
        for segment, (a, b) in enumerate(spans):
            report.files += 1
            yield _arrays(episode, observation, achieved, a, b) | {
                "episode": episode.index, "segment": segment, "first_step": a,
            }  # fmt: skip


def operator_spans(episode: RecordedEpisode) -> list[tuple[int, int]]:
    """[first, end) step ranges in which every step is the operator's (`_not_mine`)."""
    mine = (_not_mine(episode) == "").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mine, [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _not_mine(episode: RecordedEpisode) -> np.ndarray:
    """Per step, why it is not the operator's ("" if it is): an action answered its state
    (a hold is one), its command and applied command were recorded, the e-stop was clear."""
    why = np.full(episode.steps, "", dtype=object)
    for rows, name in (
        (episode.command_applied, "joint_command_applied"),
        (episode.command, "joint_command"),
        (episode.action, "teleop/action"),
    ):
        if rows.shape[1:] != (0,):
            why[~np.isfinite(rows).all(axis=1)] = f"no {name}"
    why[np.asarray(episode.estopped, dtype=bool)] = "e-stop latched"
    return why


def _left_out(episode: RecordedEpisode) -> str:
    """The steps that are not the operator's, as ranges with why."""
    why, parts, k = _not_mine(episode), [], 0
    while k < episode.steps:
        end = k
        while end + 1 < episode.steps and why[end + 1] == why[k]:
            end += 1
        if why[k]:
            steps = f"steps {k}-{end}" if end > k else f"step {k}"
            parts.append(f"{steps} {why[k]}")
        k = end + 1
    return f"{', '.join(parts)} (of {episode.steps}) left out"


def _not_whole(episode: RecordedEpisode) -> str:
    if episode.success is None:
        return "no end marker (the recording stopped inside it)"
    if episode.end_marker.get("aborted"):
        return "its end report was lost (closed by the next start): no verdict"
    if not episode.complete:
        return (
            f"{episode.steps} of its {episode.expected_steps} control steps were recorded "
            "(the recorder lost states)"
        )
    if episode.action.size == 0:
        return "no teleop/action in it (not a teleoperated recording)"
    return ""


def _arrays(
    episode: RecordedEpisode, observation: np.ndarray, achieved: np.ndarray, a: int, b: int
) -> dict[str, Any]:
    """Steps [a, b) of `episode`: their actions and the b - a + 1 states around them."""
    return {
        "observation": observation[a : b + 1],
        "achieved_goal": achieved[a : b + 1],
        "desired_goal": np.repeat(episode.goal[None, :], b - a + 1, axis=0),
        "action": episode.action[a:b],
        "stamp_ns": episode.stamp_ns[a : b + 1],
        "joint_position": episode.joint_position[a : b + 1],
        "joint_velocity": episode.joint_velocity[a : b + 1],
        "command": episode.command[a:b],
        "command_applied": episode.command_applied[a:b],
        "success": bool(episode.success),
        "seed": episode.seed,
    }


def _observations(episode: RecordedEpisode, mirror: TaskMirror) -> tuple[np.ndarray, np.ndarray]:
    """The env observation at each recorded state, as the controller assembled it."""
    order = [episode.joint_names.index(n) for n in mirror.io.joint_names]
    mine = _not_mine(episode) == ""
    mirror.new_episode()
    mirror.goal = episode.goal.copy()
    observations, achieved = [], []
    for k, stamp in enumerate(episode.stamp_ns):
        pose = None
        if episode.object_pose is not None:
            values = episode.object_pose[k]
            pose = ObjectPose(values[:3].copy(), values[3:].copy(), int(stamp))
        mirror.update(episode.joint_position[k, order], episode.joint_velocity[k, order], pose)
        obs = mirror.observation()
        observations.append(obs["observation"])
        achieved.append(obs["achieved_goal"])
        # The controller's own next move: a task whose action moves the previous target
        # (target_lead in the observation) needs the targets its actions set, not just states.
        if k < episode.steps:
            if mine[k]:
                mirror.command_targets(episode.action[k])
            else:
                mirror.hold()
    return np.array(observations), np.array(achieved)


# -- the command ------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="a recording (.mcap)")
    parser.add_argument("--out", type=Path, required=True, help="a new dataset directory")
    parser.add_argument("--task", default=None, help="refuse a bag of another task")
    parser.add_argument(
        "--episode", type=int, action="append", default=None, help="only these (repeatable)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        report = export_bag(args.bag, args.out, args.task, args.episode)
    except ValueError as e:  # the dataset writer's refusals name the file
        raise RecordingError(str(e)) from e
    print(report.line())
    return 0
