"""Serial backend: a Twinbridge protocol device on a serial port (pyserial), with reconnect.

Run: `twinbridge emulate --robot fetch` in one shell, then
`python -c "from hardware.serial_backend import SerialRobot as R; d = R('fetch', '/dev/pts/N'); d.connect(); print(d.read())"`

`connect()` opens the port and verifies the device's DeviceInfo against this robot's tables
(model, joint order, command channels, limits, calibration hash) before anything is enabled
(R11). Every cycle `read()` drains the port without blocking; no State for `link_timeout_s`
before that drain (or an I/O error, or a transmit buffer the device stopped emptying) marks
the link lost: the interface holds, says why in `error`, drops the upstream target, and
reopens the port every `reconnect_interval_s`. After a reconnect the device is verified
again and, if the interface was ACTIVE, enabled holding its measured position: nothing from
before the loss is replayed. Each loss and recovery is one `LinkEvent` (interface.py).

Only the device's silence is a link loss, never the host's own: the State age is taken when
the port was drained (a cycle preempted after its drain still saw the States that came), and
writes never wait (pyserial's write timeout also expires when the writer is preempted).

R11: see hardware/RELIABILITY.md.
"""  # noqa: E501

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np
import serial

from hardware.interface import (
    LINK_LOST,
    ConnectionFailed,
    DeviceRefused,
    HardwareError,
    Lifecycle,
    Measurement,
    ObjectPoseReading,
    RobotInterface,
    WrongDevice,
)
from hardware.plausibility import ImplausibleState, StatePlausibility
from hardware.protocol import (
    VERSION,
    Ack,
    AckResult,
    Command,
    DeviceInfo,
    Enable,
    EStop,
    Fault,
    FaultCode,
    FrameParser,
    Heartbeat,
    Hello,
    Message,
    ObjectPose,
    ResetFault,
    SceneReset,
    State,
    Status,
    encode_frame,
)
from hardware.safety import SafetyConfig

HEARTBEAT_PERIOD_S = 0.1
# R13: at most 11 Command frames reach the device in any 100 ms (10 at 100 Hz, one more for
# jitter). The host's window adds the device's 2 ms step and 2 ms of link jitter.
COMMANDS_PER_WINDOW = 11
COMMAND_WINDOW_S = 0.104
# Commands kept by seq (H8): a State's last_command_seq names the device's target after a
# refusal; 64 cover 0.64 s of Commands at 100 Hz, far more than any link delay.
SENT_COMMANDS_KEPT = 64


@dataclass(frozen=True)
class SerialConfig:
    """How to reach a device and when to call the link lost."""

    port: str
    baudrate: int = 1_000_000
    handshake_timeout_s: float = 0.5
    ack_timeout_s: float = 0.2
    # 8 state periods without a State before a drain of the port: lost (PROTOCOL.md H3;
    # reported within 100 ms with a 10 ms cycle). The host's own delays do not count.
    link_timeout_s: float = 0.08
    reconnect_interval_s: float = 0.1
    torque_off_retries: int = 5

    def __post_init__(self) -> None:
        if not self.port:
            raise ValueError("SerialConfig.port is empty; pass the device path, e.g. /dev/ttyUSB0")
        for name in ("handshake_timeout_s", "ack_timeout_s", "link_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SerialConfig.{name} must be > 0")


def open_port(config: SerialConfig) -> serial.Serial:
    """The open port, or ConnectionFailed naming the port, the cause and the fix."""
    try:
        return serial.Serial(config.port, config.baudrate, timeout=0, exclusive=True)
    except serial.SerialException as e:
        raise ConnectionFailed(_open_failure(config.port, e)) from e


def _open_failure(port: str, error: serial.SerialException) -> str:
    code = getattr(error, "errno", None)
    text = str(error)
    if code == errno.ENOENT or "No such file" in text:
        fix = "check the cable and the path (ls /dev/serial/by-id/)"
        return f"serial port {port} does not exist; {fix}"
    if code == errno.EACCES or "Permission denied" in text:
        fix = "add your user to the 'dialout' group (sudo usermod -aG dialout $USER), log in again"
        return f"permission denied opening {port}; {fix}"
    if code == errno.EBUSY or "busy" in text.lower() or "lock" in text.lower():
        return f"serial port {port} is in use by another process; stop it first"
    return f"cannot open serial port {port}: {text}"


