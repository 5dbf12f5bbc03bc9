"""A damaged, slow serial link: the driver rides it out, the device never acts unsafely.

    .venv/bin/pytest -q tests/test_link_faults.py

R7 (partial reads and latency spikes are bounded) and R6 on the host: `twinbridge emulate`
(its own process, on a pty) splits its replies into 1-byte writes with 0-5 ms gaps, cuts 1 %
of them short, stalls its stream for 5-50 ms now and then, and flips bits at 1e-3 per byte
in both directions, while a SerialRobot for the Fetch arm tracks a slow target at 100 Hz for 5 s.
Each read() + write() is timed in CPU time (the driver's own work) and wall time (which
adds whatever else a busy 2-core machine ran meanwhile): a driver that waited for bytes
would stall at each of the ~10 latency spikes, for 5-50 ms. The emulator, which stands for
a separate board, gets a real-time priority where allowed. What reached the servos is read
back from the emulator's log.

R6 / R25 on the device ("zero unsafe effect"): the emulator core in virtual time, no pty,
gets DEVICE_FUZZ_FRAMES chunks of Commands with any values, damaged frames, malformed frames
and garbage, one per physics step. The harness that builds them and checks the device after
every chunk and every step is `DeviceFuzz` in bench/command_flood.py, also run by
`.venv/bin/python bench/command_flood.py --device-fuzz 100000`; 10^5 chunks take about 15 s.

R6, R7, R25: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import re
import sys
import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest
from emulated_device import ROOT, EmulatedDevice

from hardware.robots import robot_tables
from hardware.safety import SafeCommand, SafetyConfig
from hardware.serial_backend import SerialConfig, SerialRobot

DEVICE_FUZZ_FRAMES = 100_000  # R25's per-PR count; about 15 s here (the budget was < 40 s)
PERIOD_S = 0.01
TRACK_S = 5.0
STALE_AFTER_S = 3 * PERIOD_S  # no fresh State for 3 state periods: hold (R7)
LINK_TIMEOUT_MS = 80.0  # PROTOCOL.md H3: 8 state periods
WATCHDOG_PERIODS = 3  # the device's watchdog_ms / T: its own jump limit, in host steps
RESYNC_WINDOW_S = 0.15  # a HOLDING State reaches the host within 10 ms + a 50 ms spike + ...
# R7 asks <= 3 ms per transaction. CPU time is the driver's own work; wall time adds the
# emulator (woken by each write) and anything else the machine runs: measured here with a
# CPU hog, p99 1-6 ms. A driver waiting for bytes would stall at every latency spike.
CPU_P99_S, CPU_MAX_S = 0.002, 0.010
WALL_P99_S, WALL_SLOW_S, WALL_SLOW_CYCLES, WALL_MAX_S = 0.010, 0.010, 3, 0.050
LINK_FAULTS = """\
deviations: default
faults:
  host_to_device:
    bit_flip_rate: 1.0e-3
  device_to_host:
    bit_flip_rate: 1.0e-3
    split_rate: 0.2            # a fifth of the replies as 1-byte writes ...
    split_pauses: 4            # ... pausing 4 times ...
    split_gap_ms: [0.0, 5.0]   # ... 0-5 ms each
    truncate_rate: 0.01
    latency_spike_rate: 0.01   # about 2 stalls a second
    latency_spike_ms: [5.0, 50.0]
