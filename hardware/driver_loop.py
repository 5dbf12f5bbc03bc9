"""`DriverLoop`: driver_node's work without ROS: a `DriverCore` through its lifecycle, its
control cycle, the commands it is given and the states and log lines it hands out.

Run: `python -c "from hardware.driver_loop import StatusLog; print(StatusLog().last)"`

It runs the driver as ros2_control runs a hardware interface: `configure` builds the
driver and connects (a wrong device raises), `activate` enables it and starts the cycle
on a thread of its own (a busy executor must not delay a read/write), `deactivate` stops
the cycle and brings the device to its safe state, `close` turns torque off and releases
it. Commands are latest-wins (ros2_control's realtime buffer): a flood costs the
caller a reference swap per message, and the cycle at most one validation per period.
Whatever fails inside the cycle ends in the e-stop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from hardware.driver_core import DriverCore, build_driver
from hardware.driver_settings import DriverSettings
from hardware.interface import Measurement
from hardware.periodic import PeriodicLoop
from sim.contract.command_rules import CommandRejected, CommandRules
from sim.latency import LatencyTracker

MAX_COMMAND_NAMES = 64  # PROTOCOL.md's most channels of any device
MAX_COMMAND_POINTS = 100
# A command's validated targets, computed in the cycle from (now in s, the rules).
TargetsOf = Callable[[float, CommandRules], dict[str, float]]


class DriverOutputs(Protocol):
    """Where a loop's results go (driver_node: its topics, logger and counters)."""

    counters: Counter[str]

    def publish_state(self, stamp_ns: int, measured: Measurement, sent: Any) -> None: ...

    def reject(self, error: CommandRejected) -> None: ...

    def get_logger(self) -> Any: ...  # with .error(text) and .info(text)


class StatusLog:
    """What to log about control of the robot: every latch (e-stop, fault) once, with its
    reason; every link loss and recovery once, with its cause, from the interface's link
    events (a loss and its recovery may both fall between two cycles)."""

    def __init__(self) -> None:
        self.last = ""

    def changes(self, core: Any) -> list[tuple[bool, str]]:
        """(is an error, text) of each change since the last call."""
        link = core.interface.link
        lines = [(event.lost, event.text) for event in link.take_events()]
        status, previous = core.status, self.last
        if status == previous:
            return lines
        self.last = status
        if link.covers(status) or (not status and link.covers(previous)):
            return lines  # said by a link event
        lines.append((True, status) if status else (False, "healthy: latches and errors cleared"))
        return lines


class DriverLoop:
    """One configured driver: its core, cycle, newest command and latency."""

    def __init__(self, core: DriverCore, settings: DriverSettings, outputs: DriverOutputs):
        self.core, self.outputs = core, outputs
        self.period_s = 1.0 / settings.cycle_rate_hz
        self.state_period_s = 1.0 / settings.publish_rate_hz
        limits = core.interface.limits
        self.command_names = limits.names
        self.rules = CommandRules(
            limits.names, limits.position_min, limits.position_max, settings.command_max_age_s,
            allow_partial=settings.allow_partial_joints_goal,
        )  # fmt: skip
        # state -> command latency, as twin_node measures it (the summary of twinbridge sim)
        self.latency = LatencyTracker(deadline_s=self.state_period_s)
        self.status_log = StatusLog()
        self._pending: tuple[TargetsOf, int, int, float] | None = None
        self._cycle: PeriodicLoop | None = None

    @classmethod
    def configure(
        cls, settings: DriverSettings, outputs: DriverOutputs, options: dict | None = None
    ) -> DriverLoop:
        """The driver over its backend, connected and verified (or HardwareError)."""
        core = build_driver(settings, options)
        try:
            core.interface.connect()
        except Exception:
            core.stop()
            raise
        return cls(core, settings, outputs)

    def activate(self) -> None:
        self.core.interface.activate()
        self._cycle = PeriodicLoop(self.period_s, self._step)
        self._cycle.start()

    def deactivate(self) -> None:
        self._stop_cycle()
        self.core.interface.deactivate()

    def close(self) -> None:
        """Safe state and release: torque off / brake per the robot, then close."""
        self._stop_cycle()
        self.core.stop()

    def submit(self, targets_of: TargetsOf, stamp_ns: int, names: int, points: Sequence) -> None:
        """Keep the newest command (`names` joint names, `points` with `.positions`), with
        its arrival time; an oversized one is refused here, in O(1), never handed on."""
        if (
            names > MAX_COMMAND_NAMES
            or len(points) > MAX_COMMAND_POINTS
            or any(len(p.positions) > MAX_COMMAND_NAMES for p in points)
        ):
            self.outputs.reject(
                CommandRejected("oversized", f"{names} names, {len(points)} points")
            )
            return
        if self._pending is not None:
            self.outputs.counters["commands_superseded"] += 1
        self._pending = (targets_of, stamp_ns, time.time_ns(), time.monotonic())

    def _step(self) -> None:
        core = self.core
        try:
            self._apply_pending()
            result = core.cycle(time.time_ns())
        except Exception as e:  # the last line of defence: any failure ends in a safe state
            core.estop(f"driver error: {type(e).__name__}: {e}")
            self.outputs.counters["driver_errors"] += 1
            return
        self._log_changes()
        if result.publish is not None:
            self._publish(result.publish, result.sent.positions)

    def _log_changes(self) -> None:
        log = self.outputs.get_logger()
        for error, text in self.status_log.changes(self.core):
            if error:  # one call site per severity (rclpy's rule)
                log.error(text)
            else:
                log.info(text)

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        targets_of, stamp_ns, received_ns, arrived_s = pending
        try:
            targets = targets_of(received_ns * 1e-9, self.rules)
            self.core.on_command(targets, stamp_ns, received_ns)
        except CommandRejected as e:
            self.outputs.reject(e)
            return
        except ValueError as e:
            self.outputs.reject(CommandRejected("invalid", str(e)))
            return
        self.latency.answered(stamp_ns, arrived_s)
        self.outputs.counters["commands_accepted"] += 1

    def _publish(self, measured: Measurement, sent: np.ndarray | None) -> None:
        # Measurements are stamped on the monotonic clock; the contract carries wall time.
        stamp_ns = time.time_ns() - (time.monotonic_ns() - measured.stamp_ns)
        # While latched, commanders hold: no answer is due, so no deadline can be missed.
        self.latency.published(stamp_ns, time.monotonic(), awaited=not self.core.status)
        self.outputs.publish_state(stamp_ns, measured, sent)

    def diagnostics(self) -> dict[str, object]:
        summary, cycle = self.latency.summary(), self._cycle
        lateness = cycle.lateness_ms() if cycle is not None else {}
        return {
            **self.core.diagnostics(),
            **{f"cycle_lateness_{k}_ms": round(v, 3) for k, v in lateness.items()},
            "cycle_overruns": cycle.overruns if cycle is not None else 0,
            "latency_samples": summary.samples,
            "latency_p50_ms": summary.p50_ms,
            "latency_p99_ms": summary.p99_ms,
            "latency_max_ms": summary.max_ms,
            "deadline_misses": summary.deadline_misses,
        }

    def _stop_cycle(self) -> None:
        if self._cycle is not None:
            self._cycle.stop()
            self._cycle = None
