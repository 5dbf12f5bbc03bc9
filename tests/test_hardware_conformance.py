"""One conformance suite for every hardware backend: sim, serial (through the emulator on a
pseudo-terminal, a separate process) and the ROS-topic bridge (to a vendor-like stack: a
twin_node process in /vendor). Each backend must honour the same lifecycle and the same
safety behaviour; only how bytes or messages move differs.

R2, R3, R4, R9: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from emulated_device import EmulatedDevice, run_cycles

from hardware.backends import BackendRequest, make_interface
from hardware.interface import Lifecycle, LifecycleError, RobotInterface
from hardware.safety import SafetyConfig
from sim.robots import ROBOT_FOLDERS, get_robot

BACKENDS = ("sim", "serial", "bridge")
# Every registered robot whose safe state is to hold: the suite checks holds against gravity
# (a torque_off robot goes limp by design, so "nothing moves" is not its contract).
HOLDING_ROBOTS = tuple(r for r in ROBOT_FOLDERS if get_robot(r).safe_state == "hold")


def _strongest_joint(robot: str) -> str:
    """The channel with the largest effort limit: the one that carries the most weight, so a
    hold that is not a hold shows (Fetch: shoulder_lift_joint)."""
    return max(get_robot(robot).commands, key=lambda c: c.effort_max).name


def _safety(tmp: Path) -> SafetyConfig:
    return SafetyConfig(estop_latch_path=str(tmp / "estop.json"), safe_state="hold")


@pytest.fixture(params=[(b, r) for r in HOLDING_ROBOTS for b in BACKENDS], ids="-".join)
def robot(request, tmp_path: Path) -> Iterator[RobotInterface]:
    """A connected (INACTIVE) holding robot on each backend."""
    backend, name = request.param
    cleanup = []
    if backend == "serial":
        device = EmulatedDevice(name, tmp_path)
        cleanup.append(device.stop)
        req = BackendRequest(name, _safety(tmp_path), port=device.port)
    elif backend == "bridge":
        req, stop = _bridge_request(name, tmp_path)
        cleanup.append(stop)
    else:
        req = BackendRequest(name, _safety(tmp_path))
    interface = make_interface(backend, req)
    try:
        interface.connect()
        _first_measurement(interface)
        yield interface
    finally:
        interface.close()
        for stop in reversed(cleanup):
            stop()


def _bridge_request(robot: str, tmp: Path):
    """A twin_node in /vendor plays the vendor stack; our node hosts the bridge."""
    import threading

    from ros_processes import Client, NodeProcess, private_domain

    import ros_ws.bridge_backend  # noqa: F401  (registers "bridge")

    domain = private_domain()
    task = get_robot(robot).default_task
    vendor = NodeProcess(
        "twin_node", domain, tmp, namespace="vendor", wait_for_goal=False, task=task
    )
    client = Client(domain, "bridge_host")
    stop_spin = threading.Event()

    def spin() -> None:
        while not stop_spin.is_set():
            client.executor.spin_once(timeout_sec=0.01)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    options = {
        "node": client.node,
        "state_topic": "/vendor/joint_states",
        "command_topic": "/vendor/joint_command",
        "discovery_timeout_s": 30.0,  # the vendor process is still importing MuJoCo
    }

    def stop() -> None:
        stop_spin.set()
        thread.join(timeout=2)
        client.close()
        vendor.stop()

    return BackendRequest(robot, _safety(tmp), options=options), stop


def _first_measurement(interface: RobotInterface, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while interface.read() is None and interface.last_measurement is None:
        if time.monotonic() > end:
            raise AssertionError(f"{interface.backend}: no measurement in {timeout_s} s")
        time.sleep(0.01)


def _index(interface: RobotInterface) -> int:
    return interface.limits.names.index(_strongest_joint(interface.robot))


def _measured(interface: RobotInterface) -> np.ndarray:
    assert interface.last_measurement is not None
    return interface.last_measurement.servo_positions


def test_lifecycle_gates_writes(robot: RobotInterface):
    """R9: reads while INACTIVE, writes only while ACTIVE, close is final and idempotent."""
    assert robot.lifecycle is Lifecycle.INACTIVE
    robot.read()
    with pytest.raises(LifecycleError, match="activate"):
        robot.write()
    with pytest.raises(LifecycleError):
        robot.connect()
    robot.activate()
    run_cycles(robot, 0.1)
    robot.deactivate()
    with pytest.raises(LifecycleError):
        robot.write()
    robot.close()
    robot.close()
    assert robot.lifecycle is Lifecycle.FINALIZED
    with pytest.raises(LifecycleError):
        robot.read()


def test_follows_a_fresh_target_within_limits(robot: RobotInterface):
    """A target 0.15 rad away is reached, every sent step within the velocity limit."""
    robot.activate()
    run_cycles(robot, 0.1)
    i = _index(robot)
    target = _measured(robot).copy()
    target[i] -= 0.15
    sent = run_cycles(robot, 1.5, on_cycle=lambda k: robot.set_target(target))
    assert abs(_measured(robot)[i] - target[i]) < 0.03, robot.diagnostics()
    positions = np.array([c.positions for c in sent if c.positions is not None])
    steps = np.abs(np.diff(positions[:, i]))
    vmax = robot.limits.velocity_max[i]
    assert steps.max() <= vmax * 0.01 * (1 + 1e-9)


def test_returns_what_it_sent_after_clamping(robot: RobotInterface):
    """A target beyond the joint's range is clamped; write() returns the clamped command."""
    robot.activate()
    run_cycles(robot, 0.05)
    i = _index(robot)
    target = _measured(robot).copy()
    target[i] = robot.limits.position_max[i] + 5.0
    sent = run_cycles(robot, 0.3, on_cycle=lambda k: robot.set_target(target))
    high = robot.limits.position_max[i]
    assert all(c.positions[i] <= high for c in sent if c.positions is not None)
    assert robot.safety.counters["clamped_targets"] > 0