"""
FAULT_KINDS = {("bit_flip", "rx"), ("bit_flip", "tx"), ("split", "tx"), ("truncate", "tx")}
FAULT_KINDS |= {("latency_spike", "tx")}

LIMITS = robot_tables("fetch").limits


@dataclass(frozen=True)
class Cycle:
    """One read() + write() of the driver under test."""

    wall_s: float
    cpu_s: float
    sent: SafeCommand
    age_s: float  # since the measurement the command was computed from arrived (inf: none)
    link_error: str  # set when this cycle declared the link lost, else ""

    @property
    def reconnecting(self) -> bool:
        """Declared the link lost, or ran while it was down (a reconnect may wait)."""
        none_sent = self.sent.mode == "none" and self.sent.reason != "stale_measurement"
        return bool(self.link_error) or none_sent


def _device_priority(pid: int) -> None:
    """The emulator stands for a separate board: where allowed, a real-time priority keeps
    a busy machine from starving it (its late States would make the driver hold)."""
    with contextlib.suppress(PermissionError, OSError, AttributeError):
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(10))


def _wait_measured(driver: SerialRobot, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while driver.read() is None and driver.last_measurement is None:
        assert time.monotonic() < end, "no State from the emulator"
        time.sleep(0.005)


def _slow_target(base: np.ndarray, t_s: float) -> np.ndarray:
    """Shoulder pan and elbow flex on slow sines (<= 0.2 rad/s), the rest still."""
    target = base.copy()
    target[LIMITS.names.index("shoulder_pan_joint")] += 0.15 * np.sin(2 * np.pi * t_s / 5.0)
    target[LIMITS.names.index("elbow_flex_joint")] += 0.12 * np.sin(2 * np.pi * t_s / 4.0)
    return target


def _timed_cycle(driver: SerialRobot) -> Cycle:
    lost = driver.counters["link_lost"]
    cpu, start = time.thread_time(), time.perf_counter()
    driver.read()
    sent = driver.write()
    done_ns = driver.clock_ns()  # the age below overstates the one write() saw by < wall_s
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    measured = driver.last_measurement
    # Staleness is judged by arrival (stamps are the device's measurement times).
    age = np.inf if measured is None else (done_ns - measured.received_ns) * 1e-9
    error = driver.error if driver.counters["link_lost"] > lost else ""
    return Cycle(wall, cpu, sent, age, error)


def _track(driver: SerialRobot, seconds: float) -> list[Cycle]:
    """Our own 100 Hz loop: a fresh slow target, then read() + write(), each cycle."""
    measured = driver.last_measurement
    assert measured is not None, "track after _wait_measured"
    base = measured.servo_positions.copy()
    cycles: list[Cycle] = []
    # The cycles run inside pytest's process: a full garbage collection of the whole test
    # session's heap (~18 ms, seen late in a full run) is not the driver's. driver_node is
    # a process of its own with a small heap.
    gc.collect()
    gc.disable()
    try:
        start = deadline = time.monotonic()
        while deadline - start < seconds:
            driver.set_target(_slow_target(base, deadline - start))
            cycles.append(_timed_cycle(driver))
            deadline += PERIOD_S
            time.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        gc.enable()
    return cycles


@pytest.fixture(scope="module")
def link_run(tmp_path_factory: pytest.TempPathFactory):
    """The driver against the faulty emulator: (cycles, driver, device)."""
    tmp = tmp_path_factory.mktemp("link-faults")
    config = tmp / "link-faults.yaml"
    config.write_text(LINK_FAULTS)
    device = EmulatedDevice("fetch", tmp, seed=3, config=config)
    _device_priority(device.process.pid)
    safety = SafetyConfig(estop_latch_path=str(tmp / "estop.json"))
    driver = SerialRobot("fetch", SerialConfig(device.port), safety)
    try:
        driver.connect()
        _wait_measured(driver)
        driver.activate()
        cycles = _track(driver, TRACK_S)
        diagnostics = driver.diagnostics()
    finally:
        driver.close()
        device.stop()
    return cycles, driver, diagnostics, device


# -- R7: the host ---------------------------------------------------------------------------
def test_each_cycle_returns_within_budget_never_waiting_for_bytes(link_run):
    cycles = link_run[0]
    assert len(cycles) >= 0.9 * TRACK_S / PERIOD_S
    steady = [c for c in cycles if not c.reconnecting]  # a reconnect waits for the device
    cpu = np.array([c.cpu_s for c in steady])
    wall = np.array([c.wall_s for c in steady])
    slow = np.sort(wall[wall > WALL_SLOW_S])[::-1]
    figures = (
        f"cpu p99 {np.percentile(cpu, 99) * 1e3:.2f} ms max {cpu.max() * 1e3:.2f} ms, "
        f"wall p99 {np.percentile(wall, 99) * 1e3:.2f} ms, over 10 ms: {slow * 1e3} ms"
    )
    assert np.percentile(cpu, 99) < CPU_P99_S and cpu.max() < CPU_MAX_S, figures
    assert np.percentile(wall, 99) < WALL_P99_S, figures
    assert len(slow) <= WALL_SLOW_CYCLES and np.all(slow < WALL_MAX_S), figures


def test_it_tracks_or_holds_on_stale_measurements_and_never_faults(link_run):
    cycles, driver = link_run[0], link_run[1]
    kinds = {(c.sent.mode, c.sent.reason) for c in cycles if not c.reconnecting}
    allowed = {("track", ""), ("hold", "stale_measurement"), ("none", "stale_measurement")}
    assert kinds <= allowed, kinds
    assert not driver.safety.latched, driver.safety.fault
    for c in cycles:
        if c.sent.mode == "hold":
            assert c.age_s > STALE_AFTER_S, f"held with a {c.age_s * 1e3:.1f} ms old State"
        elif c.sent.mode == "track":
            assert c.age_s <= STALE_AFTER_S + c.wall_s, f"tracked a {c.age_s:.3f} s old State"
    # Mostly tracking (~85-98 % here). Stamps are device time mapped to host time, so an
    # emulator that drops steps when starved makes fresh States look old: it then holds.
    assert sum(c.sent.mode == "track" for c in cycles) >= 50


def test_a_stale_hold_never_moves_except_to_brake(link_run):
    """While it holds for stale measurements each step is no longer than the one before,
    in the same direction (or zero): it decelerates within the limits, never moves on."""
    cycles = link_run[0]
    sent = [c.sent for c in cycles]
    holds = 0
    for k in range(2, len(sent)):
        if sent[k].reason != "stale_measurement" or sent[k].positions is None:
            continue
        previous = [s.positions for s in sent[k - 2 : k]]
        if any(p is None for p in previous):
            continue
        step, before = sent[k].positions - previous[1], previous[1] - previous[0]
        holds += 1
        assert np.all(np.abs(step) <= np.abs(before) + 1e-12), (k, step, before)
        reversed_ = (step * before < 0.0) & (np.abs(step) > 1e-12)  # beyond float rounding
        assert not reversed_.any(), (k, step, before)
        assert np.all(np.abs(step) <= LIMITS.velocity_max * PERIOD_S * (1 + 1e-6))
        assert np.all(sent[k].positions >= LIMITS.position_min)
        assert np.all(sent[k].positions <= LIMITS.position_max)
    assert holds > 0, "the latency spikes never made a measurement stale: no hold checked"


def test_link_is_declared_lost_only_after_80_ms_without_a_state(link_run):
    for c in link_run[0]:
        if c.link_error:
            found = re.search(r"link lost: no State from \S+ for (\d+) ms", c.link_error)
            assert found is not None, c.link_error
            assert float(found.group(1)) >= LINK_TIMEOUT_MS, c.link_error


def test_corruption_is_counted_and_stale_holds_are_in_the_diagnostics(link_run):
    cycles, driver, diagnostics = link_run[0], link_run[1], link_run[2]
    counters = driver.parser.counters
    assert counters["crc"] + counters["header_crc"] > 0, dict(counters)
    assert counters["garbage"] > 0 and counters["dropped_bytes"] > 0, dict(counters)
    stale = sum(c.sent.mode == "hold" and c.sent.reason == "stale_measurement" for c in cycles)
    assert stale > 0
    assert diagnostics["safety_count.unmeasured_stale_measurement"] == stale


def test_the_emulator_injected_every_configured_fault(link_run):
    device = link_run[3]
    injected = {(e["kind"], e.get("direction")) for e in device.events("fault_injection")}
    assert injected >= FAULT_KINDS, FAULT_KINDS - injected


# -- what reached the servos ----------------------------------------------------------------
def _f32_ulp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One float32 ulp at the larger magnitude: the wire carries float32 targets."""
    return np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float32)).astype(np.float64)


