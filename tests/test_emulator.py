"""The emulated serial device: firmware semantics, R1 watchdog, faults, pty link, CLI, R26.

    .venv/bin/pytest -q tests/test_emulator.py

Most tests drive `Emulator` in virtual time through `VirtualHost` (frames in, frames out, no
clock); the pty and `twinbridge emulate` tests run in real time with pyserial, as the driver
does. R1's numbers (measured over 1000 trials per robot) are in `SETTLE_BOUND_MS`.

R1, R26: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial

from hardware.emulator import Emulator, EmulatorConfig
from hardware.emulator_cli import ROBOTS
from hardware.faults import (
    ByteFaults,
    Deviations,
    FaultConfig,
    ReplyFaults,
    SensorOffset,
    StuckJoint,
    WeakServo,
)
from hardware.protocol import (
    NO_JOINT,
    SYNC,
    Ack,
    AckResult,
    Command,
    DeviceInfo,
    Enable,
    EStop,
    Fault,
    FaultCode,
    Frame,
    FrameParser,
    Hello,
    Message,
    ObjectPose,
    ResetFault,
    SceneReset,
    State,
    Status,
    crc8,
    encode_frame,
)
from hardware.pty_link import PtyLink
from hardware.robots import robot_tables
from sim.errors import ConfigError
from sim.robots import ROBOT_FOLDERS
from sim.twin_loop import TwinLoop

ROOT = Path(__file__).resolve().parents[1]
TWINBRIDGE = [sys.executable, "-m", "sim.cli", "emulate"]
EXAMPLE = ROOT / "hardware" / "config" / "faults-example.yaml"
QUIET = EmulatorConfig(deviations=Deviations.none())
# R1: HOLDING starts exactly 30 ms after the last valid Command, and the hold brakes the
# joints (PROTOCOL.md: "HOLD: zero velocity, brake"; the emulator's brakes decelerate every
# joint at 2 x the robot's acceleration limit), so every joint is under 0.01 rad/s (m/s)
# within 30 ms + 1 step + v/a_stop of the last valid frame (v: the fastest joint's speed when
# the hold begins, a_stop: the acceleration limit). A bare position hold (target := measured,
# no brake) swings through its hold point instead: median 226 ms to still, max 860 ms.
SETTLE_WINDOW_MS = 500  # every robot: the R1 bound is checked per trial below


class VirtualHost:
    """A host on a virtual clock: sends frames, steps the device, decodes what comes back."""

    def __init__(self, emulator: Emulator):
        self.device = emulator
        self.parser = FrameParser()
        self.frames: list[Frame] = []
        self.seq = 0
        self.t = 0.0

    def send(self, message: Message) -> int:
        seq, self.seq = self.seq, self.seq + 1
        self.device.receive(encode_frame(message, seq), self.t)
        return seq

    def run(self, steps: int, decode: bool = True) -> list[Frame]:
        """Step the device; returns the frames that arrived meanwhile."""
        new: list[Frame] = []
        for _ in range(steps):
            self.t += self.device.timestep_s
            self.device.tick(self.t)
            out = self.device.pending_output(self.t)
            if decode:
                new += self.parser.feed(out, self.t)
        self.frames += new
        return new

    def request(self, message: Message) -> Ack:
        seq = self.send(message)
        acks = [m for m in self.messages(Ack, self.run(3)) if m.acked_seq == seq]
        if len(acks) != 1:
            raise AssertionError(f"expected one Ack for seq {seq}, got {acks}")
        return acks[0]

    @staticmethod
    def messages(kind: type, frames: list[Frame]) -> list[Any]:
        return [f.message for f in frames if isinstance(f.message, kind)]

    def last_state(self) -> State:
        states = self.messages(State, self.frames)
        if not states:
            raise AssertionError("no State received")
        return states[-1]


def enabled_host(robot: str = "fetch", config: EmulatorConfig = QUIET, seed: int = 0):
    host = VirtualHost(Emulator(robot, config, seed))
    assert host.request(Enable(True)).result == AckResult.OK
    host.run(10)
    return host


def commands(device: Emulator) -> list[dict[str, Any]]:
    return device.log.events("command")


# -- firmware semantics ------------------------------------------------------------------------
@pytest.mark.parametrize("robot", ROBOTS)
def test_hello_answers_the_robot_tables_device_info(robot: str) -> None:
    device = Emulator(robot, QUIET)
    host = VirtualHost(device)
    host.send(Hello())
    infos = host.messages(DeviceInfo, host.run(6))
    has_object = TwinLoop(device.task).object_pose() is not None
    expected = robot_tables(robot).device_info(has_object, supports_scene_reset=True)
    assert len(infos) == 1
    assert encode_frame(infos[0], 0) == encode_frame(expected, 0)
    assert infos[0].reports_object_pose == has_object  # the emulated task has an object
    assert host.last_state().status == 0  # power-up: disabled, no flags


def test_state_every_10_ms_then_object_pose_with_the_same_time() -> None:
    host = VirtualHost(Emulator("fetch", QUIET))
    frames = host.run(50)
    kinds = [type(f.message) for f in frames]
    assert kinds == [State, ObjectPose] * 10
    states = host.messages(State, frames)
    poses = host.messages(ObjectPose, frames)
    assert [s.device_time_us for s in states] == [10_000 * (i + 1) for i in range(10)]
    assert [p.device_time_us for p in poses] == [s.device_time_us for s in states]
    assert len(states[0].servo_positions) == len(robot_tables("fetch").command_names)


def test_servo_and_joint_measurements_come_from_the_physics() -> None:
    host = VirtualHost(Emulator("fetch", QUIET))
    host.run(5)
    state, plant = host.last_state(), host.device.plant
    np.testing.assert_allclose(
        state.servo_positions, plant.data.actuator_length[plant.actuators], atol=1e-6
    )
    np.testing.assert_allclose(state.positions, plant.data.qpos[plant.io.qpos_indices], atol=1e-6)


def test_estop_latches_until_reset_and_enable_is_refused_meanwhile() -> None:
    host = enabled_host()
    assert host.last_state().status == Status.ENABLED
    assert host.request(EStop()).result == AckResult.OK
    refused = host.request(Enable(True))
    assert refused.result == AckResult.REFUSED and "ResetFault" in refused.message
    host.send(Hello())
    host.run(5)
    assert host.last_state().status & Status.ESTOP  # Hello clears no latch
    assert host.request(ResetFault()).result == AckResult.OK
    host.run(5)
    assert host.last_state().status == Status.ENABLED


def test_enable_off_logs_a_torque_disable_per_servo() -> None:
    host = enabled_host()
    assert host.request(Enable(False)).result == AckResult.OK
    disabled = host.device.log.events("torque_disable")
    assert [e["servo"] for e in disabled] == list(robot_tables("fetch").command_names)
    host.run(5)
    assert host.last_state().status == 0


def test_scene_reset_moves_to_the_seeded_episode_and_holds() -> None:
    host = enabled_host()
    assert host.request(SceneReset(5)).result == AckResult.OK
    reference = TwinLoop(host.device.task)
    reference.env.reset(seed=5)
    expected = reference.joint_state().positions
    host.run(5)
    np.testing.assert_allclose(host.last_state().positions, expected, atol=2e-3)
    assert host.last_state().status == Status.ENABLED


def test_a_latched_device_refuses_a_scene_reset_and_nothing_moves() -> None:
    """PROTOCOL.md D9: a scene reset moves the robot and the object; not while latched."""
    host = enabled_host()
    assert host.request(EStop()).result == AckResult.OK
    host.run(5)
    before = host.last_state().positions
    refused = host.request(SceneReset(5))
    assert refused.result == AckResult.REFUSED and "e-stop latched" in refused.message
    host.run(10)
    np.testing.assert_allclose(host.last_state().positions, before, atol=1e-4)
    assert not host.device.log.events("scene_reset")
    assert host.device.log.events("scene_reset_refused")


def test_a_valid_command_reaches_the_servos_after_the_latency_at_their_speed_limit() -> None:
    config = EmulatorConfig(deviations=Deviations.from_mapping({"command_latency_ms": 4.0}))
    host = enabled_host(config=config)
    plant = host.device.plant
    target = host.device.targets.copy()
    target[0] += 0.02  # 8 steps at 1.256 rad/s
    seq = host.send(Command(target))
    host.run(2)
    assert plant.goal[0] != pytest.approx(target[0])  # still in the latency pipeline
    host.run(1)
    assert plant.goal[0] == pytest.approx(target[0])
    setpoints = []
    for _ in range(10):  # before the watchdog trips, 30 ms after the command
        host.run(1)
        setpoints.append(plant.data.ctrl[plant.actuators[0]])
    speed_max = robot_tables("fetch").limits.velocity_max[0]
    assert np.abs(np.diff(setpoints)).max() <= speed_max * host.device.timestep_s + 1e-9
    assert setpoints[-1] == pytest.approx(target[0])
    assert host.last_state().last_command_seq == seq


def _too_far(target: np.ndarray) -> np.ndarray:
    target[0] += 0.1  # shoulder_pan: at most 1.256 rad/s x 30 ms = 0.038 rad per command
    return target


def _out_of_limit(target: np.ndarray) -> np.ndarray:
    target[7] = 0.06  # gripper range [0, 0.05] m
    return target


INVALID = {
    "nan": (lambda t: np.where(np.arange(len(t)) == 3, np.nan, t), "non_finite", 3),
    "inf": (lambda t: np.where(np.arange(len(t)) == 2, -np.inf, t), "non_finite", 2),
    "out_of_limit": (_out_of_limit, "out_of_limit", 7),
    "too_far": (_too_far, "too_far", 0),
    "count": (lambda t: t[:-1], "count", NO_JOINT),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_command_is_rejected_and_never_changes_the_target(case: str) -> None:
    host = enabled_host()
    device = host.device
    before, ctrl_before = device.targets.copy(), device.plant.data.ctrl.copy()
    make, reason, joint = INVALID[case]
    goal_before = device.plant.goal.copy()
    seq = host.send(Command(make(np.clip(before, device.limits.low, device.limits.high))))
    np.testing.assert_array_equal(device.targets, before)
    np.testing.assert_array_equal(device.plant.goal, goal_before)
    np.testing.assert_array_equal(device.plant.data.ctrl, ctrl_before)
    faults = host.messages(Fault, host.run(3))
    rejections = [(f.joint, f.message) for f in faults if f.code == FaultCode.COMMAND_REJECTED]
    assert len(rejections) == 1 and rejections[0][0] == joint
    entry = commands(device)[-1]
    assert (entry["seq"], entry["accepted"], entry["reason"]) == (seq, False, reason)
    assert not device.status & Status.FAULT  # a rejection is not latched
    json.dumps(entry, allow_nan=False)  # the log stays strict JSON: "nan", "-inf" as strings


@pytest.mark.parametrize("state", ["disabled", "estop"])
def test_commands_are_dropped_while_disabled_or_estopped(state: str) -> None:
    host = enabled_host()
    device = host.device
    host.request(Enable(False) if state == "disabled" else EStop())
    before, ctrl_before = device.targets.copy(), device.plant.data.ctrl.copy()
    target = before.copy()
    target[0] += 0.01
    goal_before = device.plant.goal.copy()
    host.send(Command(target))
    np.testing.assert_array_equal(device.targets, before)
    np.testing.assert_array_equal(device.plant.goal, goal_before)
    np.testing.assert_array_equal(device.plant.data.ctrl, ctrl_before)
    frames = host.run(3)
    assert not host.messages(Fault, frames) and not host.messages(Ack, frames)
    entry = commands(device)[-1]
    assert (entry["accepted"], entry["reason"]) == (False, state)


def test_holding_measures_a_jump_from_the_measured_position() -> None:
    host = enabled_host()
    device = host.device
    host.run(20)  # the watchdog trips: HOLDING
    assert device.holding
    device.targets[0] += 0.5  # white box: a stale target the jump must not be measured from
    measured = device.plant.servo_positions()
    target = np.clip(measured, device.limits.low, device.limits.high)
    target[0] += 0.03
    host.send(Command(target))
    assert commands(device)[-1]["accepted"] and not device.holding


# -- R1: the device watchdog -------------------------------------------------------------------
def _motion(device: Emulator, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A smooth random trajectory around the measured pose, within velocity and acceleration
    limits: (start, amplitude, angular frequency per channel)."""
    limits = robot_tables(device.robot).limits
    low, high = device.limits.low, device.limits.high
    start = np.clip(device.plant.servo_positions(), low, high)
    omega = rng.uniform(2.0, 6.0, len(start))
    amplitude = np.minimum(
        0.1 * (high - low),
        np.minimum(0.5 * limits.velocity_max / omega, 0.5 * limits.acceleration_max / omega**2),
    )
    return start, amplitude, omega


