"""The plain-Python cores under the ROS nodes, tested without a DDS runtime: the task mirror,
the twin loop, the episode judge, the policy controller and the latency tracker."""

from __future__ import annotations

import numpy as np
import pytest

from policies.controller import PolicyController, PolicyMismatchError
from sim.contract.command_rules import CommandRejected
from sim.contract.episode_gate import ResetRefused
from sim.episodes import EpisodeJudge, EpisodeTracker
from sim.latency import LatencyTracker
from sim.mirror import TaskMirror
from sim.tasks import TASKS
from sim.twin_loop import TwinLoop

PUSH_POLICY = "policies/zoo/fetch-push.onnx"


@pytest.mark.parametrize("task", ["fetch-reach", "fetch-push", "hand-block-rotate-z"])
def test_mirror_reproduces_the_env_observation_from_measured_state(task: str) -> None:
    """Given the same state, positions are exact and joint velocities are measured; the
    object's velocity is the finite difference of its poses, so only those entries may
    differ. (After mj_step MuJoCo's derived positions are one physics substep old; the
    mirror's are fresh, so the comparison runs mj_forward on the env's twin first.)"""
    loop, mirror = TwinLoop(task, seed=3), TaskMirror(task)
    loop.reset()
    mirror.sample_goal(3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        loop.apply(dict(zip(loop.io.command_names, _random_targets(loop, rng), strict=True)))
        loop.step()
        state = loop.joint_state()
        mirror.update(state.positions, state.velocities, loop.object_pose())
        observed = mirror.observation()
        loop.twin.forward()
        expected = loop.env._observe()
        np.testing.assert_allclose(observed["achieved_goal"], expected["achieved_goal"], atol=1e-9)
        np.testing.assert_array_equal(observed["desired_goal"], expected["desired_goal"])
    if task == "fetch-reach":  # no object: everything measured but the policy's own target
        measured = _without(mirror, "target_lead")
        np.testing.assert_allclose(
            observed["observation"][measured], expected["observation"][measured], atol=1e-9
        )


def _without(mirror: TaskMirror, name: str) -> np.ndarray:
    """Indices of the observation outside field `name` (targets a policy set, not measured:
    here the joints were commanded directly, so the env's and the mirror's differ)."""
    keep, start = [], 0
    for field, size, _ in mirror.task.observation_fields():
        if field != name:
            keep += range(start, start + size)
        start += size
    return np.array(keep)


def _random_targets(loop: TwinLoop, rng: np.random.Generator) -> np.ndarray:
    low, high = loop.io.command_limits(loop.twin)
    current = loop.twin.data.ctrl[loop.io.actuator_ids]
    return np.clip(current + rng.normal(0, 0.05, current.shape), low, high)


def test_twin_loop_stamps_only_increase_and_reset_uses_seed_plus_episode() -> None:
    loop = TwinLoop("fetch-push", seed=10)
    stamps = [loop.stamp_ns]
    assert loop.reset().seed == 10
    stamps.append(loop.stamp_ns)
    loop.goal_received()
    for _ in range(loop.gate.episode_steps):
        loop.step()
        stamps.append(loop.stamp_ns)
    assert loop.reset().seed == 11
    stamps.append(loop.stamp_ns)
    assert stamps[0] > 0 and np.all(np.diff(stamps) > 0)


def test_twin_loop_serves_resets_by_the_contract_rules() -> None:
    """Refused while an episode runs; the episode awaiting its goal is answered again
    without moving; the seeds of started episodes stay seed + k."""
    loop = TwinLoop("fetch-push", seed=10)
    first = loop.reset()
    again = loop.reset()  # e.g. from outside, before the goal arrived: the same episode
    assert (again.seed, again.repeat, again.move, first.move) == (10, True, False, True)
    loop.gate.goal_overdue()  # no goal within the timeout: the twin steps again
    loop.apply({"shoulder_pan_joint": 0.6})
    loop.step()  # the episode has still not started
    moved = loop.reset()
    assert (moved.seed, moved.repeat, moved.move) == (10, True, True)
    np.testing.assert_array_equal(loop.twin.get_state()[1:], _fresh_state(10)[1:])
    loop.goal_received()
    loop.step()
    with pytest.raises(ResetRefused, match=r"episode 0 .* is running"):
        loop.reset()
    for _ in range(loop.gate.episode_steps - 2):
        loop.step()
    with pytest.raises(ResetRefused, match="1 control periods left"):
        loop.reset()
    loop.step()  # the episode's last state: the task node judges it, then resets
    assert loop.reset().seed == 11


def _fresh_state(seed: int) -> np.ndarray:
    """The twin's state right after the env's reset with `seed` (time aside)."""
    other = TwinLoop("fetch-push", seed=seed)
    other.reset()
    return other.twin.get_state()


def test_estop_holds_the_arm_still_refuses_commands_and_survives_reset() -> None:
    loop = TwinLoop("fetch-push")
    loop.reset()
    loop.apply({"shoulder_pan_joint": 0.6})  # a large move under way
    loop.step()
    loop.engage_estop("test")
    held = loop.joint_state().positions
    for _ in range(25):
        loop.step()
    assert np.abs(loop.joint_state().positions - held).max() < 0.01
    with pytest.raises(CommandRejected, match="estop"):
        loop.apply({"shoulder_pan_joint": 0.0})
    before = loop.twin.get_state()
    with pytest.raises(ResetRefused, match="nothing moves a latched robot"):
        loop.reset()
    np.testing.assert_array_equal(loop.twin.get_state(), before)
    assert loop.estopped, "a reset must never release the e-stop"
    loop.release_estop()
    loop.apply({"shoulder_pan_joint": 0.0})


def test_twin_loop_serves_the_estop_service_and_checks_commands_as_the_driver() -> None:
    loop = TwinLoop("fetch-push")
    loop.reset()
    loop.goal_received()
    assert loop.is_episode_goal(loop.env.goal.copy())
    assert not loop.is_episode_goal(loop.env.goal + 0.01)
    loop.check_command(loop.stamp_ns)  # answers this episode: may be applied
    with pytest.raises(CommandRejected) as older:
        loop.check_command(loop.episode_start_ns - 1)
    assert older.value.reason == "previous_episode"
    assert loop.estop_request(False) == (
        False, "the e-stop is released only by the 'enable' service"
    )  # fmt: skip
    assert not loop.estopped
    assert loop.estop_request(True) == (True, "e-stop latched") and loop.estopped
    with pytest.raises(CommandRejected, match="estop"):
        loop.check_command(loop.stamp_ns)
    assert loop.diagnostics()["estop"] == "estop service"
    rules = loop.command_rules(0.5, allow_partial=False)
    assert tuple(rules.names) == tuple(loop.io.command_names)


def test_episode_judge_agrees_with_the_env_on_success() -> None:
    """Drive the twin with the zoo policy; the judge, seeing only measured state, must
    reach the env's verdict for every episode."""
    loop = TwinLoop("fetch-push", seed=0)
    judge = EpisodeJudge("fetch-push")
    controller = PolicyController.load(PUSH_POLICY, "fetch")
    for _ in range(4):
        goal = judge.start(loop.reset().seed)
        loop.goal_received()
        np.testing.assert_array_equal(goal, loop.env.goal)
        controller.on_goal(goal, 0.0)
        controller.on_estop(False, 0.0)
        result = None
        while result is None:
            state, pose = loop.joint_state(), loop.object_pose()
            result = judge.observe(state.stamp_s, state.positions, state.velocities, pose)
            controller.on_joint_state(state.stamp_ns, state.names, *_pv(state), now_s=0.0)
            controller.on_object_pose(pose, 0.0)
            decision = controller.decide(0.0)
            loop.apply(dict(zip(controller.command_names, decision.targets, strict=True)))
            loop.step()
        env_success = bool(loop.task.is_success(judge.mirror.achieved_goal(), loop.env.goal))
        assert result.steps == TASKS["fetch-push"].max_episode_steps
        assert result.success == env_success
    assert [r.seed for r in judge.results] == [0, 1, 2, 3]


def _pv(state) -> tuple[np.ndarray, np.ndarray]:
    return state.positions, state.velocities


def _fed_controller(now: float = 0.0) -> tuple[PolicyController, TwinLoop]:
    loop = TwinLoop("fetch-push")
    controller = PolicyController.load(PUSH_POLICY, "fetch")
    controller.on_goal(loop.env.goal, now)
    controller.on_estop(False, now)
    state = loop.joint_state()
    controller.on_joint_state(state.stamp_ns, state.names, *_pv(state), now_s=now)
    controller.on_object_pose(loop.object_pose(), now)
    return controller, loop


def test_controller_acts_once_per_state_and_holds_on_stale_inputs() -> None:
    controller, _ = _fed_controller(now=0.0)
    assert controller.decide(0.01).targets is not None
    assert controller.decide(0.02).hold_reason == "no_new_state"
    stale = controller.decide(0.01 + controller.stale_after_s + 0.01)
    assert stale.targets is None and stale.hold_reason == "stale_joint_states"
    assert controller.counters["hold_stale_joint_states"] == 1


@pytest.mark.parametrize(("estop", "reason"), [(True, "estop"), (None, "estop_unknown")])
def test_controller_never_acts_under_estop_or_without_estop_news(estop, reason) -> None:
    controller, _ = _fed_controller()
    if estop is None:
        controller.on_estop(False, -10.0)  # last heard long ago: the source went silent
    else:
        controller.on_estop(estop, 0.0)
    decision = controller.decide(0.01)
    assert decision.targets is None and decision.hold_reason == reason


@pytest.mark.parametrize(
    ("names", "positions", "reason"),
    [
        (["shoulder_pan_joint"], [0.0], "dropped_joint_states_missing_joint"),
        (["a", "a"], [0.0, 1.0], "dropped_joint_states_duplicate_joint"),
        (None, "nan", "dropped_joint_states_non_finite"),
        (None, "short", "dropped_joint_states_size_mismatch"),
    ],
)
def test_controller_drops_and_counts_bad_joint_states(names, positions, reason) -> None:
    controller, loop = _fed_controller()
    state = loop.joint_state()
    names = list(state.names) if names is None else names
    if positions == "nan":
        positions = [float("nan"), *state.positions[1:]]
    elif positions == "short":
        positions = list(state.positions[:-1])
    assert not controller.on_joint_state(2_000_000_000, names, positions, [], now_s=0.0)
    assert controller.counters[reason] == 1


def test_a_policy_for_another_robot_refuses_to_start_naming_both() -> None:
    with pytest.raises(PolicyMismatchError, match=r"'fetch'.*'shadow_hand'"):
        PolicyController.load(PUSH_POLICY, "shadow_hand")


def test_latency_tracker_pairs_states_with_answers_and_counts_misses() -> None:
    tracker = LatencyTracker(deadline_s=0.04)
    tracker.published(1, 0.0)
    tracker.published(2, 0.01)  # first state unanswered, but not armed yet: no miss
    assert tracker.answered(2, 0.012) == pytest.approx(0.002)
    tracker.published(3, 0.04)
    tracker.published(4, 0.09)  # state 3 waited 50 ms > 40 ms: a miss
    assert tracker.answered(4, 0.15) == pytest.approx(0.06)  # late: a miss too
    summary = tracker.summary()
    assert summary.samples == 2 and summary.deadline_misses == 2
    assert tracker.answered(99, 1.0) is None


def test_the_command_carries_its_state_stamp_to_the_nanosecond() -> None:
    """Robot stamps are epoch nanoseconds, which a float of seconds cannot hold."""
    controller, loop = _fed_controller()
    stamp_ns = 1_795_378_132_123_456_789
    state = loop.joint_state()
    controller.on_joint_state(stamp_ns, state.names, *_pv(state), now_s=0.0)
    pose = loop.object_pose()
    controller.on_object_pose(type(pose)(pose.position_m, pose.quaternion_wxyz, stamp_ns), 0.0)
    assert controller.decide(0.0).stamp_ns == stamp_ns


def test_episode_tracker_judges_from_the_first_answered_state() -> None:
    """A commander that joins late costs nothing: states before the first full answer are
    not judged; partial commands and commands from before the goal are no answer."""
    loop = TwinLoop("fetch-reach", seed=4)
    judge = EpisodeJudge("fetch-reach")
    names = loop.io.command_names
    tracker = EpisodeTracker(judge, names, patience_s=10.0)
    loop.reset()
    loop.goal_received()
    tracker.start(4, loop.episode_start_ns, now_s=0.0)
    stamps, result = [], None
    for step in range(80):
        state = loop.joint_state()
        stamps.append(state.stamp_ns)
        result = tracker.on_state(state.stamp_ns, *_pv(state), now_s=0.0)
        if step == 9:
            assert tracker.on_command(state.stamp_ns, list(names[:-1]), 0.0) is None
        if result is not None:
            break
        if step >= 10:
            assert tracker.on_command(state.stamp_ns, list(names), 0.0) is None
        loop.step()
    assert result is not None and result.seed == 4
    assert result.steps == loop.task.max_episode_steps
    assert stamps[-1] == stamps[10] + loop.task.max_episode_steps * round(loop.env.dt * 1e9)
    assert result.answered_states == loop.task.max_episode_steps  # the last is judged unanswered


def test_episode_tracker_judges_an_unanswered_episode_after_its_patience() -> None:
    loop = TwinLoop("fetch-reach", seed=0)
    tracker = EpisodeTracker(EpisodeJudge("fetch-reach"), loop.io.command_names, 1.0)
    loop.reset()
    tracker.start(0, loop.episode_start_ns, now_s=0.0)
    result = None
    for _ in range(loop.task.max_episode_steps + 1):
        state = loop.joint_state()
        result = tracker.on_state(state.stamp_ns, *_pv(state), now_s=2.0) or result
        loop.step()
    assert result is not None and result.answered_states == 0
    assert tracker.unanswered_episodes == 1
