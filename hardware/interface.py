"""`RobotInterface`: one lifecycle and one safety layer over every hardware backend.

Run: `python -c "from hardware.backends import open_robot; r = open_robot('sim', 'fetch'); r.connect(); print(r.read())"`

Lifecycle (like a ros2_control hardware component): `connect()` opens and verifies the
device (INACTIVE: reads allowed, no motion), `activate()` enables it (ACTIVE: writes
allowed), `deactivate()` stops motion into the robot's safe state, `close()` turns torque
off and releases the device. Every cycle the owner calls `read()` then `write()`; `write()`
returns the command actually sent, after the safety layer (limits, rate limits, watchdog,
e-stop, NaN rejection). Backends implement the `_hooks`; this class owns the invariants.

R7, R9, R11: see hardware/RELIABILITY.md.
"""  # noqa: E501

from __future__ import annotations

import enum
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from hardware.robots import RobotTables, robot_tables
from hardware.safety import SafeCommand, SafetyConfig, SafetyLayer, check_finite_in_limits
from sim.errors import TwinbridgeError

LINK_LOST = "link lost"  # every backend's link error starts with this
LINK_LOSSES_WARN_PER_MIN = 2  # more link losses than this in the last minute: WARN
LINK_RATE_WINDOW_S = 60.0


class Lifecycle(enum.Enum):
    UNCONFIGURED = "unconfigured"  # not connected
    INACTIVE = "inactive"  # connected and verified: reads allowed, no motion
    ACTIVE = "active"  # enabled: writes allowed
    FINALIZED = "finalized"  # closed for good


class HardwareError(TwinbridgeError, RuntimeError):
    """Base of every error a backend raises; messages say what was expected and the fix."""


class ConnectionFailed(HardwareError):
    """The device could not be opened (missing port, permission, busy)."""


class WrongDevice(HardwareError):
    """The device answered, but is not the robot this driver is configured for (R11)."""


class LifecycleError(HardwareError):
    """A call that the current lifecycle state does not allow (e.g. write while INACTIVE)."""


class DeviceRefused(HardwareError):
    """The device refused a request (e.g. enable while its e-stop is latched)."""


@dataclass(frozen=True, eq=False)
class ObjectPoseReading:
    position: np.ndarray
    quaternion: np.ndarray  # w, x, y, z


@dataclass(frozen=True, eq=False)
class Measurement:
    """One measured state: joints in the contract's order, servos in command order."""

    stamp_ns: int  # host clock when it was read
    joint_names: tuple[str, ...]
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    servo_positions: np.ndarray
    servo_velocities: np.ndarray
    servo_efforts: np.ndarray
    object_pose: ObjectPoseReading | None = None
    device_status: str = ""
    received_ns: int = -1  # host clock when it arrived (-1: same as stamp_ns)


@dataclass(frozen=True)
class LinkEvent:
    """A link loss (`lost`) or recovery: one log line for the interface's owner."""

    lost: bool
    text: str