def _r1_trial(host: VirtualHost, rng: np.random.Generator, bound_steps: int) -> tuple:
    """Command a motion, stop at a random command; (trip delay us, settle ms, speed at stop).

    Settled: every joint under 0.01 rad/s (m/s) for 100 ms; the settle time is when that
    began (or the end of the `bound_steps` window if it never did).
    """
    device = host.device
    start, amplitude, omega = _motion(device, rng)
    phase = rng.uniform(0, 2 * np.pi, len(start))
    low, high = device.limits.low, device.limits.high
    last = 0
    for k in range(int(rng.integers(5, 20))):
        offset = np.sin(omega * k * 0.01 + phase) - np.sin(phase)
        host.send(Command(np.clip(start + amplitude * offset, low, high)))
        if device.log.entries[-1]["accepted"]:
            last = device.device_time_us
        host.run(int(rng.integers(4, 7)), decode=False)
    dofs, qvel = device.plant.io.qvel_indices, device.plant.data.qvel
    speed_at_stop = float(np.abs(qvel[dofs]).max())
    moving_until, still = device.device_time_us, 0
    for _ in range(bound_steps):  # device.tick, not host.run: 1000 trials must be quick
        host.t += device.timestep_s
        device.tick(host.t)
        speed = float(np.abs(qvel[dofs]).max())
        if not device.holding:  # v of "v / a_stop": the speed when the hold begins
            speed_at_stop = max(speed_at_stop, speed)
        moving_until = device.device_time_us if speed >= 0.01 else moving_until
        still = still + 1 if speed < 0.01 else 0
        if still >= 50:
            break
    else:
        moving_until = device.device_time_us
    device.pending_output(float("inf"))  # drop what the host would have read
    trips = (e["t_us"] for e in reversed(device.log.entries) if e["event"] == "watchdog")
    trip = next(trips) - last if device.holding else -1
    return trip, (moving_until - last) / 1000, speed_at_stop


