"""The host-side safety layer (hardware/safety.py): limits, rate limits, watchdog, latches.

    .venv/bin/pytest -q tests/test_safety.py

Property tests drive a fake robot that reaches each command exactly (measured = commanded,
optionally plus noise) on a fake clock, for a Fetch-like arm (8 joints) and a Shadow-like hand
(20 actuators), and check every command the layer returns.

R3: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hardware.safety as safety
from hardware.safety import (
    EstopPersistenceError,
    JointLimits,
    SafeCommand,
    SafetyConfig,
    SafetyLayer,
    UnsafeCommand,
    check_finite_in_limits,
)

FETCH = JointLimits(
    names=(
        "torso_lift_joint",
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "upperarm_roll_joint",
        "elbow_flex_joint",
        "forearm_roll_joint",
        "wrist_flex_joint",
        "wrist_roll_joint",
    ),
    position_min=np.array([0.0, -1.6056, -1.221, -3.14, -2.251, -3.14, -2.16, -3.14]),
    position_max=np.array([0.386, 1.6056, 1.518, 3.14, 2.251, 3.14, 2.16, 3.14]),
    velocity_max=np.array([0.1, 1.256, 1.454, 1.571, 1.521, 1.571, 2.268, 2.268]),
    acceleration_max=np.array([0.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2.5, 2.5]),
    effort_max=np.array([450.0, 33.82, 131.76, 76.94, 66.18, 29.35, 25.7, 7.36]),
    position_margin=0.01,
)
_HAND_RANGES = {
    "WRJ1": (-0.489, 0.140),
    "WRJ0": (-0.698, 0.489),
    **{f"{f}J3": (-0.349, 0.349) for f in ("FF", "MF", "RF")},
    **{f"{f}J2": (0.0, 1.571) for f in ("FF", "MF", "RF", "LF")},
    **{f"{f}J1": (0.0, 3.142) for f in ("FF", "MF", "RF", "LF")},
    "LFJ4": (0.0, 0.785),
    "LFJ3": (-0.349, 0.349),
    "THJ4": (-1.047, 1.047),
    "THJ3": (0.0, 1.222),
    "THJ2": (-0.209, 0.209),
    "THJ1": (-0.524, 0.524),
    "THJ0": (-1.571, 0.0),
}
HAND = JointLimits(
    names=tuple(f"A_{n}" for n in _HAND_RANGES),
    position_min=np.array([low for low, _ in _HAND_RANGES.values()]),
    position_max=np.array([high for _, high in _HAND_RANGES.values()]),
    velocity_max=np.full(20, 3.0),
    acceleration_max=np.full(20, 30.0),
    effort_max=np.linspace(1.0, 2.0, 20),
)
ROBOTS = {"fetch": FETCH, "hand": HAND}
T = 0.01
ENOUGH = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BAD_VALUES = [math.nan, math.inf, -math.inf, 1e308, -1e308, 2e6]


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """A fake robot at `positions` that reaches each command within one period."""

    def __init__(self, limits: JointLimits, start: np.ndarray, **config: Any) -> None:
        self.clock = FakeClock()
        self.limits = limits
        self.layer = SafetyLayer(limits, SafetyConfig(**config), self.clock)
        self.positions = np.array(start, dtype=float)
        self.velocities = np.zeros(len(start))
        self.efforts = np.zeros(len(start))
        self.outputs: list[np.ndarray] = []

    def step(self, noise: float = 0.0) -> SafeCommand:
        """One control period: measure (with `noise`), command, move, advance the clock."""
        jitter = noise * np.sin(np.arange(len(self.positions)) + self.clock.now * 1e3)
        command = self.layer.next_command(
            self.positions + jitter, self.velocities + jitter, self.efforts
        )
        if command.positions is not None:
            self.velocities = (command.positions - self.positions) / T
            self.positions = command.positions.copy()
            self.outputs.append(self.positions)
        self.clock.now += T
        return command

    def run(self, cycles: int, noise: float = 0.0) -> list[SafeCommand]:
        return [self.step(noise) for _ in range(cycles)]

    def target(self, fractions: np.ndarray, **kwargs: float) -> np.ndarray:
        """Set a target given as fractions of each joint's range (outside [0, 1]: beyond)."""
        span = self.limits.position_max - self.limits.position_min
        positions = self.limits.position_min + np.asarray(fractions) * span
        self.layer.set_target(positions, **kwargs)
        return positions


