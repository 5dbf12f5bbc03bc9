"""The serial driver against `twinbridge emulate` (a separate process on a pseudo-terminal):
wrong ports and wrong devices (R11), disconnects, torque off on every exit (R10), and a stuck
joint (R23). What reached the device is read back from the emulator's own log.

R9, R10, R11, R23: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import errno
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from emulated_device import ROOT, EmulatedDevice, run_cycles

from hardware.interface import ConnectionFailed, WrongDevice
from hardware.protocol import Command, CommandChannel, DeviceInfo
from hardware.robots import robot_tables
from hardware.safety import SafetyConfig
from hardware.serial_backend import (
    SerialConfig,
    SerialRobot,
    _device_differences,
    _open_failure,
)

ARM_SERVOS = robot_tables("fetch").command_names


def _driver(device: EmulatedDevice, tmp: Path) -> SerialRobot:
    safety = SafetyConfig(estop_latch_path=str(tmp / "estop.json"))
    return SerialRobot("fetch", SerialConfig(device.port), safety)


def _wait_measured(driver: SerialRobot, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while driver.read() is None and driver.last_measurement is None:
        assert time.monotonic() < end, "no State from the emulator"
        time.sleep(0.005)


def _activate(driver: SerialRobot) -> None:
    """connect, wait for the first State, activate."""
    driver.connect()
    _wait_measured(driver)
    driver.activate()


# -- bad input at start-up -----------------------------------------------------------------
def test_a_missing_port_is_named_with_the_fix(tmp_path: Path):
    driver = SerialRobot("fetch", SerialConfig(str(tmp_path / "ttyUSB9")))
    with pytest.raises(ConnectionFailed, match=r"ttyUSB9 does not exist.*by-id"):
        driver.connect()


def test_permission_and_busy_errors_say_what_to_do():
    denied = serial.SerialException(errno.EACCES, "could not open port: Permission denied")
    assert "dialout" in _open_failure("/dev/ttyUSB0", denied)
    busy = serial.SerialException(errno.EBUSY, "Device or resource busy")
    assert "in use" in _open_failure("/dev/ttyUSB0", busy)


def test_a_device_of_another_robot_is_refused_and_never_enabled(tmp_path: Path):
    """R11: a Shadow hand's controller on the port the Fetch driver was given."""
    device = EmulatedDevice("shadow_hand", tmp_path)
    try:
        driver = SerialRobot("fetch", SerialConfig(device.port))
        with pytest.raises(WrongDevice) as error:
            driver.connect()
        message = str(error.value)
        assert device.port in message and "twinbridge-shadow-hand" in message
        assert "twinbridge-fetch-arm" in message and "Fix" in message
        time.sleep(0.1)
        assert device.events("enable") == [] and device.events("command") == []
    finally:
        device.stop()


def _info(**changes) -> DeviceInfo:
    base = robot_tables("fetch").device_info(True, True)
    return DeviceInfo(**{**base.__dict__, **changes})


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"model": "acme-arm"}, "model is 'acme-arm'"),
        ({"firmware": (2, 0, 0)}, "major version 2"),
        ({"calibration_hash": 1}, "calibration hash"),
    ],
)
def test_every_identity_mismatch_is_named(changes, needle):
    expected = robot_tables("fetch").device_info(True, True)
    problems = _device_differences(expected, _info(**changes))
    assert any(needle in p for p in problems), problems


def test_a_swapped_joint_order_is_refused():
    expected = robot_tables("fetch").device_info(True, True)
    channels = list(expected.commands)
    channels[0], channels[1] = channels[1], channels[0]
    found = _info(commands=tuple(channels))
    assert any("command channels" in p for p in _device_differences(expected, found))
    joints = list(expected.state_joints)
    found = _info(state_joints=tuple(reversed(joints)))
    assert any("state joints" in p for p in _device_differences(expected, found))


def test_a_changed_limit_is_refused():
    expected = robot_tables("fetch").device_info(True, True)
    first = expected.commands[0]
    wider = CommandChannel(
        first.name,
        first.position_min - 0.5,
        first.position_max,
        first.velocity_max,
        first.effort_max,
    )
    found = _info(commands=(wider, *expected.commands[1:]))
    assert any("limits of shoulder_pan_joint" in p for p in _device_differences(expected, found))