class LinkHealth:
    """Follows a backend's link error: each loss and each recovery becomes one `LinkEvent`
    (with its cause and, for a recovery, how long it lasted), and losses over the last
    minute are a rate. A link that drops and comes back within a second is never an ERROR
    for long; without the rate nobody would notice it flapping.

    Thread-safe: the control cycle follows the error, the executor reads the rate.
    """

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        warn_per_min: int = LINK_LOSSES_WARN_PER_MIN,
    ):
        self.clock_ns = clock_ns
        self.warn_per_min = warn_per_min
        self._lock = threading.Lock()
        self._events: deque[LinkEvent] = deque(maxlen=256)  # bounded: an owner may not drain
        self._losses_ns: deque[int] = deque()
        self._down_since_ns: int | None = None
        self._cause = ""

    def follow(self, error: str) -> None:
        """The backend's error now; a change into, within or out of a link loss is an event."""
        down = self.covers(error)
        with self._lock:
            now = self.clock_ns()
            if down and error != self._cause:
                self._on_down(error, now)
            elif not down and self._down_since_ns is not None:
                self._on_up(now - self._down_since_ns)

    def _on_down(self, error: str, now: int) -> None:
        text = error
        if self._down_since_ns is None:  # a new loss (else: still lost, for a new reason)
            self._down_since_ns = now
            self._losses_ns.append(now)
            text += "; sending no commands until it recovers"
            rate = self._rate(now)
            if rate > self.warn_per_min:
                text += f" ({rate} losses in the last minute, more than {self.warn_per_min})"
        self._cause = error
        self._events.append(LinkEvent(True, text))

    def _on_up(self, down_ns: int) -> None:
        cause = self._cause.removeprefix(f"{LINK_LOST}: ")
        text = f"link recovered after {down_ns * 1e-9:.2f} s (it was lost: {cause})"
        self._events.append(LinkEvent(False, text))
        self._down_since_ns, self._cause = None, ""

    @staticmethod
    def covers(status: str) -> bool:
        """Whether `status` is a link loss (its events say it; an owner logs nothing more)."""
        return status.startswith(LINK_LOST)

    def take_events(self) -> list[LinkEvent]:
        """The events since the last call, oldest first."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    def losses_last_minute(self) -> int:
        with self._lock:
            return self._rate(self.clock_ns())

    @property
    def flapping(self) -> bool:
        """More than `warn_per_min` losses in the last minute (diagnostics WARN)."""
        return self.losses_last_minute() > self.warn_per_min

    def _rate(self, now: int) -> int:
        while self._losses_ns and now - self._losses_ns[0] > LINK_RATE_WINDOW_S * 1e9:
            self._losses_ns.popleft()
        return len(self._losses_ns)


class RobotInterface(ABC):
    """A robot behind one backend, with lifecycle gating and the safety layer."""

    backend: str = ""

    def __init__(
        self,
        robot: str,
        safety: SafetyConfig | None = None,
        limit_overrides: Mapping[str, Mapping[str, float]] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ):
        self.robot = robot
        self.tables: RobotTables = robot_tables(robot)
        limits = self.tables.limits
        if limit_overrides:
            limits = limits.with_overrides({k: dict(v) for k, v in limit_overrides.items()})
        self.limits = limits
        config = safety or SafetyConfig(safe_state=self.tables.description.safe_state)
        self.safety = SafetyLayer(limits, config)
        self.clock_ns = clock_ns
        self.lifecycle = Lifecycle.UNCONFIGURED
        self.counters: Counter[str] = Counter()
        self.last_measurement: Measurement | None = None
        self.last_sent: SafeCommand | None = None
        self.error: str = ""  # why the interface is not healthy now ("" when it is)
        self.link = LinkHealth(clock_ns)  # losses and recoveries of `error`'s link part
        self._last_target: np.ndarray | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def connect(self) -> None:
        """Open and verify the device; raises ConnectionFailed / WrongDevice."""
        self._require(Lifecycle.UNCONFIGURED, "connect")
        self._connect()
        self.lifecycle = Lifecycle.INACTIVE

    def activate(self) -> None:
        """Enable the device; motion then needs a fresh target (the safety layer holds)."""
        self._require(Lifecycle.INACTIVE, "activate")
        self.safety.on_reconnect()
        self._enable_unless_estopped()
        self.lifecycle = Lifecycle.ACTIVE

    def _enable_unless_estopped(self) -> None:
        """Enable the device; with our e-stop latched (it survives restarts), latch the
        device's instead: it stays stopped until reset()."""
        if self.safety.estopped:
            self._estop()
        else:
            self._enable(True)

    def deactivate(self) -> None:
        """Stop motion: the device goes to its safe state (brake or torque off)."""
        self._require(Lifecycle.ACTIVE, "deactivate")
        self.lifecycle = Lifecycle.INACTIVE
        self._enable(False)

    def close(self) -> None:
        """Torque off (retried by the backend) and release the device; idempotent."""
        if self.lifecycle is Lifecycle.FINALIZED:
            return
        try:
            if self.lifecycle is not Lifecycle.UNCONFIGURED:
                self._enable(False)
        finally:
            self.lifecycle = Lifecycle.FINALIZED
            self._close()

    def _require(self, state: Lifecycle, action: str) -> None:
        if self.lifecycle is not state:
            raise LifecycleError(
                f"{self.robot} ({self.backend}): {action}() needs {state.value.upper()}, "
                f"but the interface is {self.lifecycle.value.upper()}"
            )

    # -- the control cycle -------------------------------------------------------------
    def read(self) -> Measurement | None:
        """The newest measurement (None if none arrived yet); allowed unless unconfigured."""
        if self.lifecycle in (Lifecycle.UNCONFIGURED, Lifecycle.FINALIZED):
            raise LifecycleError(f"{self.robot}: read() needs connect() first")
        measurement = self._read()
        self.link.follow(self.error)
        if measurement is not None:
            self.last_measurement = measurement
        return measurement

    def set_target(
        self, targets: Mapping[str, float] | np.ndarray, received_s: float | None = None
    ) -> None:
        """The upstream target (policy, teleop): by command name or in command order.

        Latest wins; the safety layer follows it only while it is fresh (`received_s`, on
        the monotonic clock, defaults to now).
        """
        self.safety.set_target(self._target_array(targets), received_s=received_s)

    def write(self) -> SafeCommand:
        """One control cycle: ask the safety layer, send what it allows; returns what was sent.

        Only while ACTIVE (R9). With no measurement yet, or the link down, nothing moves.
        """
        if self.lifecycle is not Lifecycle.ACTIVE:
            self.counters["write_refused_inactive"] += 1
            raise LifecycleError(
                f"{self.robot}: write() needs ACTIVE (now {self.lifecycle.value.upper()}); "
                "call activate() first"
            )
        measured = self.last_measurement
        if measured is None or self.error:
            self.counters["cycles_without_link" if self.error else "cycles_unmeasured"] += 1
            return SafeCommand(None, "none", self.error or "no_measurement")
        if self._stale(measured):
            command = self.safety.next_command_unmeasured("stale_measurement")
        else:
            command = self.safety.next_command(
                measured.servo_positions, measured.servo_velocities, measured.servo_efforts
            )
        self._send_safe(command)
        self.last_sent = command
        return command

    def _stale(self, measured: Measurement) -> bool:
        """No fresh state for 3 measurement periods (R7): brake instead of steering blind."""
        arrived = measured.received_ns if measured.received_ns >= 0 else measured.stamp_ns
        return self.clock_ns() - arrived > 3 * self.measurement_period_s * 1e9

    @property
    def measurement_period_s(self) -> float:
        """How often the backend delivers a new measurement."""
        return self.safety.config.period_s

    def _send_safe(self, command: SafeCommand) -> None:
        if command.torque_off:
            self._torque_off_once()
            return
        if command.positions is None:
            return
        check_finite_in_limits(command.positions, self.limits)  # the last step before bytes
        self._send(command.positions)

    def _torque_off_once(self) -> None:
        if self.last_sent is None or not self.last_sent.torque_off:
            self._enable(False)
            self.counters["torque_off"] += 1

    # -- stops -------------------------------------------------------------------------
    def estop(self, reason: str) -> None:
        """Latch the e-stop here and on the device; survives reconnects and restarts."""
        self.safety.engage_estop(reason)
        if self.lifecycle in (Lifecycle.INACTIVE, Lifecycle.ACTIVE):
            self._estop()

    def reset(self) -> None:
        """The explicit reset: clears the latches; motion then needs a fresh target."""
        self.safety.reset()
        if self.lifecycle in (Lifecycle.INACTIVE, Lifecycle.ACTIVE):
            self._reset_fault()
        if self.lifecycle is Lifecycle.ACTIVE:
            self._enable(True)  # holds the measured position until a fresh target

    def scene_reset(self, seed: int) -> bool:
        """Reset a test rig's scene to a seeded episode; False where unsupported.

        Refused (`DeviceRefused`, nothing sent) while the e-stop or a fault is latched:
        nothing moves a latched robot, not even a scene reset."""
        if self.safety.latched:
            raise DeviceRefused(f"{self.robot}: scene reset refused: {self.safety.state}")
        return self._scene_reset(seed)

    def _scene_reset(self, seed: int) -> bool:
        """Backends whose device can reset its scene override this."""
        return False

    def _restart_from_measured(self) -> None:
        """The robot moved under us (scene reset, reconnect): forget the target and the last
        measurement, so the next command starts from a fresh measured state. Not a
        disconnect: counting one here made every episode's scene reset a "disconnect"."""
        self._last_target = None
        self.last_measurement = None
        self.safety.on_reconnect()

    def _link_down(self) -> None:
        """The link is lost (`error` says why): hold nothing from before it, count it once in
        the safety layer, and report it now (a loss inside a service call may be followed
        by its recovery before the next `read()`)."""
        self._last_target = None
        self.last_measurement = None
        self.safety.on_disconnect()
        self.link.follow(self.error)

    def _link_up(self) -> None:
        """The link is back (`error` cleared): start from the measured state, report it."""
        self._restart_from_measured()
        self.link.follow(self.error)

    def diagnostics(self) -> dict[str, object]:
        values: dict[str, object] = {
            "backend": self.backend,
            "lifecycle": self.lifecycle.value,
            "error": self.error,
        }
        values.update({f"safety_{k}": v for k, v in self.safety.diagnostics().items()})
        values["link_losses_last_min"] = self.link.losses_last_minute()
        values["link_losses_warn_per_min"] = self.link.warn_per_min
        values.update(self.counters)
        return values

    def _target_array(self, targets: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """A full target in command order; names left out keep their last target (or, with
        none yet, the measured position)."""
        names = self.limits.names
        if not isinstance(targets, Mapping):
            array = np.asarray(targets, dtype=np.float64)
        else:
            unknown = sorted(set(targets) - set(names))
            if unknown:
                raise ValueError(f"{self.robot}: unknown command names {unknown}; known {names}")
            array = self._base_target()
            for name, value in targets.items():
                array[names.index(name)] = float(value)
        self._last_target = array
        return array

    def _base_target(self) -> np.ndarray:
        if self._last_target is not None:
            return self._last_target.copy()
        if self.last_measurement is not None:
            return self.last_measurement.servo_positions.copy()
        return np.full(len(self.limits.names), np.nan)  # rejected by the safety layer

    # -- backend hooks -----------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _enable(self, enabled: bool) -> None: ...

    @abstractmethod
    def _read(self) -> Measurement | None: ...

    @abstractmethod
    def _send(self, positions: np.ndarray) -> None: ...

    @abstractmethod
    def _estop(self) -> None: ...

    @abstractmethod
    def _reset_fault(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...