def _sent(command: SafeCommand) -> np.ndarray:
    """The positions of a command that must not be torque off."""
    if command.positions is None:
        pytest.fail(f"expected positions, got torque off ({command.reason})")
    return command.positions


def _mid(limits: JointLimits) -> np.ndarray:
    return (limits.position_min + limits.position_max) / 2


def _assert_motion_bounds(trace: list[np.ndarray], limits: JointLimits) -> None:
    """Every command finite, inside the target range, and within the velocity/accel bounds."""
    q = np.array(trace)
    assert np.isfinite(q).all()
    assert (q >= limits.target_min - 1e-12).all() and (q <= limits.target_max + 1e-12).all()
    dq = np.diff(q, axis=0)
    assert (np.abs(dq) <= limits.velocity_max * T * (1 + 1e-9)).all()
    ddq = np.diff(dq, axis=0)
    assert (np.abs(ddq) <= limits.acceleration_max * T * T * (1 + 1e-9)).all()


def _fractions(size: int) -> st.SearchStrategy[list[float]]:
    """Targets as range fractions: in range, far beyond, or exactly at the limits."""
    value = st.one_of(st.floats(-3.0, 4.0), st.sampled_from([-50.0, 0.0, 1.0, 50.0]))
    return st.lists(value, min_size=size, max_size=size)


@st.composite
def _scripts(draw: st.DrawFn, limits: JointLimits) -> tuple[np.ndarray, list]:
    """A start inside the target range and (gap in cycles, target fractions) events."""
    size = len(limits.names)
    start = np.array(draw(st.lists(st.floats(0.05, 0.95), min_size=size, max_size=size)))
    events = draw(st.lists(st.tuples(st.integers(0, 25), _fractions(size)), max_size=12))
    return start, events


# ------------------------------------------------------------------ motion properties
@pytest.mark.parametrize("robot", sorted(ROBOTS))
@ENOUGH
@given(data=st.data(), noise=st.sampled_from([0.0, 1e-4]))
def test_every_command_respects_limits_rates_and_watchdog(
    robot: str, data: st.DataObject, noise: float
) -> None:
    """Far, jumping and oscillating targets never produce a command beyond the limits.

    Without the acceleration clip Δ²q breaks; without the final clamp, far targets break the
    range; without the watchdog, "track" appears after the target is older than 0.1 s.
    """
    limits = ROBOTS[robot]
    start, events = data.draw(_scripts(limits))
    rig = Rig(limits, limits.position_min + start * (limits.position_max - limits.position_min))
    trace = [rig.positions.copy()] * 2 if noise == 0 else []  # at rest where it starts
    last_target_s = -math.inf
    for gap, fractions in [*events, (60, None)]:
        if fractions is not None:
            rig.target(np.array(fractions))
            last_target_s = rig.clock.now
        for _ in range(gap + 1):
            fresh = rig.clock.now - last_target_s <= rig.layer.config.command_timeout_s
            assert rig.step(noise).mode == ("track" if fresh else "hold")
    assert not rig.layer.latched, rig.layer.fault  # no false faults on a well-behaved robot
    _assert_motion_bounds(trace + rig.outputs, limits)


