"""`twinbridge bag export`: a recording's episodes as a demonstration dataset.

Run: `twinbridge bag export out/pnp.mcap --out out/demos-pnp`

Each episode becomes one `.npz` of arrays aligned at the control rate (the layout is
defined once, in hardware/recording/dataset.py): the env observation the operator's controller
saw at each state (rebuilt from the measured joint states and object poses by the task's
mirror, exactly as teleop_node and policy_node build it), the goal, the env action, and
the commanded and applied joint targets. Only episodes that are whole - an end marker,
every control step present, an action recorded at every step - are exported; each one
left out is named with the reason, never patched up.
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
    """What an export wrote and what it left out (episode index -> reason)."""

    out_dir: Path
    exported: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    successes: int = 0

    def skipped_lines(self) -> str:
        return "".join(f"\n  episode {i} skipped: {why}" for i, why in self.skipped.items())

    def line(self) -> str:
        return (
            f"{len(self.exported)} episodes ({self.successes} successful) -> "
            f"{self.out_dir}{self.skipped_lines()}"
        )


def export_bag(
    bag: Path, out_dir: Path, task: str | None = None, episodes: list[int] | None = None
) -> ExportReport:
    """Write the whole episodes of `bag` (of `task`, if given) as a dataset in `out_dir`."""
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
    """The arrays of each whole episode, in order; the others recorded as skipped."""
    for episode in recorded:
        reason = _not_whole(episode)
        if reason:
            report.skipped[episode.index] = reason
            continue
        report.exported.append(episode.index)
        report.successes += bool(episode.success)
        yield _arrays(episode, mirror)


def _not_whole(episode: RecordedEpisode) -> str:
    if episode.success is None:
        return "no end marker (the recording stopped inside it)"
    if not episode.complete:
        return f"{episode.steps} of its control steps were recorded"
    missing = int((~episode.action_recorded).sum())
    if missing or episode.action.size == 0:
        return (
            f"{missing or episode.steps} of {episode.steps} steps have no teleop/action "
            "(operator holds, or not a teleop recording)"
        )
    return ""


def _arrays(episode: RecordedEpisode, mirror: TaskMirror) -> dict[str, Any]:
    observation, achieved = _observations(episode, mirror)
    steps = episode.steps
    return {
        "observation": observation,
        "achieved_goal": achieved,
        "desired_goal": np.repeat(episode.goal[None, :], steps + 1, axis=0),
        "action": episode.action,
        "stamp_ns": episode.stamp_ns,
        "joint_position": episode.joint_position,
        "joint_velocity": episode.joint_velocity,
        "command": episode.command,
        "command_applied": episode.command_applied,
        "success": bool(episode.success),
        "seed": episode.seed,
    }


def _observations(episode: RecordedEpisode, mirror: TaskMirror) -> tuple[np.ndarray, np.ndarray]:
    """The env observation at each recorded state, as the controller assembled it."""
    order = [episode.joint_names.index(n) for n in mirror.io.joint_names]
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
