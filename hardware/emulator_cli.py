"""`twinbridge emulate`: an emulated Twinbridge serial device on a pseudo-terminal, in real time.

Run: `twinbridge emulate --robot fetch --link /tmp/twinbridge-fetch --log /tmp/fetch-device.jsonl`

The first stdout line is `device: <pty path>` (then ` link: <symlink>` with --link), flushed,
so a parent process can read it and open the port. Then the emulator runs at its physics
timestep (2 ms) on `time.monotonic` deadlines: it sleeps in `select` on the pty until the
next step or the next queued write is due (so a reply never waits for a step), bursts at
most `max_burst_steps` steps when late and counts an overrun when it drops further debt.
Writes follow the emulator's outgoing schedule (split replies, gaps, latency spikes) without
blocking the physics. SIGUSR1 unplugs the device for `UNPLUG_S` (the emulator's
`disconnect()`: the pty and symlink go away, then come back). SIGINT/SIGTERM: torque off on
every servo (logged per servo), close, exit 0. A hard kill needs nothing: the host hears
silence.

The emulator stands for a separate board, which the host's load never starves: it asks for
a real-time priority (SCHED_FIFO `REALTIME_PRIORITY`) where the user may have one (root,
CAP_SYS_NICE or an rtprio limit), and says in its device log (`scheduling`) what it got.
Without it, a loaded machine delays its steps by 100 ms and more, and the host rightly calls
that silence a link loss. `--no-realtime` keeps the normal priority.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import ConfigError, TwinbridgeError
from sim.robots import ROBOT_FOLDERS

if TYPE_CHECKING:  # imported in run(): `twinbridge --help` builds every subcommand's parser
    from hardware.camera_rig import StateFeed
    from hardware.emulator import Emulator
    from hardware.pty_link import PtyLink

UNPLUG_S = 1.0  # SIGUSR1: how long the device stays unplugged
REALTIME_PRIORITY = 10  # SCHED_FIFO, low among real-time tasks (kernel threads use 50+)
ROBOTS = ROBOT_FOLDERS


@dataclass(frozen=True)
class RunnerConfig:
    """Real-time loop limits."""

    max_burst_steps: int = 4  # steps run back to back when late; older debt is dropped
    stale_backlog_bytes: int = 3000  # unread bytes at the host side that count as "stuck"
    stale_backlog_s: float = 0.5  # stuck this long: no host reading, drop it (a device's
    # transmit buffer overflows; the host never sees seconds-old States when it opens)
    max_tx_queue_bytes: int = 65536  # bytes the pty refused, kept for later; beyond: dropped

    def __post_init__(self) -> None:
        if self.max_burst_steps < 1 or self.stale_backlog_bytes < 1:
            raise ValueError("RunnerConfig: max_burst_steps and stale_backlog_bytes must be >= 1")
        if not self.stale_backlog_s > 0 or self.max_tx_queue_bytes < 1:
            raise ValueError("RunnerConfig: stale_backlog_s > 0 and max_tx_queue_bytes >= 1")


class RealTimeRunner:
    """Drives an `Emulator` on a `PtyLink` against a monotonic clock."""

    def __init__(
        self,
        emulator: Emulator,
        link: PtyLink,
        config: RunnerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        feed: StateFeed | None = None,
    ):
        self.emulator, self.link, self.feed = emulator, link, feed
        self.config = config or RunnerConfig()
        self.clock = clock
        self.steps = self.overruns = self.tx_dropped_bytes = 0
        self.stop_reason: str | None = None
        self._tx: deque[bytes] = deque()
        self._tx_bytes = 0
        self._backlog_since: float | None = None
        self._unplug_s: float | None = None

    def stop(self, reason: str) -> None:
        self.stop_reason = reason

    def unplug(self, for_s: float) -> None:
        """Ask for a disconnect of `for_s` (safe from a signal handler: applied between steps)."""
        self._unplug_s = for_s

    def run(self, duration_s: float | None = None) -> None:
        """Step in real time until `stop()` or `duration_s` elapses."""
        dt = self.emulator.timestep_s
        start = next_step = self.clock()
        while self.stop_reason is None:
            self._serve_until(next_step)
            now = self.clock()
            next_step = self._steps_due(next_step, now, dt)
            if self.feed is not None:  # a copy of ~30 floats: the cameras render elsewhere
                self.feed.write(self.emulator.device_time_us, self.emulator.world_positions())
            if self._unplug_s is not None:
                self.emulator.disconnect(self._unplug_s)
                self._unplug_s = None
            self._sync_link()
            self._flush(self.clock())
            if duration_s is not None and now - start >= duration_s:
                self.stop("duration")

    def _steps_due(self, next_step: float, now: float, dt: float) -> float:
        """Run the steps due by `now` (at most a burst); returns the next deadline."""
        burst = 0
        while next_step <= now and burst < self.config.max_burst_steps:
            self.emulator.tick(now)
            next_step += dt
            burst += 1
        self.steps += burst
        if next_step <= now:
            self.overruns += 1
            next_step = now + dt
        return next_step

    def _serve_until(self, deadline: float) -> None:
        """Until `deadline`: feed host bytes as they arrive and write replies when due."""
        while self.stop_reason is None:
            now = self.clock()
            self._read(now)
            self._flush(now)
            release = self.emulator.next_release_s()
            wake = deadline if release is None else min(deadline, release)
            if wake <= now:
                if deadline <= now:
                    return
                continue
            fd = self.link.master_fd
            if fd is None:
                time.sleep(wake - now)
            else:
                select.select([fd], [], [], wake - now)

    def _read(self, now: float) -> None:
        data = self.link.read()
        if data:
            self.emulator.receive(data, now)

    def _flush(self, now: float) -> None:
        for chunk in self.emulator.pending_writes(now):
            self._tx.append(chunk)
            self._tx_bytes += len(chunk)
        while self._tx:
            written = self.link.write(self._tx[0])
            self._tx_bytes -= written
            if written < len(self._tx[0]):
                self._tx[0] = self._tx[0][written:]
                break
            self._tx.popleft()
        self._drop_excess_tx()
        self._drop_stale_backlog(now)

    def _drop_excess_tx(self) -> None:
        while self._tx_bytes > self.config.max_tx_queue_bytes:
            dropped = self._tx.popleft()
            self._tx_bytes -= len(dropped)
            self.tx_dropped_bytes += len(dropped)

    def _drop_stale_backlog(self, now: float) -> None:
        if self.link.host_backlog() < self.config.stale_backlog_bytes:
            self._backlog_since = None
        elif self._backlog_since is None:
            self._backlog_since = now
        elif now - self._backlog_since >= self.config.stale_backlog_s:
            self.link.drop_backlog(0)
            self._backlog_since = None

    def _sync_link(self) -> None:
        """Unplug or replug the pty when the emulator's link state changed."""
        if self.emulator.connected == self.link.is_open:
            return
        if self.emulator.connected:
            path = self.link.reconnect()
            print(f"twinbridge emulate: reconnected at {path}", file=sys.stderr, flush=True)
        else:
            self.link.disconnect()
            self._tx.clear()
            self._tx_bytes = 0
            print("twinbridge emulate: disconnected", file=sys.stderr, flush=True)

    def summary(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "overruns": self.overruns,
            "tx_dropped_bytes": self.tx_dropped_bytes,
            "host_backlog_dropped_bytes": self.link.dropped_backlog_bytes,
            "stop": self.stop_reason,
        }