# -- disconnect and reconnect --------------------------------------------------------------
def test_disconnect_is_reported_fast_and_reconnect_replays_nothing(tmp_path: Path):
    """Error within 100 ms of the unplug; back within 1 s of the device returning; after
    it, the device receives holds at the measured position, never the old target."""
    device = EmulatedDevice("fetch", tmp_path)
    driver = _driver(device, tmp_path)
    try:
        _activate(driver)
        target = driver.last_measurement.servo_positions.copy()
        target[1] -= 0.6  # shoulder lift: still moving when the cable goes
        run_cycles(driver, 0.3, on_cycle=lambda k: driver.set_target(target))
        unplugged = time.monotonic()
        device.send_signal(signal.SIGUSR1)  # the emulator unplugs itself for 0.5 s
        times = _follow_link(driver, device.port, unplugged)
        assert times["error"] - unplugged < 0.100, times
        assert times["recovered"] - times["returned"] < 1.0, times
        assert "link lost" in driver.diagnostics()["error"] or driver.counters["link_lost"]
        run_cycles(driver, 0.3)  # no fresh target after the reconnect
    finally:
        driver.close()
        device.stop()
    after = _commands_after(device, "reconnect")
    assert len(after) > 10
    positions = np.array([c["positions"] for c in after if c["accepted"]])
    assert np.ptp(positions, axis=0).max() < 1e-6  # holds, no replayed motion


def _follow_link(driver: SerialRobot, port: str, since: float) -> dict[str, float]:
    """Cycle at 100 Hz and note when the error appears, the port returns, the error clears."""
    times: dict[str, float] = {}
    end = since + 5.0
    while time.monotonic() < end and "recovered" not in times:
        driver.read()
        driver.write()
        now = time.monotonic()
        if driver.error and "error" not in times:
            times["error"] = now
        if "error" in times and "returned" not in times and os.path.exists(port):
            times["returned"] = now
        if "returned" in times and not driver.error:
            times["recovered"] = now
        time.sleep(0.01)
    assert "recovered" in times, f"no reconnect: {times} {driver.diagnostics()}"
    return times


def _commands_after(device: EmulatedDevice, event: str) -> list[dict]:
    rows = device.events()
    index = max(i for i, row in enumerate(rows) if row["event"] == event)
    return [row for row in rows[index:] if row["event"] == "command"]


def test_estop_survives_a_reconnect_and_a_new_driver(tmp_path: Path):
    """The latch is the host's (a file) and the device's: neither a replug nor a restarted
    driver clears it; only reset() does."""
    device = EmulatedDevice("fetch", tmp_path)
    try:
        driver = _driver(device, tmp_path)
        _activate(driver)
        run_cycles(driver, 0.1)
        driver.estop("test")
        device.send_signal(signal.SIGUSR1)
        _follow_link(driver, device.port, time.monotonic())
        assert driver.safety.estopped
        driver.close()
        restarted = _driver(device, tmp_path)
        restarted.connect()
        assert restarted.safety.estopped
        restarted.close()
    finally:
        device.stop()
    assert device.events("estop"), "the device latched too"


# -- torque off on exit (R10) and the device watchdog on a hard kill ------------------------
def test_close_turns_torque_off_on_every_servo(tmp_path: Path):
    device = EmulatedDevice("fetch", tmp_path)
    try:
        driver = _driver(device, tmp_path)
        _activate(driver)
        run_cycles(driver, 0.1)
        driver.close()
        time.sleep(0.1)
        servos = {e["servo"] for e in device.events("torque_disable") if e["reason"] == "host"}
        assert servos == set(ARM_SERVOS)
    finally:
        device.stop()


