"""The episode clock a person drives by (fast, no ROS): an operator-set length, the e-stop
pausing it (nothing counted, nothing judged, no deadline missed), an operator-ended episode
judged as the task judges it, a hold that is a real action, and the status line."""

from __future__ import annotations

import io
import json

import numpy as np

from hardware.teleop import Intent, make_mapping
from hardware.teleop.status import StatusLine, status_text
from sim.episodes import EpisodeJudge, EpisodeTracker
from sim.latency import LatencyTracker
from sim.twin_loop import TwinLoop

TASK = "fetch-reach"


def _run(tracker: EpisodeTracker, loop: TwinLoop, steps: int, answer: bool = True):
    """Feed `steps` states (each answered by a command when `answer`); the result if any."""
    names = list(loop.io.command_names)
    for _ in range(steps):
        state = loop.joint_state()
        result = tracker.on_state(state.stamp_ns, state.positions, state.velocities, 0.0)
        if result is not None:
            return result
        if answer:
            result = tracker.on_command(state.stamp_ns, names, 0.0)
            if result is not None:
                return result
        loop.step()
    return None


def _started(episode_s: float = 0.0) -> tuple[EpisodeTracker, TwinLoop]:
    loop = TwinLoop(TASK, seed=3)
    tracker = EpisodeTracker(EpisodeJudge(TASK, episode_s=episode_s), loop.io.command_names, 5)
    loop.reset()
    loop.goal_received()
    tracker.start(3, loop.episode_start_ns, now_s=0.0)
    return tracker, loop


def test_the_operator_sets_the_episode_length() -> None:
    tracker, loop = _started(episode_s=3.0)
    assert tracker.judge.max_steps == 75
    result = _run(tracker, loop, 200)
    assert result is not None and result.steps == 75 and result.ended_by == "time"


def test_the_estop_pauses_the_clock_and_the_episode_continues_after_release() -> None:
    tracker, loop = _started()
    assert _run(tracker, loop, 20) is None
    counted = tracker.judge.steps
    tracker.pause()
    assert _run(tracker, loop, 60, answer=False) is None  # latched: more than an episode
    assert tracker.judge.steps == counted and tracker.judge.running
    tracker.resume(now_s=0.0)
    result = _run(tracker, loop, 200)
    assert result is not None and result.steps == tracker.judge.max_steps
    assert result.paused_steps >= 60 and result.ended_by == "time"
    ((after, resume),) = result.paused_ns
    report = result.report("0")
    assert json.loads(str(report["paused_stamps_ns"])) == [[after, resume]]
    assert report["last_judged_stamp_ns"] == result.last_stamp_ns > resume > after
    # Every counted state but the last was answered: the pause holds no unanswered one.
    assert result.answered_states == result.steps


def test_an_operator_ended_episode_gets_the_tasks_verdict_on_its_newest_state() -> None:
    tracker, loop = _started()
    assert tracker.finish(now_s=0.0) is None  # nothing counted yet: nothing to judge
    _run(tracker, loop, 10)
    mirror = tracker.judge.mirror
    verdict = mirror.is_success(mirror.achieved_goal(), mirror.goal)
    result = tracker.finish(now_s=0.0)
    assert result is not None and result.ended_by == "operator" and result.steps == 9
    assert result.success == verdict and not tracker.running
    assert tracker.finish(now_s=0.0) is None  # no episode runs any more
    tracker2, loop2 = _started()
    _run(tracker2, loop2, 5)
    tracker2.pause()
    assert tracker2.finish(now_s=0.0) is None  # latched: refused, not judged


def test_latched_time_counts_no_deadline_misses() -> None:
    latency = LatencyTracker(deadline_s=0.04)
    latency.published(1, 0.0)
    latency.answered(1, 0.01)  # armed
    for k in range(2, 52):  # 2 s latched: nobody answers, and no answer is due
        latency.published(k, k * 0.04, awaited=False)
    for k in range(52, 55):  # released: the commander needs a moment to hear it
        latency.published(k, k * 0.04)
    latency.answered(54, 54 * 0.04 + 0.01)
    latency.published(55, 55 * 0.04)
    assert latency.deadline_misses == 0
    latency.published(56, 56 * 0.04 + 0.2)  # an unanswered state once running again: a miss
    assert latency.deadline_misses == 1


def test_a_hold_is_a_real_action_zero_motion_gripper_unchanged() -> None:
    mapping = make_mapping(TASK)
    np.testing.assert_array_equal(mapping.action(Intent()), [0, 0, 0, 1])
    mapping.action(Intent(commands=("gripper_toggle",)))
    np.testing.assert_array_equal(mapping.action(Intent()), [0, 0, 0, -1])
    assert mapping.state_text() == "gripper closed"


def test_the_status_line_is_redrawn_in_place_and_messages_go_above_it() -> None:
    episode = {"episode": "0", "episodes": "2", "running": "True", "time_left_s": "4.24"}
    text = status_text(episode, "gripper open", False, "left (+y)")
    assert text == "episode 1/2,  4.2 s left | gripper open | e-stop clear | last: left (+y)"
    paused = status_text({**episode, "paused": "True"}, "gripper open", True, "space (estop)")
    assert "PAUSED" in paused and "e-stop LATCHED (u releases)" in paused
    out = io.StringIO()
    line = StatusLine(out)
    line.show(text)
    line.show(text)  # unchanged: not written again
    line.message("finish: episode 0: success")
    line.close()
    written = out.getvalue()
    assert written.count(text) == 2 and "\n" not in written.split("finish")[0]
    assert written.startswith("\r") and "\x1b[K" in written and written.endswith("\n")