class EmulatorStartError(TwinbridgeError, RuntimeError):
    """`twinbridge emulate` exited or printed something else before naming its device."""


def spawn_emulator(
    robot: str,
    link: str | Path,
    *,
    log: str | Path | None = None,
    seed: int = 0,
    task: str | None = None,
    config: str | Path | None = None,
    scene: str | None = None,
    camera_feed: str | Path | None = None,
    **popen: Any,
) -> subprocess.Popen:
    """`twinbridge emulate` as its own process, once it has printed its device line (the
    serial port is then `link`). Extra keywords go to `subprocess.Popen`."""
    command = [sys.executable, "-m", "sim.cli", "emulate", "--robot", robot,
               "--seed", str(seed), "--link", str(link)]  # fmt: skip
    options = (("--log", log), ("--task", task), ("--config", config), ("--scene", scene),
               ("--camera-feed", camera_feed))  # fmt: skip
    for flag, value in options:
        if value is not None:
            command += [flag, str(value)]
    if config is not None:
        _check_config(config)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **popen)
    first = process.stdout.readline() if process.stdout is not None else ""
    if not first.startswith("device:"):
        process.kill()
        code = process.wait()
        raise EmulatorStartError(
            f"twinbridge emulate did not start (exit {code}, printed {first.strip()!r}); "
            f"run it alone to see why: {' '.join(['twinbridge', *command[3:]])}"
        )
    return process


