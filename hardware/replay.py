"""`twinbridge replay`: a recorded episode re-run in the twin, and how far it diverges.

Run: `twinbridge replay out/pnp.mcap --episode 0 --video out/replay.mp4`

Replay restores the episode's recorded start in the twin - the seeded reset the episode
ran with, then the robot's joints, the object's pose and the goal as they were measured,
so a recording of the real robot replays from its real start - and then applies, one
control period at a time, the commands the robot was given: with the robot's actuation in
the twin (the Fetch tasks' -v1), those that entered the driver's rate limiter
(`joint_command`; the twin runs the limiter and the device's ramp itself, and holds where an
e-stop held the robot), with ideal servos those the robot actually applied
(`joint_command_applied`: after safety clamping and e-stop holds). It reports the
divergence between the recorded and the replayed joint trajectories and object path, and
whether the replayed episode ends as the recorded one did. A recording of the twin
replays exactly (divergence ~1e-12 rad); of the emulator or a robot, it measures the gap
between the twin and the hardware.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from hardware.recording.alignment import RecordedEpisode, load_episodes
from hardware.view.replay_view import serve_replay_view, show_replay, wait_for_ctrl_c
from sim.errors import TwinbridgeError
from sim.overlay import Overlay
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


def replay_episode(
    episode: RecordedEpisode, video: ReplayVideo | None = None, view: Any = None
) -> ReplayReport:
    """Re-run `episode` in a fresh twin of its task; compare with the recorded states.
    With `video`, its frames (the restored start, then each period) join that MP4."""
    loop = TwinLoop(episode.task, seed=episode.seed)  # constructing it resets with `seed`
    try:
        start_error = _restore_start(loop, episode)
        recorder = video.episode(loop, episode) if video is not None else None
        replayed, object_path, held = _run(loop, episode, recorder)
        if view is not None:
            show_replay(view, episode, replayed, object_path)
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
    loop: TwinLoop, episode: RecordedEpisode, recorder: Callable[[], None] | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Apply each recorded applied command for one control period; the replayed joint
    positions (recorded order) and object positions after each period."""
    names = episode.command_names
    order = [loop.io.joint_names.index(n) for n in episode.joint_names if n in loop.io.joint_names]
    joints, objects, held, targets = [], [], 0, None
    if recorder is not None:
        recorder()
    for commanded, applied in zip(*_command_rows(loop, episode), strict=True):
        if np.isfinite(commanded).all():
            targets = dict(zip(names, commanded.tolist(), strict=True))
        else:
            held += 1
            if np.isfinite(applied).all() and loop.twin.command_path is not None:
                loop.twin.hold_command_path()  # the robot held (an e-stop): so does the path
                targets = None
        if targets is not None:
            loop.apply(targets)
        loop.step()
        if recorder is not None:
            recorder()
        joints.append(loop.twin.data.qpos[loop.io.qpos_indices][order].copy())
        pose = loop.object_pose()
        objects.append(pose.position_m if pose is not None else np.full(3, np.nan))
    return np.array(joints), np.array(objects), held


def _command_rows(loop: TwinLoop, episode: RecordedEpisode) -> tuple[np.ndarray, np.ndarray]:
    """What to feed the twin per period, and what the robot applied. A twin with the
    robot's actuation runs the driver's rate limiter and the device's ramp itself
    (sim/actuation.py), so it is fed the commands that entered them (`joint_command`), not
    their output again; an ideal twin is fed what the robot applied."""
    if loop.twin.command_path is None:
        return episode.command_applied, episode.command_applied
    return episode.command, episode.command_applied


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


class ReplayVideo:
    """One MP4 of every replayed episode, each frame with its episode's text (episode,
    step, success, distance to the goal) and a title card where an episode starts."""

    def __init__(self, path: Path):
        if path.suffix != ".mp4":
            raise TwinbridgeError(f"--video must name an .mp4 file, got {path}")
        self.path = path
        self._video: BackgroundVideo | None = None

    def episode(self, loop: TwinLoop, episode: RecordedEpisode) -> Callable[[], None]:
        """A function that captures `loop`'s current state as the episode's next frame."""
        if self._video is None:  # rendered with the first twin's model: one task per bag
            fps = 1.0 / loop.control_period_s
            camera = loop.task.video_camera
            self._video = BackgroundVideo(
                loop.twin, camera, self.path, fps, drop_when_behind=False
            )
        video, steps = self._video, len(episode.command_applied)
        start = loop.stamp_ns

        def capture() -> None:
            step = round((loop.stamp_ns - start) / (loop.control_period_s * 1e9))
            overlay = Overlay.measure(
                episode.task, loop.task, loop.twin, loop.env.goal,
                episode=episode.index, step=step, steps=steps, seed=episode.seed,
            )  # fmt: skip
            video.capture(overlay, loop.twin)

        return capture

    def close(self) -> str:
        """Finish the file; the line saying where it went."""
        if self._video is None:
            return f"video: nothing replayed, {self.path} not written"
        self._video.close()
        return self._video.summary()


# -- the command ------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="a recording (.mcap)")
    parser.add_argument("--episode", type=int, default=None, help="episode index (default: all)")
    parser.add_argument(
        "--video",
        type=Path,
        default=None,
        help="MP4 of every replayed episode, with episode, step, success and distance drawn",
    )
    parser.add_argument(
        "--max-divergence-rad",
        type=float,
        default=None,
        help="exit 1 if any replayed joint strays further than this from the recording",
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per episode")
    parser.add_argument(
        "--view", action="store_true", help="show the replay in a live web view (localhost)"
    )
    parser.add_argument("--view-port", type=int, default=9090, help="the view's page port")


def run(args: argparse.Namespace) -> int:
    wanted = None if args.episode is None else [args.episode]
    episodes = load_episodes(args.bag, wanted)
    view = serve_replay_view(episodes, args.view_port) if args.view else None
    video = ReplayVideo(args.video) if args.video is not None else None
    worst = 0.0
    for episode in episodes:
        report = replay_episode(episode, video, view)
        print(json.dumps(asdict(report)) if args.json else report.line(), flush=True)
        worst = max(worst, report.joint_error_max_rad)
    if video is not None:
        print(video.close(), file=sys.stderr if args.json else sys.stdout, flush=True)
    limit = args.max_divergence_rad
    if limit is not None and worst > limit:
        print(f"replay diverged: {worst:.3g} rad > --max-divergence-rad {limit}")
        return 1
    if view is not None:
        wait_for_ctrl_c(view)
    return 0
