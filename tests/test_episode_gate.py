"""The contract's `reset` rules (sim/contract/episode_gate.py), and the driver core serving
them over a real backend: refused while latched or while an episode runs, answered again while the
episode awaits its goal, seed + k otherwise."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hardware.driver_core import DriverCore
from hardware.interface import DeviceRefused
from hardware.safety import SafetyConfig
from hardware.sim_backend import SimRobot
from sim.contract.command_rules import CommandRejected
from sim.contract.episode_gate import EpisodeGate, ResetRefused


def _start(gate: EpisodeGate) -> int:
    plan = gate.plan(None)
    gate.commit(plan)
    return plan.seed


def test_seeds_count_started_episodes_and_a_waiting_episode_is_answered_again() -> None:
    gate = EpisodeGate(seed=7, episode_steps=3)
    assert _start(gate) == 7
    again = gate.plan(None)
    assert (again.seed, again.repeat, again.move) == (7, True, False)
    gate.commit(again)  # a repeat that moves nothing changes nothing
    gate.goal_overdue()  # no goal: the robot moves again, the episode has not started
    moved = gate.plan(None)
    assert (moved.seed, moved.repeat, moved.move) == (7, True, True) and not gate.running
    gate.commit(moved)
    assert gate.holding and gate.started == 1
    gate.goal_arrived()
    for _ in range(3):
        gate.period_passed()
    assert _start(gate) == 8 and gate.started == 2


def test_a_running_episode_refuses_a_reset_and_uses_no_seed() -> None:
    gate = EpisodeGate(seed=0, episode_steps=5)
    _start(gate)
    gate.goal_arrived()
    gate.period_passed()
    with pytest.raises(ResetRefused, match=r"episode 0 .seed 0. is running, 4 control") as e:
        gate.plan(None)
    assert e.value.reason == "episode_running" and gate.started == 1


def test_a_latch_refuses_every_reset_even_between_episodes() -> None:
    gate = EpisodeGate(seed=0, episode_steps=None)  # no task: episodes never block resets
    with pytest.raises(ResetRefused, match=r"estop:operator.*'enable'") as e:
        gate.plan("estop:operator")
    assert e.value.reason == "latched" and gate.started == 0
    assert _start(gate) == 0


def test_bad_episode_length_is_refused() -> None:
    with pytest.raises(ValueError, match="episode_steps"):
        EpisodeGate(0, 0)


@pytest.fixture
def core(tmp_path):
    safety = SafetyConfig(period_s=0.01, estop_latch_path=str(tmp_path / "latch.json"))
    robot = SimRobot("fetch", safety, task="fetch-push")
    core = DriverCore(robot, publish_every=4, gate=EpisodeGate(3, 50), goal_timeout_s=0.2)
    core.start()
    yield core
    core.stop()


def _state(core: DriverCore) -> np.ndarray:
    core.cycle(time.time_ns())
    measured = core.interface.last_measurement
    assert measured is not None
    return np.asarray(measured.positions).copy()


def test_driver_reset_while_estopped_is_refused_and_moves_nothing(core: DriverCore) -> None:
    before = _state(core)
    core.estop("test")
    ok, why = core.reset_request(time.time_ns())
    assert not ok and "estop:test" in why and "nothing moves a latched robot" in why
    for _ in range(20):
        after = _state(core)
    assert np.abs(after - before).max() < 0.01 and core.gate.started == 0


def test_driver_holds_commands_until_the_goal_then_refuses_resets_mid_episode(
    core: DriverCore,
) -> None:
    now = time.time_ns()
    ok, answer = core.reset_request(now)
    assert ok and answer.startswith("seed=3 ")
    names = core.interface.limits.names
    target = dict.fromkeys(names, 0.0)
    with pytest.raises(CommandRejected, match="awaiting_goal"):
        core.on_command(target, now + 1, now + 1)
    assert core.reset_request(time.time_ns()) == (True, answer.split(" (")[0])  # repeat
    core.on_goal(now)  # a goal from before the reset is the previous episode's
    assert core.gate.holding
    core.on_goal(time.time_ns())
    assert not core.gate.holding
    with pytest.raises(CommandRejected, match="previous_episode"):
        core.on_command(target, now - 1, time.time_ns())
    ok, why = core.reset_request(time.time_ns())
    assert not ok and "is running" in why


def test_driver_stops_waiting_for_a_goal_that_never_comes(core: DriverCore) -> None:
    core.reset_request(time.time_ns())
    time.sleep(0.25)
    _state(core)
    assert not core.gate.holding and core.gate.awaiting_goal and core.goal_timeouts == 1
    now = time.time_ns()
    core.on_command(dict.fromkeys(core.interface.limits.names, 0.0), now, now)
    ok, answer = core.reset_request(time.time_ns())  # not started: the same seed again
    assert ok and answer.startswith("seed=3 ") and core.gate.holding


def test_the_interface_refuses_a_scene_reset_while_latched(core: DriverCore) -> None:
    """The second of two independent checks (the driver core's gate is the first)."""
    core.interface.estop("test")
    with pytest.raises(DeviceRefused, match="scene reset refused: estop:test"):
        core.interface.scene_reset(1)
