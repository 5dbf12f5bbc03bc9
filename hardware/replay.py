"""`twinbridge replay`: a recorded episode re-run in the twin, and how far it diverges.

Run: `twinbridge replay out/pnp.mcap --episode 0 --video out/replay.mp4`

Replay restores the episode's recorded start in the twin - the seeded reset the episode
ran with, then the robot's joints, the object's pose and the goal as they were measured,
so a recording of the real robot replays from its real start - and then applies, one
control period at a time, the commands the robot actually applied (`joint_command_applied`:
after safety clamping and e-stop holds, not what the operator asked for). It reports the
divergence between the recorded and the replayed joint trajectories and object path, and
whether the replayed episode ends as the recorded one did. A recording of the twin
replays exactly (divergence ~1e-12 rad); of the emulator or a robot, it measures the gap
between the twin and the hardware.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import mujoco
import numpy as np

from hardware.recording.alignment import RecordedEpisode, load_episodes
from sim.errors import TwinbridgeError
from sim.twin_loop import TwinLoop
from sim.video import BackgroundVideo


@dataclass(frozen=True)
class ReplayReport:
    """How a replay compares with its recording (angles in rad, lengths in m)."""

    episode: int
    task: str
    steps: int
    joint_error_max_rad: float
    joint_error_rms_rad: float
    worst_joint: str
    object_error_final_m: float  # NaN without an object
    start_error_max: float  # recorded start vs the seeded reset's (0 for the twin)
    recorded_success: bool | None
    replayed_success: bool
    held_steps: int  # steps with no applied command recorded (the last one is repeated)

    def line(self) -> str:
        outcome = "success" if self.replayed_success else "failure"
        recorded = {True: "success", False: "failure", None: "incomplete"}[self.recorded_success]
        return (
            f"episode {self.episode} ({self.task}, {self.steps} steps): joint divergence max "
            f"{self.joint_error_max_rad:.3g} rad ({self.worst_joint}), rms "
            f"{self.joint_error_rms_rad:.3g} rad; object {self.object_error_final_m:.3g} m at "
            f"the end; replayed {outcome}, recorded {recorded}"
        )


def replay_episode(episode: RecordedEpisode, video: Path | None = None) -> ReplayReport:
    """Re-run `episode` in a fresh twin of its task; compare with the recorded states."""
    loop = TwinLoop(episode.task, seed=episode.seed)  # constructing it resets with `seed`
    try:
        start_error = _restore_start(loop, episode)
        recorder = _video(loop, video) if video is not None else None
        replayed, object_path, held = _run(loop, episode, recorder)
        if recorder is not None:
            recorder.close()
        achieved = loop.task.achieved_goal(loop.twin)
        success = bool(loop.task.is_success(achieved, loop.env.goal))
    finally:
        loop.twin.close()
    return _report(episode, replayed, object_path, start_error, success, held)


def _restore_start(loop: TwinLoop, episode: RecordedEpisode) -> float:
    """Joints (by name), object pose and goal as recorded at the first state; returns the
    largest difference from the seeded reset's own start."""
    data = loop.twin.data
    order = [episode.joint_names.index(name) for name in _checked_joints(loop, episode)]
    before = np.concatenate((data.qpos[loop.io.qpos_indices], data.qvel[loop.io.qvel_indices]))
    data.qpos[loop.io.qpos_indices] = episode.joint_position[0, order]
    data.qvel[loop.io.qvel_indices] = episode.joint_velocity[0, order]
    after = np.concatenate((data.qpos[loop.io.qpos_indices], data.qvel[loop.io.qvel_indices]))
    error = float(np.max(np.abs(after - before)))
    pose = loop.object_pose()
    if pose is not None and episode.object_pose is not None:
        recorded = episode.object_pose[0]
        if not np.isfinite(recorded).all():
            raise TwinbridgeError(
                f"{episode.source}: episode {episode.index} has no object pose at its start"
            )
        reset = np.concatenate((pose.position_m, pose.quaternion_wxyz))
        error = max(error, float(np.max(np.abs(reset - recorded))))
        loop.set_object_pose(recorded)
    if episode.goal.shape != loop.env.goal.shape:
        raise TwinbridgeError(
            f"{episode.source}: episode {episode.index}'s goal has {episode.goal.size} values; "
            f"{episode.task} goals have {loop.env.goal.size}"
        )
    loop.env.goal = episode.goal.copy()
    mujoco.mj_forward(loop.twin.model, data)
    return error