class SerialRobot(RobotInterface):
    """A robot whose servos sit behind a Twinbridge protocol device on a serial port."""

    backend = "serial"

    def __init__(
        self,
        robot: str,
        port: str | SerialConfig,
        safety: SafetyConfig | None = None,
        **kwargs,
    ):
        super().__init__(robot, safety, **kwargs)
        self.config = port if isinstance(port, SerialConfig) else SerialConfig(port)
        self.port: serial.Serial | None = None
        self.parser = FrameParser()
        self.info: DeviceInfo | None = None
        self.plausibility: StatePlausibility | None = None
        self.device_fault = ""
        self._seq = 0
        self._acks: dict[tuple[int, int], Ack] = {}  # by (acked type, acked seq): H7
        self._last_state_ns = 0
        self._pending_state: State | None = None
        self._fresh: Measurement | None = None
        self._link_lost_ns = 0
        self._last_attempt_ns = 0
        self._device_holding = False
        self.device_clock = DeviceClock()
        self._last_tx_s = 0.0
        self._heartbeats = 0
        self._command_times: deque[float] = deque(maxlen=COMMANDS_PER_WINDOW)
        self._sent_commands: OrderedDict[int, np.ndarray] = OrderedDict()
        self._command_refused = False
        self._last_state: State | None = None  # the newest plausible one

    @property
    def measurement_period_s(self) -> float:
        """The device's state period (DeviceInfo), else the control period."""
        if self.info is not None and self.info.state_period_ms > 0:
            return self.info.state_period_ms * 1e-3
        return self.safety.config.period_s

    # -- lifecycle hooks --------------------------------------------------------------
    def _connect(self) -> None:
        self.port = open_port(self.config)
        try:
            self.info = self._handshake(self.config.handshake_timeout_s)
        except HardwareError:
            self._close()
            raise
        self._new_session(self.info)

    def _new_session(self, info: DeviceInfo) -> None:
        """Forget the previous session's States and Commands (a device that restarted knows
        none of them)."""
        self.plausibility = StatePlausibility(info)
        self._last_state_ns = self.clock_ns()
        self._last_state, self._command_refused = None, False
        self._sent_commands.clear()

    def _handshake(self, timeout_s: float) -> DeviceInfo:
        """Hello until DeviceInfo arrives; verify it is this robot (R11)."""
        deadline = time.monotonic() + timeout_s
        self.parser.reset()
        other_versions = self.parser.counters["bad_version"]
        while time.monotonic() < deadline:
            self._transmit(Hello())
            found = self._wait_for(DeviceInfo, min(0.1, deadline - time.monotonic()))
            if found is not None:
                self._verify(found)
                return found
        if self.parser.counters["bad_version"] > other_versions:  # PROTOCOL.md section 5
            raise WrongDevice(
                f"the device on {self.config.port} answers in another protocol version than "
                f"{VERSION} (its frames were dropped as bad_version): update its firmware "
                "or this host"
            )
        raise ConnectionFailed(
            f"no DeviceInfo from {self.config.port} within {timeout_s} s: is a Twinbridge "
            f"protocol device ({self.tables.description.device_model}) connected, at "
            f"{self.config.baudrate} baud?"
        )

    def _verify(self, found: DeviceInfo) -> None:
        expected = self.tables.device_info(found.reports_object_pose, found.supports_scene_reset)
        problems = _device_differences(expected, found)
        if problems:
            raise WrongDevice(
                f"device on {self.config.port} is not a {self.robot} ({expected.model}): "
                + "; ".join(problems)
                + ". Fix: pick the port of the right device, or the --robot it really is"
            )

    def _enable(self, enabled: bool) -> None:
        tries = 1 if enabled else self.config.torque_off_retries
        for _ in range(tries):
            ack = self._request(Enable(enabled))
            if ack is not None and ack.result == AckResult.OK:
                return
            if ack is not None and enabled:
                raise DeviceRefused(f"{self.config.port} refused to enable: {ack.message}")
        if enabled:
            raise HardwareError(f"{self.config.port}: no answer to Enable within the timeout")
        self.counters["torque_off_unacknowledged"] += 1

    def _estop(self) -> None:
        self._request(EStop())

    def _reset_fault(self) -> None:
        self._last_target = None
        ack = self._request(ResetFault())
        if ack is None or ack.result != AckResult.OK:
            self.counters["reset_unacknowledged"] += 1

    def _close(self) -> None:
        if self.port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                self.port.close()
            self.port = None

    def _scene_reset(self, seed: int) -> bool:
        if self.info is None or not self.info.supports_scene_reset:
            return False
        ack = self._request(SceneReset(seed), timeout_s=2.0)
        if ack is not None and ack.result == AckResult.REFUSED:
            raise DeviceRefused(f"{self.robot}: the device refused the scene reset: {ack.message}")
        self._restart_from_measured()
        return ack is not None and ack.result == AckResult.OK

    # -- cycle hooks ------------------------------------------------------------------
    def _read(self) -> Measurement | None:
        if self.error:
            self._try_reconnect()
            return None
        self._fresh = None
        drained_ns = self.clock_ns()  # a State that came by now is read below
        self._poll()
        if self.error:
            return None
        self._heartbeat_if_quiet()
        age_ns = drained_ns - self._last_state_ns
        if age_ns > self.config.link_timeout_s * 1e9:
            timeout_ms = self.config.link_timeout_s * 1e3
            self._lose_link(
                f"no State from {self.config.port} for {age_ns / 1e6:.0f} ms "
                f"(timeout {timeout_ms:.0f} ms)"
            )
            return None
        return self._fresh

    def _send(self, positions: np.ndarray) -> None:
        """One Command frame, unless COMMANDS_PER_WINDOW already went out within the last
        COMMAND_WINDOW_S (R13): cycles delayed in this process (a write waiting for the
        interpreter behind a flood of callbacks) next to on-time ones would otherwise put
        12-13 frames into 100 ms at the device. A skipped target is superseded by the next
        cycle's, 10 ms later, well within the device's 30 ms watchdog and jump rule."""
        now = time.monotonic()
        sent = self._command_times
        if len(sent) == COMMANDS_PER_WINDOW and now - sent[0] < COMMAND_WINDOW_S:
            self.counters["commands_paced"] += 1
            return
        sent.append(now)
        seq = self._transmit(Command(positions))
        self._sent_commands[seq] = np.array(positions, dtype=np.float64)
        if len(self._sent_commands) > SENT_COMMANDS_KEPT:
            self._sent_commands.popitem(last=False)

    # -- link ---------------------------------------------------------------------------
    def _heartbeat_if_quiet(self) -> None:
        """PROTOCOL.md H2: a Heartbeat at least every 100 ms while no Commands go out."""
        if time.monotonic() - self._last_tx_s >= HEARTBEAT_PERIOD_S:
            self._heartbeats += 1
            self._transmit(Heartbeat(self._heartbeats & 0xFFFFFFFF))

    def _transmit(self, message: Message) -> int:
        """Send one frame without waiting: a frame the OS transmit buffer cannot take whole
        means the device stopped reading (kilobytes of frames are queued), a link loss."""
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        self._last_tx_s = time.monotonic()
        if self.port is None:
            return seq
        frame = encode_frame(message, seq)
        try:
            # The port's fd is non-blocking; pyserial's own non-blocking write would spin.
            written = os.write(self.port.fileno(), frame)
        except BlockingIOError:
            written = 0
        except (OSError, serial.SerialException) as e:
            self._lose_link(f"write to {self.config.port} failed: {e}")
            return seq
        if written != len(frame):
            self._lose_link(
                f"{self.config.port} took {written} of {len(frame)} bytes: its transmit "
                "buffer is full (the device stopped reading)"
            )
        return seq

    def _poll(self) -> None:
        """Drain the port and handle every complete frame."""
        if self.port is None:
            return
        try:
            data = self.port.read(self.port.in_waiting or 1)
        except (OSError, serial.SerialException, TypeError) as e:
            self._lose_link(f"read from {self.config.port} failed: {e}")
            return
        for frame in self.parser.feed(data, time.monotonic()):
            self._handle(frame.message)

    def _handle(self, message: Message) -> None:
        if isinstance(message, State):
            self._on_state(message)
        elif isinstance(message, ObjectPose):
            self._on_object_pose(message)
        elif isinstance(message, Ack):
            self._acks[(message.acked_type, message.acked_seq)] = message
            if message.acked_type == SceneReset.TYPE and self.plausibility is not None:
                self.plausibility.reset()  # the robot was moved on purpose: no jump check
        elif isinstance(message, Fault):
            self.counters[f"device_fault_{message.code}"] += 1
            self.device_fault = message.message
            if message.code == FaultCode.COMMAND_REJECTED and self._last_state is not None:
                self._restart_from_device_target(self._last_state)  # now, and again at
                self._command_refused = True  # the next State, which knows of later seqs

    def _on_state(self, state: State) -> None:
        if self.plausibility is None or self.info is None:
            self.counters["state_before_handshake"] += 1
            return
        try:
            self.plausibility.check(state, time.monotonic())
        except ImplausibleState as e:
            self.counters[f"implausible_{e.reason}"] += 1
            return
        self._last_state_ns = self.clock_ns()
        self._follow_device_hold(bool(state.status & Status.HOLDING))
        if self._command_refused:
            self._command_refused = False
            self._restart_from_device_target(state)
        self._last_state = state
        if self.info.reports_object_pose:
            self._pending_state = state  # completed by its ObjectPose
        self._fresh = self._measurement(state, None)

    def _follow_device_hold(self, holding: bool) -> None:
        """The device's watchdog held (our commands were late): count it, and restart the
        commanded trajectory from where the joints are, so the next command is not refused
        as a jump from where they were."""
        if holding and not self._device_holding:
            self.counters["device_watchdog_holds"] += 1
            self._sent_commands.clear()  # H8: the device's target is now its measurement
            self.safety.resync_to_measured()
        self._device_holding = holding

    def _restart_from_device_target(self, state: State) -> None:
        """After a refused Command (D17) the device keeps the target of the last Command it
        accepted, which a State names: restart the commanded trajectory from there (from the
        measurement while the device holds, or if that Command is no longer known), so the
        next Commands step from the device's target instead of being refused one after
        another from a target it never took (H8). Done when the Fault arrives (from the
        newest State) and again at the next State, which knows of Commands in flight."""
        accepted = self._sent_commands.get(state.last_command_seq)
        if state.status & Status.HOLDING or accepted is None:
            self.safety.resync_to_measured()
        else:
            self.safety.resync_to(accepted)

    def _on_object_pose(self, pose: ObjectPose) -> None:
        state = self._pending_state
        if state is None or state.device_time_us != pose.device_time_us:
            self.counters["unpaired_object_pose"] += 1
            return
        if not (np.all(np.isfinite(pose.position)) and np.all(np.isfinite(pose.quaternion))):
            self.counters["implausible_object_pose"] += 1
            return
        self._pending_state = None
        self._fresh = self._measurement(state, ObjectPoseReading(pose.position, pose.quaternion))

    def _measurement(self, state: State, pose: ObjectPoseReading | None) -> Measurement:
        return Measurement(
            stamp_ns=self.device_clock.host_ns(state.device_time_us, self._last_state_ns),
            received_ns=self._last_state_ns,
            joint_names=self.tables.joint_names,
            positions=state.positions,
            velocities=state.velocities,
            efforts=state.efforts,
            servo_positions=state.servo_positions,
            servo_velocities=state.servo_velocities,
            servo_efforts=state.servo_efforts,
            object_pose=pose,
            device_status=_status_text(state.status),
        )

    def _request(self, message: Message, timeout_s: float | None = None) -> Ack | None:
        """Send a request and wait for its Ack (States keep being handled meanwhile)."""
        if isinstance(message, Enable | ResetFault | SceneReset):
            self._sent_commands.clear()  # H8: the device's next target is its measurement
        seq = self._transmit(message)
        deadline = time.monotonic() + (timeout_s or self.config.ack_timeout_s)
        while time.monotonic() < deadline and self.port is not None:
            self._poll()
            ack = self._acks.pop((message.TYPE, seq), None)
            if ack is not None:
                return ack
            time.sleep(0.0005)
        return None

    def _wait_for(self, kind: type[DeviceInfo], timeout_s: float) -> DeviceInfo | None:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while time.monotonic() < deadline and self.port is not None:
            try:
                data = self.port.read(self.port.in_waiting or 1)
            except (OSError, serial.SerialException) as e:
                raise ConnectionFailed(f"read from {self.config.port} failed: {e}") from e
            for frame in self.parser.feed(data, time.monotonic()):
                if isinstance(frame.message, kind):
                    return frame.message
            time.sleep(0.001)
        return None

    def _lose_link(self, why: str) -> None:
        """Declare the link lost (once: a failure while reconnecting only closes the port)."""
        if not self.error:
            self.error = f"{LINK_LOST}: {why}"
            self.counters["link_lost"] += 1
            self._link_lost_ns = self.clock_ns()
            self._pending_state = None
            self._link_down()
        self._close()

    def _try_reconnect(self) -> None:
        now = self.clock_ns()
        if now - self._last_attempt_ns < self.config.reconnect_interval_s * 1e9:
            return
        self._last_attempt_ns = now
        self.counters["reconnect_attempts"] += 1
        try:
            self.port = open_port(self.config)
            self.info = self._handshake(self.config.handshake_timeout_s / 5)
            self._resume()
        except DeviceRefused:
            raise  # the device's own latch: not a link problem (the owner e-stops)
        except HardwareError as e:
            self._close()
            if isinstance(e, WrongDevice):
                self.error = f"{LINK_LOST}, and the device that came back is wrong: {e}"
            return
        self.error = ""
        self.counters["reconnects"] += 1
        self._link_up()

    def _resume(self) -> None:
        """Verified again: enable (or latch) it as before the loss; a request without an
        Ack raises HardwareError, and the link stays lost until the next attempt (a missed
        Ack while reconnecting must not stop the robot for good)."""
        if self.info is None:
            raise HardwareError(f"{self.config.port}: reconnected without a DeviceInfo")
        self._new_session(self.info)
        if self.lifecycle is Lifecycle.ACTIVE:
            # A device that lost power forgot its latch; ours did not.
            self._enable_unless_estopped()
        elif self.safety.estopped:
            self._estop()