@pytest.mark.parametrize("robot", sorted(ROBOTS))
@ENOUGH
@given(data=st.data(), stale_after=st.integers(1, 80))
def test_a_stale_target_only_decelerates_to_the_stopping_point(
    robot: str, data: st.DataObject, stale_after: int
) -> None:
    """After the watchdog trips, each joint brakes monotonically and rests within v²/(2a)."""
    limits = ROBOTS[robot]
    rig = Rig(limits, _mid(limits))
    fractions = np.array(data.draw(_fractions(len(limits.names))))
    for _ in range(stale_after):
        rig.target(fractions)
        rig.step()
    while True:  # the target ages until the watchdog trips
        q0, v0 = rig.positions.copy(), rig.velocities.copy()
        if rig.step().mode == "hold":
            break
    commands = rig.run(300)
    assert {c.reason for c in commands} == {"stale_target"}
    steps = np.diff(np.array([q0, *rig.outputs[-301:]]), axis=0)
    assert (steps * np.sign(v0) >= -1e-12).all()  # never reverses
    assert np.abs(steps[-1]).max() < 1e-12  # at rest
    travel = np.abs(rig.positions - q0)
    assert (travel <= v0**2 / (2 * limits.acceleration_max) + 1e-12).all()
    assert rig.layer.counters["stale_holds"] == 1
    _assert_motion_bounds(rig.outputs, limits)


def test_a_target_received_too_long_ago_is_never_followed() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8), received_s=rig.clock.now - 0.101)
    commands = rig.run(50)
    assert {(c.mode, c.reason) for c in commands} == {("hold", "stale_target")}
    assert np.array_equal(rig.positions, _mid(FETCH))


def test_a_future_receive_time_cannot_stretch_the_watchdog() -> None:
    """received_s ahead of the clock counts as now, so the target goes stale on time."""
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8), received_s=rig.clock.now + 100.0)
    commands = rig.run(15)
    assert commands[0].mode == "track" and {c.mode for c in commands[11:]} == {"hold"}
    assert rig.layer.counters["future_received_s"] == 1


def test_latest_target_wins_and_out_of_range_targets_are_clamped_and_counted() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    for k in range(1000):
        rig.target(np.full(8, 0.1 + k / 4000))
    rig.target(np.full(8, 2.0))  # beyond every max: clamped to max - margin
    for _ in range(100):
        rig.target(np.full(8, 2.0))
        rig.run(10)
    assert rig.positions == pytest.approx(FETCH.target_max, abs=1e-9)
    assert rig.layer.counters["clamped_targets"] == 101
    assert rig.layer.counters["rate_limited"] > 0
    assert rig.layer.state == "tracking"


def test_denormal_targets_are_ordinary_numbers() -> None:
    rig = Rig(HAND, _mid(HAND))
    target = _mid(HAND)
    target[[3, 7]] = [5e-324, -5e-324]
    rig.layer.set_target(target)
    rig.run(100)
    assert not rig.layer.latched
    assert rig.positions[3] == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ non-finite values
@pytest.mark.parametrize("robot", sorted(ROBOTS))
@ENOUGH
@given(data=st.data(), bad=st.sampled_from(BAD_VALUES), cycles=st.integers(0, 60))
def test_a_nonfinite_target_latches_and_holds_the_last_safe_command(
    robot: str, data: st.DataObject, bad: float, cycles: int
) -> None:
    """Within the cycle it arrives, never substituting 0 and never moving after."""
    limits = ROBOTS[robot]
    joint = data.draw(st.integers(0, len(limits.names) - 1))
    rig = Rig(limits, _mid(limits))
    rig.target(np.array(data.draw(_fractions(len(limits.names)))))
    rig.run(cycles)
    last_safe = rig.positions.copy()  # the last command, or measured for a fresh layer
    target = np.array(rig.layer.limits.target_min)
    target[joint] = bad
    rig.layer.set_target(target)
    assert rig.layer.latched
    assert f"nonfinite target for joint {limits.names[joint]}" in rig.layer.fault
    for command in rig.run(20):
        assert command.mode == "hold" and np.array_equal(_sent(command), last_safe)
    assert rig.layer.counters["nonfinite_target"] == 1