@pytest.mark.parametrize("robot", ROBOTS)
def test_r1_watchdog_holds_within_30_ms_and_the_robot_stops(robot: str) -> None:
    host = enabled_host(robot, EmulatorConfig(), seed=3)
    rng = np.random.default_rng(7)
    window_ms = SETTLE_WINDOW_MS
    trials = [_r1_trial(host, rng, window_ms // 2 + 20) for _ in range(1000)]
    trips, settle_ms, speeds = (np.array(x) for x in zip(*trials, strict=True))
    step_us = round(host.device.timestep_s * 1e6)
    assert trips.min() >= 30_000 and trips.max() <= 30_000 + step_us, trips.max()
    assert host.device.counters["watchdog_trips"] == 1000  # one per stop, one Fault each
    assert host.device.counters["tx_Fault"] == 1000
    assert speeds.max() > 0.2  # really stopped mid-motion
    a_stop = robot_tables(robot).limits.acceleration_max.min()
    step_ms = host.device.timestep_s * 1000
    allowed_ms = 30 + step_ms + speeds / a_stop * 1000
    late = settle_ms > allowed_ms
    summary = f"settle ms max {settle_ms.max()} median {np.median(settle_ms)}; late {late.sum()}"
    assert not late.any(), summary


# -- disabled safe states ----------------------------------------------------------------------
def test_a_disabled_hand_is_limp_and_a_disabled_arm_is_braked() -> None:
    hand = VirtualHost(Emulator("shadow_hand", QUIET))
    hand.run(10)
    assert hand.device.disabled_mode == "limp"
    assert np.all(hand.last_state().servo_efforts == 0.0)
    arm = VirtualHost(Emulator("fetch", QUIET))
    before = arm.device.plant.servo_positions()
    arm.run(250)
    assert arm.device.disabled_mode == "brake"
    np.testing.assert_allclose(arm.device.plant.servo_positions(), before, atol=2e-3)


def test_safe_state_table_covers_every_robot() -> None:
    assert set(ROBOTS) == set(ROBOT_FOLDERS)


# -- servo faults ------------------------------------------------------------------------------
def _ramp(host: VirtualHost, channel: int, per_command: float, count: int) -> list[State]:
    target = host.device.targets.copy()
    states = []
    for _ in range(count):
        target[channel] += per_command
        host.send(Command(target))
        states += host.messages(State, host.run(5))
    return states


def test_a_stuck_joint_does_not_move_while_its_commands_do() -> None:
    faults = FaultConfig(stuck_joint=StuckJoint("elbow_flex_joint", at_s=0.2))
    host = enabled_host(config=EmulatorConfig(deviations=Deviations.none(), faults=faults))
    elbow = robot_tables("fetch").command_names.index("elbow_flex_joint")
    states = _ramp(host, elbow, -0.02, 40)  # 0.8 rad in 0.4 s
    early = [s.servo_positions[elbow] for s in states if s.device_time_us < 180_000]
    late = [s.servo_positions[elbow] for s in states if s.device_time_us > 220_000]
    assert early[-1] - early[0] < -0.05  # it moved before the fault
    assert max(late) - min(late) < 1e-9  # then not at all
    assert host.device.targets[elbow] < late[0] - 0.3  # while its target kept going
    assert host.device.log.events("fault_injection")[0]["joints"] == ["elbow_flex_joint"]


def test_a_sensor_offset_shifts_measurements_not_the_arm() -> None:
    faults = FaultConfig(sensor_offset=SensorOffset("shoulder_pan_joint", at_s=0.1, offset=0.2))
    host = enabled_host(config=EmulatorConfig(deviations=Deviations.none(), faults=faults))
    plant = host.device.plant
    physical = plant.data.qpos[plant.io.qpos_indices[0]]
    host.run(50)
    state = host.last_state()
    assert state.servo_positions[0] == pytest.approx(physical + 0.2, abs=1e-4)
    assert state.positions[0] == pytest.approx(physical + 0.2, abs=1e-4)
    assert plant.data.qpos[plant.io.qpos_indices[0]] == pytest.approx(physical, abs=1e-4)


def test_a_weak_servo_delivers_half_its_torque() -> None:
    faults = FaultConfig(weak_servo=WeakServo("shoulder_lift_joint", at_s=0.0, torque_scale=0.5))
    device = Emulator("fetch", EmulatorConfig(deviations=Deviations.none(), faults=faults))
    nominal = Emulator("fetch", QUIET)
    host = VirtualHost(device)
    host.run(1)
    channel = 1
    actuator = device.plant.actuators[channel]
    forcerange = device.plant.model.actuator_forcerange[actuator]
    np.testing.assert_allclose(forcerange, nominal.plant.model.actuator_forcerange[actuator] / 2)
    host.request(Enable(True))
    _ramp(host, channel, 0.03, 10)
    assert np.abs(device.plant.servo_efforts()[channel]) <= forcerange[1] + 1e-9


# -- link faults and determinism -----------------------------------------------------------
NOISY_LINK = FaultConfig(
    host_to_device=ByteFaults(
        bit_flip_rate=1e-3,
        duplicate_rate=1e-3,
        insert_rate=1e-3,
        sync_inject_rate=0.02,
        drop_frame_rate=0.02,
    ),
    device_to_host=ReplyFaults(
        bit_flip_rate=2e-4,
        duplicate_rate=2e-4,
        insert_rate=2e-4,
        sync_inject_rate=0.02,
        drop_frame_rate=0.02,
        split_rate=0.05,
        truncate_rate=0.01,
        latency_spike_rate=0.01,
    ),
    stuck_joint=StuckJoint("wrist_flex_joint", at_s=0.3),
)


def _scripted_session(seed: int) -> tuple[list[dict[str, Any]], bytes]:
    device = Emulator("fetch", EmulatorConfig(faults=NOISY_LINK), seed=seed)
    host = VirtualHost(device)
    out = []
    host.send(Hello())
    host.send(Enable(True))
    target = np.clip(device.targets, device.limits.low, device.limits.high)
    for k in range(60):
        target[0] += 0.005 * np.sin(k / 10)
        host.send(Command(target))
        for _ in range(5):
            host.t += device.timestep_s
            device.tick(host.t)
            out.append(device.pending_output(host.t))
    return list(device.log.entries), b"".join(out)


def test_the_same_seed_gives_the_same_log_and_bytes() -> None:
    log_a, bytes_a = _scripted_session(seed=11)
    log_b, bytes_b = _scripted_session(seed=11)
    log_c, _ = _scripted_session(seed=12)
    injections = [e for e in log_a if e["event"] == "fault_injection"]
    assert len(injections) > 20
    assert log_a == log_b and bytes_a == bytes_b
    assert log_a != log_c


def test_a_damaged_reply_stream_still_decodes_to_only_valid_frames() -> None:
    device = Emulator("fetch", EmulatorConfig(faults=NOISY_LINK), seed=2)
    sent: set[bytes] = set()
    outgoing = device.uplink.outgoing

    def recording(frame: bytes) -> list[tuple[float, bytes]]:
        sent.add(frame)
        return outgoing(frame)

    device.uplink.outgoing = recording  # type: ignore[method-assign]
    host = VirtualHost(device)
    frames = host.run(2500) + host.run(50)
    decoded = [encode_frame(f.message, f.seq) for f in frames]
    assert all(frame in sent for frame in decoded)
    assert 0.7 * len(sent) < len(decoded) < len(sent)
    assert host.parser.errors > 0
    for kind in ("bit_flip", "split", "truncate", "latency_spike", "sync_inject", "drop_frame"):
        assert device.counters[f"injected_{kind}"] > 0, kind


def test_a_damaged_command_stream_reaches_the_device_only_as_sent_commands() -> None:
    host = enabled_host(config=EmulatorConfig(deviations=Deviations.none(), faults=NOISY_LINK))
    device = host.device
    sent = {}
    target = np.clip(device.targets, device.limits.low, device.limits.high)
    for k in range(400):
        target[0] += 0.002 * np.sin(k / 20)
        sent[host.send(Command(target))] = target.astype(np.float32).tolist()
        host.run(5, decode=False)
    reached = commands(device)
    assert 0.6 * len(sent) < len(reached) < len(sent)
    assert all(sent[c["seq"]] == c["positions"] for c in reached)
    assert device.parser.errors > 0


def test_disconnect_silences_the_link_and_the_watchdog_holds() -> None:
    host = enabled_host()
    device = host.device
    target = np.clip(device.targets, device.limits.low, device.limits.high)
    host.send(Command(target))
    device.disconnect(0.2)
    assert not host.run(90)  # 180 ms: nothing arrives
    assert device.holding and not device.connected
    assert host.messages(State, host.run(20))
    assert device.connected
    unplugged = [e for e in device.log.entries if e.get("kind") == "disconnect"]
    assert len(unplugged) == 1 and len(device.log.events("reconnect")) == 1


# -- configuration -----------------------------------------------------------------------------
def test_config_errors_name_the_key_and_the_valid_keys() -> None:
    with pytest.raises(
        ConfigError, match=r"faults.device_to_host: unknown key 'flip'.*split_rate"
    ):
        EmulatorConfig.from_mapping({"faults": {"device_to_host": {"flip": 0.1}}})
    with pytest.raises(ConfigError, match=r"deviations.actuator_kp_scale: expected a number"):
        EmulatorConfig.from_mapping({"deviations": {"actuator_kp_scale": "high"}})
    with pytest.raises(ConfigError, match=r"truncate_rate=2.0 must be in \[0, 1\]"):
        EmulatorConfig.from_mapping({"faults": {"device_to_host": {"truncate_rate": 2.0}}})
    with pytest.raises(ConfigError, match=r"unknown servo 'elbow'.*elbow_flex_joint"):
        Emulator("fetch", EmulatorConfig(faults=FaultConfig(stuck_joint=StuckJoint("elbow"))))


def test_the_example_config_loads_and_deviations_none_is_the_twin() -> None:
    config = EmulatorConfig.from_yaml(EXAMPLE)
    assert config.faults.device_to_host.truncate_rate == 0.01
    assert config.faults.stuck_joint == StuckJoint("wrist_flex_joint", 30.0)
    assert EmulatorConfig.from_mapping({"deviations": "none"}).deviations == Deviations.none()
    twin = TwinLoop("fetch-push").twin.model
    device = Emulator("fetch", config).plant.model
    shoulder = device.actuator("shoulder_pan").id
    assert device.actuator_gainprm[shoulder, 0] == pytest.approx(
        0.95 * twin.actuator_gainprm[shoulder, 0]
    )
    assert device.body("object0").mass[0] == pytest.approx(1.1 * twin.body("object0").mass[0])


# -- the pty link ------------------------------------------------------------------------------
def _drain(link: PtyLink, count: int) -> bytes:
    data = b""
    deadline = time.monotonic() + 2.0
    while link.master_fd is not None and len(data) < count and time.monotonic() < deadline:
        select.select([link.master_fd], [], [], 0.1)
        data += link.read()
    return data


def _read_fd(fd: int, count: int) -> bytes:
    data = b""
    while len(data) < count and select.select([fd], [], [], 1.0)[0]:
        data += os.read(fd, count - len(data))
    return data


def test_the_pty_is_raw_and_survives_host_reopen(tmp_path: Path) -> None:
    every_byte = bytes(range(256)) + bytes([0x03, 0x0A, 0x0D, 0x11, 0x13, 0x04]) * 4
    with PtyLink(tmp_path / "device") as link:
        host = os.open(tmp_path / "device", os.O_RDWR | os.O_NOCTTY)  # no termios of its own
        try:
            os.write(host, every_byte)
            assert _drain(link, len(every_byte)) == every_byte
            assert link.write(every_byte) == len(every_byte)
            assert _read_fd(host, len(every_byte)) == every_byte
            time.sleep(0.05)
            assert link.read() == b""  # no echo of what the device sent
            assert not select.select([host], [], [], 0.05)[0]  # nor of what the host sent
        finally:
            os.close(host)
        assert link.read() == b""  # the host went away: no EIO for the device
        port = serial.Serial(str(tmp_path / "device"), timeout=0.2)
        port.write(b"\x03\x0a\x0d")
        assert _drain(link, 3) == b"\x03\x0a\x0d"
        port.close()


def test_disconnect_removes_the_symlink_and_reconnect_repoints_it(tmp_path: Path) -> None:
    symlink = tmp_path / "by-id"
    with PtyLink(symlink) as link:
        old = os.readlink(symlink)
        port = serial.Serial(str(symlink), timeout=0.1)
        link.disconnect()
        assert not os.path.lexists(symlink)
        with pytest.raises(serial.SerialException):
            port.read(1)
        port.close()
        new = link.reconnect()
        assert os.readlink(symlink) == new
        port = serial.Serial(str(symlink), timeout=0.2)
        port.write(b"hi")
        assert _drain(link, 2) == b"hi"
        port.close()
        assert old.startswith("/dev/pts/")


# -- R26: the link self-test -------------------------------------------------------------------
def test_r26_random_frames_round_trip_through_the_pty_unchanged() -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "emulator_selftest.py"), "--frames", "10000"]
    out = subprocess.run([*cmd, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["mismatched_frames"] == 0
    assert report["host_parser_errors"] == report["device_parser_errors"] == 0
    assert report["host_frames_decoded"] == report["device_frames_decoded"] == 10000
    assert report["control_bytes_passed"] > 1000


# -- `twinbridge emulate` in real time ---------------------------------------------------------
class SerialHost:
    """The host side over pyserial, with wall-clock waits."""

    def __init__(self, path: str):
        self.port = serial.Serial(path, timeout=0)
        self.parser = FrameParser()
        self.seq = 0

    def send(self, message: Message) -> int:
        seq, self.seq = self.seq, self.seq + 1
        self.port.write(encode_frame(message, seq))
        return seq

    def pump(self, duration_s: float) -> list[Message]:
        messages: list[Message] = []
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            select.select([self.port.fd], [], [], 0.002)
            frames = self.parser.feed(self.port.read(65536), time.monotonic())
            messages += [f.message for f in frames]
        return messages

    def wait_for(self, kind: type, timeout_s: float = 2.0) -> Any:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            found = [m for m in self.pump(0.01) if isinstance(m, kind)]
            if found:
                return found[0]
        raise AssertionError(f"no {kind.__name__} within {timeout_s} s")


def _spawn(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    cmd = [*TWINBRIDGE, "--robot", "fetch", "--log", str(tmp_path / "log.jsonl"), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.stdout is None or not select.select([proc.stdout], [], [], 60)[0]:
        proc.kill()
        raise AssertionError("twinbridge emulate printed no device line within 60 s")
    line = proc.stdout.readline().decode()
    assert line.startswith("device: /dev/pts/"), line
    return proc, line


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_emulate_serves_a_driver_session_and_shuts_down_cleanly(tmp_path: Path) -> None:
    link = tmp_path / "fetch"
    proc, line = _spawn(tmp_path, "--link", str(link), "--seed", "1")
    try:
        assert line.split() == ["device:", os.readlink(link), "link:", str(link)]
        host = SerialHost(str(link))
        host.send(Hello())
        info = host.wait_for(DeviceInfo)
        expected = robot_tables("fetch").device_info(True, True)
        assert encode_frame(info, 0) == encode_frame(expected, 0)
        host.send(Enable(True))
        assert host.wait_for(Ack).result == AckResult.OK
        state = host.wait_for(State)
        low = np.array([c.position_min for c in info.commands])
        high = np.array([c.position_max for c in info.commands])
        target = np.clip(state.servo_positions, low, high)
        for _ in range(50):
            target[0] += 0.003
            last = host.send(Command(target))
            states = [m for m in host.pump(0.01) if isinstance(m, State)]
        assert states and states[-1].status == Status.ENABLED
        assert states[-1].last_command_seq >= last - 3
        after = host.pump(0.3)
        assert any(isinstance(m, Fault) and m.code == FaultCode.WATCHDOG for m in after)
        assert [m for m in after if isinstance(m, State)][-1].status & Status.HOLDING
        host.port.close()
    finally:
        code = _stop(proc)
    assert code == 0
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    disabled = [e for e in log if e["event"] == "torque_disable"]
    assert [e["servo"] for e in disabled] == list(info.command_names)
    assert {e["reason"] for e in disabled} == {"SIGTERM"}
    accepted = [e for e in log if e["event"] == "command" and e["accepted"]]
    assert len(accepted) >= 45
    watchdog = [e for e in log if e["event"] == "watchdog"][-1]
    assert watchdog["t_us"] - accepted[-1]["t_us"] == 30_000


def test_emulate_unplugs_and_replugs_behind_its_symlink(tmp_path: Path) -> None:
    config = tmp_path / "faults.yaml"
    config.write_text("deviations: none\nfaults:\n  disconnects: [{at_s: 1.0, for_s: 0.5}]\n")
    link = tmp_path / "fetch"
    proc, _ = _spawn(tmp_path, "--link", str(link), "--config", str(config))
    try:
        host = SerialHost(str(link))
        host.send(Hello())
        host.wait_for(DeviceInfo)
        with pytest.raises(serial.SerialException):
            host.pump(3.0)  # the device goes away
        host.port.close()
        deadline = time.monotonic() + 3.0
        while not os.path.lexists(link) and time.monotonic() < deadline:
            time.sleep(0.01)
        host = SerialHost(str(link))
        host.send(Hello())
        assert host.wait_for(DeviceInfo).model == "twinbridge-fetch-arm"
        host.port.close()
    finally:
        assert _stop(proc) == 0
    events = [json.loads(line)["event"] for line in (tmp_path / "log.jsonl").open()]
    assert events.count("reconnect") == 1


# -- issue 18: what an independent host ran into -------------------------------------------------
def test_one_false_header_never_trips_the_watchdog() -> None:
    """PROTOCOL.md R4: a header with a valid CRC-8 claiming 1024 bytes, right after a
    Command, holds back the Commands behind it for 10 ms + a Command's transfer time at
    most: less than the 30 ms watchdog. (With the host's 50 ms + 10.35 ms it tripped, 3 of
    3, for an independent host.)"""
    host = enabled_host()
    start = host.last_state().servo_positions
    for k in range(20):
        host.send(Command(start))
        if k == 5:
            header = struct.pack("<BBHH", 1, Command.TYPE, 999, 1024)
            host.device.receive(SYNC + header + bytes([crc8(header)]), host.t)
        host.run(5)
    assert host.device.counters["watchdog_trips"] == 0
    assert host.device.parser.counters["partial_timeout"] >= 1
    assert len([c for c in commands(host.device) if c["accepted"]]) == 20


def test_an_estop_behind_a_false_header_is_acted_on_while_the_host_is_silent() -> None:
    """R4's timeout runs on the device's clock, not on the next byte: a false header, then
    an EStop, then silence: the EStop is acknowledged and latched within 12 ms. (An
    independent host measured it held for > 500 ms, until its next Heartbeat.)"""
    host = enabled_host()
    header = struct.pack("<BBHH", 1, Command.TYPE, 999, 33)
    host.device.receive(SYNC + header + bytes([crc8(header)]), host.t)
    seq = host.send(EStop())
    steps = round(0.012 / host.device.timestep_s)
    acks = [a for a in host.messages(Ack, host.run(steps)) if a.acked_seq == seq]
    assert [a.result for a in acks] == [AckResult.OK]
    host.run(round(0.012 / host.device.timestep_s))  # the next State reports the latch
    assert host.last_state().status & Status.ESTOP
    assert host.device.parser.counters["partial_timeout"] >= 1


def test_a_first_command_copied_from_a_noisy_state_is_accepted() -> None:
    """D16.4: after Enable the device's target is its own measurement, which the host sees
    only through a State with noise (2 mm here, fetch-hard's): the first Command, the
    State's clamped servo positions, is accepted 40 times of 40 (the gripper's allowed jump
    alone, 1.5 mm, refused an independent host's 12 times in 80 on fetch-hard)."""
    noisy = Deviations.from_mapping({"position_noise_std": 0.002})
    host = enabled_host(config=EmulatorConfig(deviations=noisy))
    limits = host.device.limits
    for _ in range(40):
        assert host.request(Enable(False)).result == AckResult.OK
        assert host.request(Enable(True)).result == AckResult.OK
        host.run(6)
        first = np.clip(host.last_state().servo_positions, limits.low, limits.high)
        host.send(Command(first))
        host.run(2)
    decided = commands(host.device)[-40:]
    assert [c["accepted"] for c in decided] == [True] * 40, decided


@pytest.mark.parametrize("restart", ["enable", "reset_fault"])
def test_a_command_after_enable_or_reset_fault_mid_motion_is_measured_from_the_joint(
    restart: str,
) -> None:
    """D5, D7, D16.4: Enable or ResetFault while shoulder_pan moves at 0.95 velocity_max sets
    the target to where the brake stops it, which no State carries; the host's first Command
    after the Ack, the clamped servo positions of the newest State it had, is measured from
    the live joint and accepted (measured from that frozen target, an independent host's was
    refused 8 times in 12)."""
    host = enabled_host()
    limits = host.device.limits
    pan_speed = robot_tables("fetch").limits.velocity_max[0]
    step = 0.95 * pan_speed * 0.01  # rad per 10 ms Command
    message = Enable(True) if restart == "enable" else ResetFault()
    for round_ in range(6):
        target = np.clip(host.last_state().servo_positions, limits.low, limits.high)
        for _ in range(25):  # 250 ms of motion, to and fro: pan at speed, lagging its target
            target[0] += step if round_ % 2 == 0 else -step
            host.send(Command(target))
            host.run(5)
        assert abs(host.last_state().servo_velocities[0]) > 0.5 * pan_speed
        seen = host.last_state().servo_positions  # the newest State when the host restarts
        assert host.request(message).result == AckResult.OK
        host.send(Command(np.clip(seen, limits.low, limits.high)))
        host.run(2)
        host.run(40)  # let it settle before the next round
    refused = [c for c in commands(host.device) if not c["accepted"]]
    assert refused == [], refused


@pytest.mark.parametrize("restart", ["enable", "reset_fault"])
def test_a_full_step_against_a_coasting_joint_after_enable_is_accepted(restart: str) -> None:
    """D16.4's allowance for a State's age: after Enable or ResetFault mid-motion the joint
    coasts on while the host's newest State ages; a first Command a step of 0.95 x the bound
    back against the motion from that State is accepted (an independent host's was refused
    20 of 20 times when only the noise was allowed)."""
    host = enabled_host()
    limits = host.device.limits
    pan_speed = robot_tables("fetch").limits.velocity_max[0]
    step = 0.95 * pan_speed * 0.01
    message = Enable(True) if restart == "enable" else ResetFault()
    for round_ in range(4):
        direction = 1.0 if round_ % 2 == 0 else -1.0
        target = np.clip(host.last_state().servo_positions, limits.low, limits.high)
        for _ in range(25):
            target[0] += direction * step
            host.send(Command(target))
            host.run(5)
        seen = np.clip(host.last_state().servo_positions, limits.low, limits.high)
        assert host.request(message).result == AckResult.OK
        back = seen.copy()
        back[0] -= direction * 0.95 * limits.max_step[0]  # against the motion
        host.send(Command(np.clip(back, limits.low, limits.high)))
        host.run(2)
        host.run(40)
    refused = [c for c in commands(host.device) if not c["accepted"]]
    assert refused == [], refused


def test_a_servo_far_off_its_setpoint_for_500_ms_latches_tracking() -> None:
    """D20: a seized joint commanded 0.5 rad away faults after 500 ms (and not before); the
    device holds and says which servo."""
    host = enabled_host()
    host.device.plant.seize(1)  # shoulder_lift
    target = host.last_state().servo_positions.copy()
    for _ in range(20):  # step the target 0.5 rad away within the jump rule
        target[1] -= 0.025
        host.send(Command(target))
        host.run(5)
    faults = []
    for _ in range(60):  # keep commanding: 600 ms
        host.send(Command(target))
        faults += host.messages(Fault, host.run(5))
    tracking = [f for f in faults if f.code == FaultCode.TRACKING]
    assert len(tracking) == 1 and tracking[0].joint == 1 and "shoulder_lift" in tracking[0].message
    events = host.device.log.events("tracking_fault")
    assert events and host.last_state().status & Status.FAULT


def test_pressing_on_the_table_at_full_effort_is_not_a_fault() -> None:
    """The independent host's observation: shoulder_lift asked 0.2 rad down stops short with
    its effort at effort_max. That is the gripper on the table (the twin's arm is gravity
    compensated: an arm at rest on target reports its holding torque, its servo ~0): a
    contact, which D20 does not fault."""
    host = enabled_host()
    state = host.last_state()
    lift = 1
    assert abs(state.servo_efforts[lift]) < 1.0  # on target: the servo term is ~0
    joint = list(host.device.info.state_joints).index("shoulder_lift_joint")
    assert abs(state.efforts[joint]) > 10  # gravity compensation holds the arm up
    target = state.servo_positions.copy()
    for _ in range(8):
        target[lift] += 0.025
        host.send(Command(target))
        host.run(5)
    for _ in range(150):  # 1.5 s pressed on the table
        host.send(Command(target))
        host.run(5)
    state = host.last_state()
    effort_max = host.device.info.commands[lift].effort_max
    assert abs(state.servo_efforts[lift]) == pytest.approx(effort_max, rel=1e-3)
    assert target[lift] - state.servo_positions[lift] > 0.05  # blocked short of its target
    assert host.device.plant.data.ncon > 0  # the gripper on the table
    assert not state.status & Status.FAULT


def test_a_disabled_device_reports_no_motor_effort() -> None:
    """Efforts are the motors' torque: 0 with the torque off (the arm's brakes hold it)."""
    host = enabled_host()
    assert np.abs(host.last_state().efforts).max() > 1.0
    assert host.request(Enable(False)).result == AckResult.OK
    host.run(10)
    state = host.last_state()
    assert not state.status & Status.ENABLED
    assert np.abs(state.efforts).max() == 0.0 and np.abs(state.servo_efforts).max() == 0.0