def _driver_node(device: EmulatedDevice, tmp: Path, domain: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    }
    args = ["-p", f"port:={device.port}", "-p", f"estop_latch_path:={tmp / 'estop.json'}"]
    return subprocess.Popen(
        [sys.executable, "-m", "ros_ws.driver_node", "--ros-args", "-r", "__ns:=/fetch", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_commands(device: EmulatedDevice, count: int, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while len(device.events("command")) < count:
        assert time.monotonic() < end, "the driver never commanded the device"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_driver_node_stopped_turns_torque_off(tmp_path: Path, signum: int):
    """R10, graceful: a driver_node stopped by a signal disables every servo first."""
    device = EmulatedDevice("fetch", tmp_path)
    node = _driver_node(device, tmp_path, domain=90 + signum)
    try:
        _wait_for_commands(device, 20)
        node.send_signal(signum)
        assert node.wait(timeout=10) == 0
        time.sleep(0.1)
        servos = {e["servo"] for e in device.events("torque_disable") if e["reason"] == "host"}
        assert servos == set(ARM_SERVOS)
    finally:
        if node.poll() is None:
            node.kill()
        device.stop()


def test_driver_node_killed_trips_the_device_watchdog_within_30_ms(tmp_path: Path):
    """R10, hard kill: nothing on the host can act; the device holds on its own."""
    device = EmulatedDevice("fetch", tmp_path)
    node = _driver_node(device, tmp_path, domain=95)
    try:
        _wait_for_commands(device, 20)
        node.kill()
        node.wait()
        time.sleep(0.2)
        trips = device.events("watchdog")
        assert trips, "the device never held"
        assert trips[-1]["age_ms"] <= 30.0 + 2.0  # checked every physics step (2 ms)
    finally:
        device.stop()


# -- a stuck joint stops motion (R23) -----------------------------------------------------------
def test_a_stuck_joint_latches_a_fault_naming_it_and_holds(tmp_path: Path):
    config = tmp_path / "stuck.yaml"
    config.write_text(
        "deviations: none\nfaults:\n  stuck_joint: {name: elbow_flex_joint, at_s: 0.0}\n"
    )
    device = EmulatedDevice("fetch", tmp_path, config=config)
    driver = _driver(device, tmp_path)
    try:
        _activate(driver)
        target = driver.last_measurement.servo_positions.copy()
        elbow = driver.limits.names.index("elbow_flex_joint")
        target[elbow] -= 0.8
        sent = run_cycles(driver, 1.5, on_cycle=lambda k: driver.set_target(target))
        assert driver.safety.latched and "elbow_flex_joint" in driver.safety.fault
        faulted = next(i for i, c in enumerate(sent) if c.mode == "hold" and c.reason)
        held = np.array([c.positions for c in sent[faulted:]])
        assert np.ptp(held, axis=0).max() == 0.0  # not one step of motion after the fault
    finally:
        driver.close()
        device.stop()


# -- commands only while ACTIVE (R9) ------------------------------------------------------------
def test_no_command_frame_reaches_the_device_outside_active(tmp_path: Path):
    """Reads run while INACTIVE; Command frames go out only between activate and deactivate
    (torque-off and heartbeats are allowed outside)."""
    device = EmulatedDevice("fetch", tmp_path)
    driver = _driver(device, tmp_path)
    try:
        driver.connect()
        for _ in range(30):  # INACTIVE: reading, and asked to move
            driver.read()
            driver.set_target(np.zeros(len(ARM_SERVOS)))
            time.sleep(0.01)
        assert device.events("command") == []
        driver.activate()
        run_cycles(driver, 0.3)
        driver.deactivate()
        for _ in range(30):
            driver.read()
            time.sleep(0.01)
        time.sleep(0.1)
        rows = device.events()
        off = max(i for i, r in enumerate(rows) if r["event"] == "enable" and not r["enabled"])
        on = min(i for i, r in enumerate(rows) if r["event"] == "enable" and r["enabled"])
        commands = [i for i, r in enumerate(rows) if r["event"] == "command"]
        assert commands and on < min(commands) and max(commands) < off
    finally:
        driver.close()
        device.stop()


def test_bunched_cycles_never_put_more_than_eleven_commands_into_100_ms(tmp_path: Path):
    """R13: cycles that bunch up in the host (here: 25 write cycles back to back, as after a
    stall) write at most 11 Command frames in any 104 ms (100 ms at the device, with its
    2 ms step and link jitter); the rest are counted as paced and superseded by the next
    cycle's target. Every frame written reaches the device (its own log)."""
    device = EmulatedDevice("fetch", tmp_path)
    driver = _driver(device, tmp_path)
    written: list[float] = []
    transmit = driver._transmit

    def recording(message):
        if isinstance(message, Command):
            written.append(time.monotonic())
        return transmit(message)

    driver._transmit = recording  # type: ignore[method-assign]
    try:
        _activate(driver)
        on_time = run_cycles(driver, 0.5)  # on time: (almost) nothing paced
        assert driver.counters["commands_paced"] <= 0.05 * len(on_time)
        before, mark = driver.counters["commands_paced"], len(device.events("command"))
        first = len(written)
        for _ in range(25):  # a burst: no sleep between cycles
            driver.read()
            driver.write()
        run_cycles(driver, 0.3)
        time.sleep(0.1)
        busiest = max(sum(1 for t in written if s <= t < s + 0.104) for s in written)
        assert busiest <= 11, busiest
        assert driver.counters["commands_paced"] - before >= 10
        assert len(device.events("command")) - mark == len(written) - first
    finally:
        driver.close()
        device.stop()


def test_a_device_on_another_protocol_version_is_named_as_such(tmp_path: Path):
    """PROTOCOL.md section 5: a device that does not speak version 1 answers Hello in its
    own version's frame, which the host's parser drops (`bad_version`); the host then says
    the versions differ instead of "no device"."""
    import threading

    from hardware.protocol import SYNC, crc8, crc16

    primary, secondary = os.openpty()
    link = tmp_path / "device"
    link.symlink_to(os.ttyname(secondary))
    info = robot_tables("fetch").device_info(True, True)
    payload = info.payload()
    header = struct.pack("<BBHH", 2, DeviceInfo.TYPE, 0, len(payload))
    body = header + bytes([crc8(header)]) + payload
    answer = SYNC + body + struct.pack("<H", crc16(body))
    stop = threading.Event()

    def device() -> None:  # answers anything with a version-2 DeviceInfo
        while not stop.is_set():
            try:
                if os.read(primary, 4096):
                    os.write(primary, answer)
            except OSError:
                return

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    try:
        driver = SerialRobot("fetch", SerialConfig(str(link)))
        with pytest.raises(WrongDevice, match="another protocol version than 1"):
            driver.connect()
    finally:
        stop.set()
        os.close(primary)
        os.close(secondary)


# -- issue 18: what an independent host ran into (H8, D16.4) ----------------------------------
def test_a_refused_command_restarts_the_host_from_the_devices_target(tmp_path: Path):
    """The host's commanded trajectory is pushed 0.1 rad off the device's target on one
    joint (as a restart from a stale or noisy measurement can) while its target lies 0.2 rad
    further that way: the device refuses the next Command (D17) and keeps its target; the
    host restarts from the Command the State's last_command_seq names, and every later
    Command is accepted. (Before, each Command stepped on from the refused one and was
    refused in turn until the device's watchdog held the arm.)"""
    device = EmulatedDevice("fetch", tmp_path)
    driver = _driver(device, tmp_path)
    try:
        _activate(driver)
        hold = driver.last_measurement.servo_positions.copy()
        lift = driver.limits.names.index("shoulder_lift_joint")
        run_cycles(driver, 0.3, on_cycle=lambda k: driver.set_target(hold))
        shifted, target = driver.safety._command.q.copy(), hold.copy()
        shifted[lift] -= 0.1
        target[lift] -= 0.3
        driver.safety.resync_to(shifted)
        run_cycles(driver, 1.0, on_cycle=lambda k: driver.set_target(target))
        commands = device.events("command")
        refused = [c for c in commands if not c["accepted"]]
        assert 1 <= len(refused) <= 3, refused  # the shifted one, and any already in flight
        after = commands[commands.index(refused[-1]) + 1 :]
        assert len(after) >= 80 and all(c["accepted"] for c in after)
        assert driver.counters["device_fault_2"] == len(refused)
        assert device.events("watchdog") == []  # no refused run long enough to trip it
    finally:
        driver.close()
        device.stop()