def test_a_nonfinite_measurement_latches_holding_the_last_command() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8))
    rig.run(30)
    last = rig.positions.copy()
    rig.velocities[4] = math.nan
    command = rig.step()
    assert command.mode == "hold" and np.array_equal(_sent(command), last)
    assert rig.layer.fault.startswith("nonfinite_measurement: joint elbow_flex_joint")


def test_without_any_finite_position_the_safe_state_is_torque_off() -> None:
    rig = Rig(FETCH, np.full(8, math.nan))
    command = rig.step()
    assert command.torque_off and command.mode == "torque_off"


# ------------------------------------------------------------------ faults
@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_tracking_error_faults_after_consecutive_cycles_and_holds_at_measured(
    robot: str,
) -> None:
    limits = ROBOTS[robot]
    rig = Rig(limits, _mid(limits), tracking_tolerance=0.05)
    rig.layer.set_target(_mid(limits))
    rig.run(5)
    sagged = rig.positions.copy()
    sagged[-1] += 0.06
    commands = []
    for _ in range(2):
        rig.positions = sagged.copy()  # the joint is pushed away and stays there
        commands.append(rig.step())
    assert commands[0].mode == "track"  # one cycle over tolerance is not yet a fault
    assert commands[1].mode == "hold" and np.array_equal(_sent(commands[1]), sagged)
    assert rig.layer.fault.startswith(f"tracking_error: joint {limits.names[-1]}")
    assert "error 0.06" in rig.layer.fault
    assert rig.layer.counters["tracking_error"] == 1


@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_a_stuck_joint_faults_and_is_held_where_it_is(robot: str) -> None:
    """The joint is commanded to move but measures no velocity while its error grows."""
    limits = ROBOTS[robot]
    start = _mid(limits)
    rig = Rig(limits, start, tracking_tolerance=1.0)
    target = start.copy()
    target[-1] = limits.target_max[-1]
    rig.layer.set_target(target)
    for _ in range(40):
        command = rig.step()
        rig.positions[-1], rig.velocities[-1] = start[-1], 0.0  # it does not move
        rig.layer.set_target(target)
    assert command.mode == "hold" and np.array_equal(_sent(command), start)
    assert rig.layer.fault.startswith(f"stuck_joint: joint {limits.names[-1]}")
    assert rig.layer.counters["stuck_joint"] == 1


def test_effort_over_its_limit_faults_naming_the_joint() -> None:
    rig = Rig(FETCH, _mid(FETCH), effort_margin=1.2)
    rig.efforts[2] = 131.76 * 1.2  # at the limit is allowed
    rig.run(3)
    assert not rig.layer.latched
    rig.positions[2] += 0.01  # pushed: the hold is where it is, not where it was sent
    rig.efforts[2] = -131.76 * 1.21
    held = rig.positions.copy()
    command = rig.step()
    assert command.mode == "hold" and np.array_equal(_sent(command), held)
    assert rig.layer.fault.startswith("effort_limit: joint shoulder_lift_joint effort -159.4")


def test_a_command_failing_the_final_check_latches_and_holds_the_last_safe_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8))
    rig.run(5)
    last = rig.positions.copy()
    monkeypatch.setattr(safety, "rate_limited_step", lambda q, v, *_: (q + 10.0, v))
    command = rig.step()
    assert command.mode == "hold" and np.array_equal(_sent(command), last)
    assert rig.layer.fault.startswith("unsafe_command: unsafe command for joint torso_lift")
    assert rig.layer.counters["unsafe_command"] == 1


def test_torque_off_safe_state_sends_no_positions() -> None:
    rig = Rig(FETCH, _mid(FETCH), safe_state="torque_off")
    rig.layer.engage_estop("button")
    command = rig.step()
    assert command.torque_off and command.positions is None and command.mode == "torque_off"