def _accepted_runs(device: EmulatedDevice) -> list[tuple[int, list[dict]]]:
    """Accepted commands, split wherever the device held (enable, watchdog, e-stop): a
    hold restarts the motion from where the joints are. Each run with its hold's time."""
    runs: list[tuple[int, list[dict]]] = [(0, [])]
    for row in device.events():
        if row["event"] == "hold":
            runs.append((row["t_us"], []))
        elif row["event"] == "command" and row["accepted"]:
            runs[-1][1].append(row)
    return [run for run in runs if run[1]]


def test_every_accepted_command_is_finite_in_limits_and_rate_limited(link_run):
    """Steps are checked per host frame: when a Command is lost to corruption the next one
    the device accepts is k frames on, and may be k * velocity_max * T away.

    One exception, within RESYNC_WINDOW_S of a device watchdog hold: the driver restarts
    its trajectory from the measured position when a State says HOLDING, but by then the
    device may already have accepted its next Commands (a hold ends at the first valid
    one), so the restart steps back by the tracking error. Those steps are held to the
    device's own rule (velocity_max * watchdog_ms, D16.4) instead.
    """
    runs = _accepted_runs(link_run[3])
    assert sum(len(rows) for _, rows in runs) >= 50  # one per tracking cycle, minus losses
    low = LIMITS.position_min.astype(np.float32).astype(np.float64)
    high = LIMITS.position_max.astype(np.float32).astype(np.float64)
    step = LIMITS.velocity_max * PERIOD_S * (1 + 1e-6)
    for hold_us, rows in runs:
        positions = np.array([[float(v) for v in r["positions"]] for r in rows])
        assert np.isfinite(positions).all()
        assert np.all(positions >= low) and np.all(positions <= high)
        frames = np.diff([r["seq"] for r in rows]) % 65536
        resync = np.array([r["t_us"] - hold_us < RESYNC_WINDOW_S * 1e6 for r in rows[1:]])
        frames = np.where(resync, np.maximum(frames, WATCHDOG_PERIODS), frames)
        jumps = np.abs(np.diff(positions, axis=0))
        allowed = frames[:, None] * step + _f32_ulp(positions[1:], positions[:-1])
        worst = int(np.argmax((jumps - allowed).max(axis=1))) if len(jumps) else 0
        assert np.all(jumps <= allowed), (rows[worst + 1], jumps[worst], allowed[worst])