def _check_config(path: str | Path) -> None:
    """Refuse a bad --config here, in one line, rather than as the child's exit."""
    from hardware.emulator import EmulatorConfig

    EmulatorConfig.from_yaml(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", required=True, choices=ROBOTS)
    parser.add_argument("--task", help="emulated task (default: the robot's emulator task)")
    parser.add_argument(
        "--config", help="YAML: task, scene, deviations, cameras, faults (faults-example.yaml)"
    )
    parser.add_argument(
        "--scene", help="the world's scene instead of the task's (fetch: calibration)"
    )
    parser.add_argument(
        "--camera-feed",
        type=Path,
        help="publish the world's joint positions to this file for the rig's camera driver "
        "(ros_ws/camera_driver_node.py renders and streams the cameras)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the scene, noise and faults")
    parser.add_argument("--link", help="stable symlink to the device, like /dev/serial/by-id/")
    parser.add_argument("--log", help="device log, JSON lines (flushed per line)")
    parser.add_argument("--duration-s", type=float, help="stop after this long (default: never)")
    parser.add_argument(
        "--no-realtime",
        action="store_true",
        help="keep the normal scheduling priority (default: SCHED_FIFO where permitted)",
    )


def request_realtime(enabled: bool = True) -> str:
    """SCHED_FIFO at `REALTIME_PRIORITY` for this process if `enabled` and permitted;
    returns what it runs at, in words (children fall back to normal: SCHED_RESET_ON_FORK)."""
    if not enabled:
        return "normal (--no-realtime)"
    policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(REALTIME_PRIORITY))
    except (OSError, AttributeError) as e:  # no permission, or not Linux
        return f"normal (no real-time priority: {e})"
    return f"SCHED_FIFO {REALTIME_PRIORITY}"


def run(args: argparse.Namespace) -> int:
    from hardware.emulator import Emulator, EmulatorConfig
    from hardware.pty_link import PtyLink

    if args.duration_s is not None and not args.duration_s > 0:
        raise ConfigError(f"--duration-s must be > 0 s, got {args.duration_s}")
    config = EmulatorConfig.from_yaml(args.config) if args.config else EmulatorConfig()
    config = replace(
        config,
        task=args.task or config.task,
        scene=args.scene or config.scene,
        log_path=args.log or config.log_path,
    )
    emulator = Emulator(args.robot, config, seed=args.seed)
    feed = None
    if args.camera_feed is not None:
        from hardware.camera_rig import StateFeed

        feed = StateFeed.create(args.camera_feed, emulator.world_positions().size)
    scheduling = request_realtime(not args.no_realtime)
    emulator.log.write(emulator.device_time_us, "scheduling", priority=scheduling)
    with PtyLink(args.link) as link:
        link_text = f" link: {link.link_path}" if link.link_path is not None else ""
        print(f"device: {link.device_path}{link_text}", flush=True)
        runner = RealTimeRunner(emulator, link, feed=feed)
        previous = {
            s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
        }
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda number, _: runner.stop(signal.Signals(number).name))
        signal.signal(signal.SIGUSR1, lambda *_: runner.unplug(UNPLUG_S))
        try:
            runner.run(args.duration_s)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            emulator.shutdown(runner.stop_reason or "error")
            if feed is not None:
                feed.close()
    print(f"twinbridge emulate: {runner.summary()}", file=sys.stderr, flush=True)
    return 0