def test_nan_target_holds_the_last_safe_command(robot: RobotInterface):
    """R4: a NaN target latches a fault; commands stay finite and where they were."""
    robot.activate()
    run_cycles(robot, 0.05)
    bad = _measured(robot).copy()
    bad[_index(robot)] = np.nan
    robot.set_target(bad)
    sent = run_cycles(robot, 0.2)
    assert robot.safety.latched and "nonfinite" in robot.safety.fault
    held = np.array([c.positions for c in sent])
    assert np.all(np.isfinite(held)) and np.ptp(held, axis=0).max() == 0.0


def test_stale_target_stops_motion(robot: RobotInterface):
    """R2: a target that is not renewed for 0.1 s is no longer followed."""
    robot.activate()
    run_cycles(robot, 0.05)
    i = _index(robot)
    target = _measured(robot).copy()
    target[i] -= 1.0  # far: still moving when it goes stale
    robot.set_target(target)
    sent = run_cycles(robot, 0.6)
    after = [c for c in sent[15:]]
    assert all(c.mode == "hold" for c in after), [c.reason for c in after[:3]]
    assert any(c.reason == "stale_target" for c in after)
    final = sent[-1].positions[i]
    assert abs(final - target[i]) > 0.5  # it stopped well short of the stale target


def test_estop_latches_until_reset_and_a_fresh_target(robot: RobotInterface):
    """R3: after an e-stop nothing moves, even with new targets, until reset + fresh target."""
    robot.activate()
    run_cycles(robot, 0.05)
    i = _index(robot)
    robot.estop("test")
    target = _measured(robot).copy()
    target[i] -= 0.1
    sent = run_cycles(robot, 0.3, on_cycle=lambda k: robot.set_target(target))
    held = np.array([c.positions for c in sent])
    assert np.ptp(held, axis=0).max() == 0.0 and robot.safety.estopped
    robot.reset()
    stale = run_cycles(robot, 0.1)
    assert all(c.mode == "hold" for c in stale)  # the pre-reset target is gone
    moved = run_cycles(robot, 0.8, on_cycle=lambda k: robot.set_target(target))
    assert moved[-1].mode == "track"
    assert abs(_measured(robot)[i] - target[i]) < 0.03