def _checked_joints(loop: TwinLoop, episode: RecordedEpisode) -> tuple[str, ...]:
    missing = sorted(set(loop.io.joint_names) - set(episode.joint_names))
    if missing:
        raise TwinbridgeError(
            f"{episode.source}: the recorded joint_states lack {missing} of {episode.task}'s "
            f"robot: a recording of another robot?"
        )
    return loop.io.joint_names


def _run(
    loop: TwinLoop, episode: RecordedEpisode, recorder: BackgroundVideo | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Apply each recorded applied command for one control period; the replayed joint
    positions (recorded order) and object positions after each period."""
    names = episode.command_names
    order = [loop.io.joint_names.index(n) for n in episode.joint_names if n in loop.io.joint_names]
    joints, objects, held, targets = [], [], 0, None
    for row in episode.command_applied:
        if np.isfinite(row).all():
            targets = dict(zip(names, row.tolist(), strict=True))
        else:
            held += 1
        if targets is not None:
            loop.apply(targets)
        loop.step()
        if recorder is not None:
            recorder.capture()
        joints.append(loop.twin.data.qpos[loop.io.qpos_indices][order].copy())
        pose = loop.object_pose()
        objects.append(pose.position_m if pose is not None else np.full(3, np.nan))
    return np.array(joints), np.array(objects), held


def _report(
    episode: RecordedEpisode,
    replayed: np.ndarray,
    object_path: np.ndarray,
    start_error: float,
    success: bool,
    held: int,
) -> ReplayReport:
    recorded = episode.joint_position[1 : 1 + len(replayed)]
    error = np.abs(replayed - recorded) if len(replayed) else np.zeros((1, 1))
    worst = int(np.unravel_index(np.argmax(error), error.shape)[1]) if error.size else 0
    object_error = float("nan")
    if episode.object_pose is not None and len(object_path):
        object_error = float(np.linalg.norm(object_path[-1] - episode.object_pose[-1, :3]))
    return ReplayReport(
        episode=episode.index,
        task=episode.task,
        steps=len(replayed),
        joint_error_max_rad=float(error.max()),
        joint_error_rms_rad=float(np.sqrt(np.mean(error**2))),
        worst_joint=episode.joint_names[worst] if episode.joint_names else "",
        object_error_final_m=object_error,
        start_error_max=start_error,
        recorded_success=episode.success,
        replayed_success=success,
        held_steps=held,
    )


def _video(loop: TwinLoop, path: Path) -> BackgroundVideo:
    if path.suffix != ".mp4":
        raise TwinbridgeError(f"--video must name an .mp4 file, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = 1.0 / loop.control_period_s
    return BackgroundVideo(loop.twin, loop.task.video_camera, path, fps, drop_when_behind=False)


# -- the command ------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="a recording (.mcap)")
    parser.add_argument("--episode", type=int, default=None, help="episode index (default: all)")
    parser.add_argument("--video", type=Path, default=None, help="MP4 of the (first) replay")
    parser.add_argument(
        "--max-divergence-rad",
        type=float,
        default=None,
        help="exit 1 if any replayed joint strays further than this from the recording",
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per episode")


def run(args: argparse.Namespace) -> int:
    wanted = None if args.episode is None else [args.episode]
    episodes = load_episodes(args.bag, wanted)
    worst = 0.0
    for i, episode in enumerate(episodes):
        report = replay_episode(episode, args.video if i == 0 else None)
        print(json.dumps(asdict(report)) if args.json else report.line(), flush=True)
        worst = max(worst, report.joint_error_max_rad)
    limit = args.max_divergence_rad
    if limit is not None and worst > limit:
        print(f"replay diverged: {worst:.3g} rad > --max-divergence-rad {limit}")
        return 1
    return 0
