"""Videos people can read: each frame carries its episode, step, success and distance to
the goal (and the e-stop), an episode's start is marked, `rollout --video` and `replay
--video` write every frame they promise, and the learning curve shows return and losses
beside success."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from hardware.recording.alignment import RecordedEpisode
from hardware.replay import ReplayVideo, replay_episode
from policies.training.logs import COLUMNS, EpochLog
from sim.overlay import CARD_STEPS, Overlay, draw
from sim.render import mp4_frames
from sim.twin_loop import TwinLoop

SIZE = 480
TOP_BAND = (slice(0, SIZE * 56 // 480), slice(None))  # where the text lines are drawn


def _plain() -> np.ndarray:
    loop = TwinLoop("arm3-reach")
    loop.reset()
    return loop.twin.render("video", SIZE, SIZE)


def test_the_overlay_writes_the_episode_state_on_the_frame() -> None:
    plain = _plain()
    state = Overlay("arm3-reach", 2, CARD_STEPS + 5, 50, False, {"position_m": 0.2}, seed=2)
    later = draw(plain.copy(), state)
    band = later[TOP_BAND].astype(int)
    # Bright text on a darkened band: some pixels far brighter than the band around them.
    assert (band.max(axis=2) > 200).sum() > 200
    assert np.abs(later[SIZE // 2] - plain[SIZE // 2].astype(int)).max() == 0  # body untouched
    first = draw(plain.copy(), Overlay("arm3-reach", 2, 0, 50, False, {"position_m": 0.2}))
    card = slice(int(SIZE * 0.76), int(SIZE * 0.86))
    assert np.abs(first[card].astype(int) - later[card]).mean() > 20  # the title card
    success = draw(plain.copy(), Overlay("arm3-reach", 2, 40, 50, True, {"position_m": 0.01}))
    assert success[SIZE // 2, 1, 1] > 200 and success[SIZE // 2, 1, 0] < 150  # green border
    stopped = Overlay("arm3-reach", 2, 40, 50, False, {}, estop="estop service")
    assert draw(plain.copy(), stopped)[SIZE // 2, 1, 0] > 200  # red border
    assert not np.array_equal(draw(plain.copy(), stopped)[-10:], plain[-10:])  # its reason


def test_twin_loop_overlay_is_measured_from_the_episode() -> None:
    loop = TwinLoop("fetch-push", seed=7)
    assert loop.overlay().episode == -1  # no episode started yet
    loop.reset()
    loop.step()
    loop.step()
    overlay = loop.overlay()
    assert (overlay.episode, overlay.step, overlay.seed) == (0, 2, 7)
    assert overlay.steps == loop.gate.episode_steps == 100  # fetch-push v1
    achieved = loop.task.achieved_goal(loop.twin)
    assert overlay.distances["position_m"] == np.linalg.norm(achieved - loop.env.goal)
    assert overlay.success is False
    loop.engage_estop("estop service")
    assert loop.overlay().estop == "estop service"


def test_rollout_video_has_every_frame_with_its_overlay(tmp_path: Path) -> None:
    video = tmp_path / "r.mp4"
    command = [sys.executable, "-m", "sim.cli", "rollout", "--task", "arm3-reach"]
    args = ["--episodes", "2", "--video", str(video), "--json"]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    frames = iio.imread(video)
    steps = TwinLoop("arm3-reach").gate.episode_steps
    assert steps is not None
    assert len(frames) == 2 * (steps + 1)  # each state, the last one too
    band = frames[:, : frames.shape[1] * 56 // 480]
    assert (band.max(axis=3) > 200).sum(axis=(1, 2)).min() > 200  # text on every frame
    # The episode's first frames carry a title card; later ones do not.
    low = slice(int(frames.shape[1] * 0.76), int(frames.shape[1] * 0.86))
    card = np.abs(frames[0, low].astype(int) - frames[CARD_STEPS + 2, low]).mean()
    assert card > 20


def _episode(index: int, steps: int) -> RecordedEpisode:
    """An arm3 episode as a recording has it: the twin's states under a slow sweep."""
    loop = TwinLoop("arm3-reach", seed=index)
    names = loop.io.command_names
    positions, velocities, applied, stamps = [], [], [], []
    for k in range(steps + 1):
        state = loop.joint_state()
        positions.append(state.positions)
        velocities.append(state.velocities)
        stamps.append(state.stamp_ns)
        if k < steps:
            targets = loop.applied_targets() + 0.02
            loop.apply(dict(zip(names, targets.tolist(), strict=True)))
            applied.append(targets)
            loop.step()
    commands = np.array(applied)
    return RecordedEpisode(
        index=index, task="arm3-reach", robot="arm3", seed=index, goal=loop.env.goal.copy(),
        success=False, source="synthetic", stamp_ns=np.array(stamps),
        joint_names=loop.io.joint_names, joint_position=np.array(positions),
        joint_velocity=np.array(velocities), object_pose=None, command_names=names,
        command=commands, command_applied=commands, action_names=(),
        action=np.zeros((steps, 0)), action_recorded=np.ones(steps, dtype=bool),
    )  # fmt: skip


def test_replay_video_has_every_episode(tmp_path: Path) -> None:
    steps = [6, 9]
    video = ReplayVideo(tmp_path / "replay.mp4")
    for index, n in enumerate(steps):
        report = replay_episode(_episode(index, n), video)
        assert report.joint_error_max_rad < 1e-9
    line = video.close()
    frames = sum(n + 1 for n in steps)  # the restored start, then each period
    assert line == f"video: {tmp_path / 'replay.mp4'} ({frames} frames, 2 episodes)"
    assert mp4_frames(tmp_path / "replay.mp4") == frames


def test_learning_curve_shows_success_return_and_losses(tmp_path: Path) -> None:
    log = EpochLog(tmp_path, "fetch-reach her-sac")
    for epoch in range(3):
        row = {c: float(epoch + 1) for c in COLUMNS}
        log.write({**row, "env_steps": 100 * (epoch + 1), "success_rate": 0.3 * epoch})
    figure = log.figure()
    titles = [axis.get_ylabel() for axis in figure.axes]
    assert titles == ["eval success rate", "eval return", "loss"]
    labels = [line.get_label() for line in figure.axes[2].get_lines()]
    assert {"critic_loss", "actor_loss", "alpha_loss"} <= set(labels)
    assert iio.imread(log.png_path).shape[1] > 1000  # three panels side by side
    with open(log.csv_path) as f:
        assert len(list(csv.DictReader(f))) == 3