# ------------------------------------------------------------------ latch, reset, reconnect
def test_estop_freezes_instantly_and_only_reset_releases_it() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8))
    rig.run(40)
    frozen = rig.positions.copy()
    rig.layer.engage_estop("operator")
    for _ in range(30):
        rig.target(np.zeros(8))
        rig.positions = frozen + 0.005  # lagging: the hold is the command, not the measurement
        assert np.array_equal(_sent(rig.step()), frozen)
    assert rig.layer.state == "estop:operator" and rig.layer.estopped
    rig.layer.on_disconnect()
    rig.layer.on_reconnect()
    assert rig.layer.estopped  # reconnecting never clears the latch


def test_reset_needs_a_fresh_target_and_restarts_from_measured() -> None:
    """R3: no motion between fault and reset; after it, motion starts at the measured state."""
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8))
    rig.run(40)
    rig.layer.engage_estop("operator")
    rig.run(5)
    queued_s = rig.clock.now
    rig.clock.now += 0.5
    rig.positions += 0.02  # moved by hand while stopped
    rig.layer.reset()
    rig.target(np.zeros(8), received_s=queued_s)  # arrived before the reset: discarded
    measured = rig.positions.copy()
    commands = rig.run(20)
    assert {c.reason for c in commands} == {"awaiting_fresh_target"}
    assert np.array_equal(rig.positions, measured)
    assert rig.layer.counters["target_before_reset"] == 1
    rig.target(np.zeros(8))
    assert rig.step().mode == "track"
    step = np.abs(rig.positions - measured)
    assert (step > 0).all() and (step <= FETCH.acceleration_max * T * T * (1 + 1e-9)).all()


def test_estop_persists_across_a_new_layer_until_reset(tmp_path) -> None:
    path = tmp_path / "estop.json"
    rig = Rig(FETCH, _mid(FETCH), estop_latch_path=str(path))
    rig.layer.engage_estop("button")
    assert json.loads(path.read_text())["latched"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["estop.json"]  # written atomically
    restarted = Rig(FETCH, _mid(FETCH) + 0.01, estop_latch_path=str(path))
    assert restarted.layer.state == "estop:persisted: button"
    restarted.target(np.ones(8))
    assert np.array_equal(_sent(restarted.step()), _mid(FETCH) + 0.01)  # at measured
    restarted.layer.reset()
    assert json.loads(path.read_text())["latched"] is False
    assert not Rig(FETCH, _mid(FETCH), estop_latch_path=str(path)).layer.latched


def test_an_unreadable_latch_file_starts_latched(tmp_path) -> None:
    path = tmp_path / "estop.json"
    path.write_text("{trunc")
    rig = Rig(FETCH, _mid(FETCH), estop_latch_path=str(path))
    assert rig.layer.estopped and "unreadable latch file" in rig.layer.state


def test_a_failed_latch_write_raises_but_the_latch_holds(tmp_path) -> None:
    """The e-stop is in force before the file is written; a reset that cannot clear it fails."""
    folder = tmp_path / "run"
    folder.mkdir()
    rig = Rig(FETCH, _mid(FETCH), estop_latch_path=str(folder / "estop.json"))
    folder.rmdir()
    with pytest.raises(EstopPersistenceError, match=r"estop\.json"):
        rig.layer.engage_estop("button")
    assert rig.layer.estopped
    with pytest.raises(EstopPersistenceError):
        rig.layer.reset()
    assert rig.layer.estopped and rig.step().mode == "hold"


def test_a_latch_file_in_a_missing_directory_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Rig(FETCH, _mid(FETCH), estop_latch_path=str(tmp_path / "no" / "estop.json"))


def test_disconnect_drops_the_target_and_restarts_from_measured() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.ones(8))
    rig.run(5)
    rig.layer.on_disconnect()
    rig.target(np.ones(8))  # arrives while disconnected: not replayed
    rig.positions += 0.01
    measured = rig.positions.copy()
    rig.layer.on_reconnect()
    commands = rig.run(5)
    assert {c.reason for c in commands} == {"no_target"}
    assert np.array_equal(rig.positions, measured)


