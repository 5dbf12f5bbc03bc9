"""`DriverCore`: a `RobotInterface` run as the robot on the topic contract (driver_node's core).

Run: `python -c "from hardware.driver_core import DriverCore; from hardware.sim_backend import SimRobot; c = DriverCore(SimRobot('fetch')); c.start(); print(c.cycle(1))"`

Every cycle (100 Hz) it reads the device and writes one safe command; every
`publish_every`-th cycle it hands the measurement out for `joint_states` (the policy's rate).
Upstream commands arrive with the stamp of the state they answer: their age is counted from
that stamp, so a target computed from an old state is as stale as the state was (the safety
layer never follows a target older than `command_timeout_s`). `enable` is the explicit reset
of the e-stop; `reset` starts the next seeded episode where the device can (an emulator),
by the contract's rules (sim/contract/episode_gate.py): refused while a latch holds the robot or an
episode runs; after it, commands wait for the episode's goal (at most `goal_timeout_s`) and
commands answering a state from before it are dropped.
"""  # noqa: E501

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from hardware.backends import BackendRequest, load_limit_overrides, make_interface
from hardware.driver_settings import DriverSettings
from hardware.interface import (
    DeviceRefused,
    HardwareError,
    Lifecycle,
    Measurement,
    RobotInterface,
)
from hardware.safety import SafeCommand
from sim.contract.command_rules import CommandRejected, check_episode
from sim.contract.episode_gate import EpisodeGate, ResetRefused


def build_driver(settings: DriverSettings, options: dict | None = None) -> DriverCore:
    """The driver core over the backend `settings` name (not yet connected)."""
    overrides = load_limit_overrides(settings.limits_path) if settings.limits_path else {}
    request = BackendRequest(
        settings.robot, settings.safety(), overrides, settings.port, settings.baudrate,
        settings.task, settings.seed, dict(options or {}),
    )  # fmt: skip
    interface = make_interface(settings.backend, request)
    gate = EpisodeGate(settings.seed, _episode_steps(settings.task))
    return DriverCore(interface, settings.publish_every, gate, settings.goal_timeout_s)


def _episode_steps(task: str) -> int | None:
    """Control periods in one of `task`'s episodes; None without a task (never waited on)."""
    if not task:
        return None
    from sim.tasks import get_task_spec

    return get_task_spec(task).max_episode_steps


@dataclass(frozen=True)
class CycleResult:
    """What one control cycle produced: the command sent, and a state to publish (or None)."""

    sent: SafeCommand
    publish: Measurement | None