# -- R6 / R25: the device -------------------------------------------------------------------
def _bench() -> ModuleType:
    path = ROOT / "bench" / "command_flood.py"
    spec = importlib.util.spec_from_file_location("bench_command_flood", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_no_frame_of_any_kind_makes_the_device_act_unsafely():
    """Hello + Enable, then DEVICE_FUZZ_FRAMES chunks (Commands with any values, damaged
    or not, malformed frames, garbage) one per 2 ms step: every accepted Command obeys
    D16, every valid one is accepted, the servos only ever follow validated targets at
    their speed limit, and the counters account for every frame."""
    bench = _bench()
    fuzz = bench.DeviceFuzz(DEVICE_FUZZ_FRAMES, seed=0)
    fuzz.run()
    report = bench.device_fuzz_report(fuzz, 1.0)
    assert report["violations"] == [] and report["violation_count"] == 0
    assert report["goals"] == {k: True for k in report["goals"]}, report["goals"]
    acc = report["accounting"]
    assert acc["undetected_damage"] <= bench.crc_escape_bound(acc["damaged_or_garbage_sent"])
    assert set(report["rejections"]) == {"count", "non_finite", "out_of_limit", "too_far"}
    errors = {"crc", "header_crc", "garbage", "oversize", "bad_payload", "unknown_type"}
    assert errors | {"bad_version"} <= set(acc["parser"]), acc["parser"]
    assert report["holds"] > 100 and report["max_hold_overshoot"] <= 0.0
    assert fuzz.emulator.enabled and not (fuzz.emulator.fault or fuzz.emulator.estop)