# ------------------------------------------------------------------ configuration
def test_overrides_narrow_the_range_and_set_rates() -> None:
    tight = FETCH.with_overrides(
        {"shoulder_pan_joint": {"position_max": 1.0, "velocity_max": 0.5}}
    )
    assert tight.position_max[1] == 1.0 and tight.velocity_max[1] == 0.5
    assert FETCH.position_max[1] == 1.6056  # the model's limits are untouched
    rig = Rig(tight, _mid(FETCH))
    for _ in range(40):
        rig.target(np.ones(8))
        rig.run(10)
    assert rig.positions[1] == pytest.approx(1.0 - tight.position_margin)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"elbow": {"velocity_max": 1.0}}, "unknown joint 'elbow'.*elbow_flex_joint"),
        ({"elbow_flex_joint": {"vmax": 1.0}}, "unknown key 'vmax'.*velocity_max"),
        ({"elbow_flex_joint": {"position_min": -3.0}}, "elbow_flex_joint.*widens"),
        ({"elbow_flex_joint": {"position_max": 2.5}}, "elbow_flex_joint.*widens"),
        ({"elbow_flex_joint": {"velocity_max": -1.0}}, "velocity_max of joint elbow_flex_joint"),
        ({"elbow_flex_joint": {"position_min": 2.0, "position_max": 1.0}}, "elbow_flex_joint"),
        ({"elbow_flex_joint": {"effort_max": "lots"}}, "elbow_flex_joint.effort_max"),
    ],
)
def test_invalid_overrides_name_the_problem(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FETCH.with_overrides(overrides)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"position_min": np.array([0.0, 2.0])}, "joint b position_min 2.0"),
        ({"velocity_max": np.array([1.0, 0.0])}, "velocity_max of joint b"),
        ({"effort_max": np.array([1.0, math.inf])}, "effort_max of joint b"),
        ({"acceleration_max": np.ones(3)}, r"shape \(2,\)"),
        ({"position_margin": 1.0}, "no range for joint a"),
        ({"names": ("a", "a")}, "unique"),
    ],
)
def test_invalid_joint_limits_name_the_joint(change: dict, message: str) -> None:
    fields = dict(
        names=("a", "b"),
        position_min=np.array([-1.0, -1.0]),
        position_max=np.array([1.0, 1.0]),
        velocity_max=np.ones(2),
        acceleration_max=np.ones(2),
        effort_max=np.ones(2),
    )
    with pytest.raises(ValueError, match=message):
        JointLimits(**{**fields, **change})


@pytest.mark.parametrize(
    "change",
    [
        {"command_timeout_s": 0.0},
        {"period_s": math.nan},
        {"tracking_violation_cycles": 0},
        {"stuck_cycles": 1.5},
        {"safe_state": "off"},
    ],
)
def test_invalid_safety_config_is_refused(change: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        SafetyConfig(**change)


def test_check_finite_in_limits_names_the_joint_and_value() -> None:
    good = _mid(FETCH)
    assert np.array_equal(check_finite_in_limits(good, FETCH), good)
    for value, detail in [(math.nan, "not finite"), (3.0, "outside")]:
        bad = good.copy()
        bad[6] = value
        with pytest.raises(UnsafeCommand, match=f"wrist_flex_joint: {value!r} .*{detail}"):
            check_finite_in_limits(bad, FETCH)
    with pytest.raises(ValueError, match="shape"):
        check_finite_in_limits(good[:3], FETCH)


def test_wrong_lengths_are_programming_errors() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        rig.layer.set_target(np.zeros(7))
    with pytest.raises(ValueError, match="measured efforts"):
        rig.layer.next_command(np.zeros(8), np.zeros(8), np.zeros(9))


def test_diagnostics_are_flat_and_count_interventions() -> None:
    rig = Rig(FETCH, _mid(FETCH))
    rig.target(np.full(8, 9.0))
    rig.run(20)
    values = rig.layer.diagnostics()
    assert all(isinstance(v, str | int | float | bool) for v in values.values())
    assert values["state"] == "holding:stale_target"
    assert values["count.clamped_targets"] == 1 and values["count.stale_holds"] == 1