class DriverCore:
    """Lifecycle, cycle, commands and stops of one robot interface."""

    def __init__(
        self,
        interface: RobotInterface,
        publish_every: int = 4,
        gate: EpisodeGate | None = None,
        goal_timeout_s: float = 2.0,
    ):
        if publish_every < 1:
            raise ValueError("publish_every must be >= 1")
        self.interface = interface
        self.publish_every = publish_every
        self.gate = gate or EpisodeGate(0, None)
        self.goal_timeout_s = goal_timeout_s
        self.goal_timeouts = 0
        self._episode_start_ns = 0  # wall time of the last reset: older states, older episode
        self._reset_s = 0.0
        self._moving_since_s = 0.0  # when the robot last stopped holding for a goal
        self._cycles = 0
        # The cycle runs on its own thread; commands and services arrive on the executor's.
        self._lock = threading.RLock()

    def start(self) -> None:
        """connect + activate (a lifecycle manager may instead call them one by one)."""
        self.interface.connect()
        self.interface.activate()

    def cycle(self, now_ns: int) -> CycleResult:
        """Read, write one safe command, and say whether this cycle's state is published."""
        with self._lock:
            interface = self.interface
            measured = interface.read()
            if interface.lifecycle is Lifecycle.ACTIVE:
                sent = interface.write()
            else:
                sent = SafeCommand(None, "none", "inactive")
            self._cycles += 1
            due = measured is not None and self._cycles >= self.publish_every
            if due:
                self._cycles = 0
            self._count_periods(time.monotonic())
            return CycleResult(sent, measured if due else None)

    def _count_periods(self, now_s: float) -> None:
        """The episode's clock: control periods of wall time since the robot stopped
        holding for the goal (as the task node counts stamps), or the end of that hold when
        no goal came (a reset from outside the task node)."""
        if self.gate.holding:
            if now_s - self._reset_s <= self.goal_timeout_s:
                return
            self.goal_timeouts += 1
            self.gate.goal_overdue()
            self._moving_since_s = now_s
        period_s = self.publish_every * self.interface.safety.config.period_s
        self.gate.periods_elapsed(int((now_s - self._moving_since_s) / period_s))

    def on_goal(self, stamp_ns: int) -> None:
        """A goal stamped at or after the last reset is that episode's: commands may move."""
        with self._lock:
            if self.gate.awaiting_goal and stamp_ns >= self._episode_start_ns:
                self.gate.goal_arrived()
                self._moving_since_s = time.monotonic()

    def on_command(self, targets: dict[str, float], stamp_ns: int, now_ns: int) -> None:
        """A validated upstream command answering the state stamped `stamp_ns`."""
        with self._lock:
            if self.gate.holding:
                raise CommandRejected("awaiting_goal", "the episode's goal has not arrived")
            check_episode(stamp_ns, self._episode_start_ns)
            age_s = max(0.0, (now_ns - stamp_ns) * 1e-9)
            self.interface.set_target(targets, received_s=time.monotonic() - age_s)

    def estop(self, reason: str) -> None:
        with self._lock:
            self.interface.estop(reason)

    def enable(self) -> str:
        """The explicit reset of the e-stop and faults; motion needs a fresh command."""
        with self._lock:
            self.interface.reset()
            return "reset: e-stop and faults cleared; holding until a fresh command"

    def estop_request(self, engage: bool) -> tuple[bool, str]:
        """The `estop` service: true latches; false is refused (only `enable` releases)."""
        with self._lock:
            if not engage:
                return False, "the e-stop is released only by the 'enable' service"
            self.estop("estop service")
            return True, "e-stop latched"

    def reset_request(self, now_ns: int = 0) -> tuple[bool, str]:
        """The `reset` service's answer: the episode's seed and the stamp from which states
        belong to it (not before `now_ns`, nor before the scene reset ended), or a refusal
        with its reason (nothing moved, no seed used up)."""
        with self._lock:
            try:
                safety = self.interface.safety
                plan = self.gate.plan(safety.state if safety.latched else None)
                if not plan.move:
                    return True, f"seed={plan.seed} stamp_ns={self._episode_start_ns}"
                moved = self._scene_reset(plan.seed)
            except (ResetRefused, DeviceRefused) as e:
                return False, str(e)
            self.gate.commit(plan)
            # States measured before the scene reset finished belong to the old scene.
            start_ns = max(now_ns, time.time_ns())
            self._episode_start_ns, self._reset_s = start_ns, time.monotonic()
            note = "" if moved else " (the device cannot reset its scene: set it up by hand)"
            return True, f"seed={plan.seed} stamp_ns={start_ns}{note}"

    def _scene_reset(self, seed: int) -> bool:
        try:
            return self.interface.scene_reset(seed)
        except DeviceRefused:
            raise
        except HardwareError:
            return False

    def diagnostics(self) -> dict[str, object]:
        with self._lock:
            return {
                **self.interface.diagnostics(),
                "episodes": self.gate.started,
                "holding_for_goal": self.gate.holding,
                "goal_timeouts": self.goal_timeouts,
            }

    @property
    def status(self) -> str:
        """Why the robot is not under control ("" when it is): a link error or a latch."""
        interface = self.interface
        return interface.error or (interface.safety.state if interface.safety.latched else "")

    def stop(self) -> None:
        """Safe state and release: torque off / brake per the robot, then close."""
        with self._lock:
            self.interface.close()