class DeviceClock:
    """Device time -> host time: states are stamped when the device measured them, not when
    their bytes happened to arrive (serial and scheduling jitter would otherwise show up in
    every velocity the policy derives from stamps, e.g. the object's).

    The offset host - device is the smallest over the last `window` states (the least
    delayed frame of the last half second), so a device whose clock slipped (it skipped
    steps, or restarted) is followed within one window.
    """

    def __init__(self, window: int = 50):
        self._offsets: deque[int] = deque(maxlen=window)
        self._last_device_us = -1

    def host_ns(self, device_time_us: int, received_ns: int) -> int:
        device_ns = device_time_us * 1000
        if device_time_us < self._last_device_us:
            self._offsets.clear()  # the device restarted
        self._last_device_us = device_time_us
        self._offsets.append(received_ns - device_ns)
        return device_ns + min(self._offsets)


def _status_text(status: int) -> str:
    bits = (
        (Status.ENABLED, "enabled"),
        (Status.HOLDING, "holding"),
        (Status.ESTOP, "estop"),
        (Status.FAULT, "fault"),
    )
    names = [name for bit, name in bits if status & bit]
    return ",".join(names) or "disabled"


def _device_differences(expected: DeviceInfo, found: DeviceInfo) -> list[str]:
    """What differs between the expected and the found device, in words."""
    problems = []
    if found.model != expected.model:
        problems.append(f"model is {found.model!r}, expected {expected.model!r}")
    if found.firmware[0] != expected.firmware[0]:
        problems.append(
            f"firmware {'.'.join(map(str, found.firmware))} has major version "
            f"{found.firmware[0]}, this driver speaks {expected.firmware[0]}.x"
        )
    if found.state_joints != expected.state_joints:
        problems.append(f"state joints {found.state_joints}, expected {expected.state_joints}")
    if found.command_names != expected.command_names:
        problems.append(
            f"command channels {found.command_names}, expected {expected.command_names}"
        )
    else:
        problems += _limit_differences(expected, found)
    if not problems and found.calibration_hash != expected.calibration_hash:
        problems.append(
            f"calibration hash 0x{found.calibration_hash:08x}, expected "
            f"0x{expected.calibration_hash:08x} (limits differ: recalibrate or update the table)"
        )
    return problems


def _limit_differences(expected: DeviceInfo, found: DeviceInfo) -> list[str]:
    """Channels whose limits differ (compared as the float32 the wire carries)."""
    problems = []
    for want, got in zip(expected.commands, found.commands, strict=True):
        a = np.array(
            [want.position_min, want.position_max, want.velocity_max, want.effort_max],
            dtype=np.float32,
        )
        b = np.array(
            [got.position_min, got.position_max, got.velocity_max, got.effort_max],
            dtype=np.float32,
        )
        if not np.array_equal(a, b):
            problems.append(
                f"limits of {want.name} are {b.tolist()} (min, max, velocity, effort), "
                f"expected {a.tolist()}"
            )
    return problems
