"""The Twinbridge serial protocol (hardware/PROTOCOL.md): frames, messages and a stream parser.

Run: `python -c "import hardware.protocol as p; print(p.encode_frame(p.Heartbeat(7), 1).hex())"`

Pure bytes in, bytes out: no I/O here, so the driver, the emulator and the fuzz tests all use
the same code and a third party can check it against the test vectors in PROTOCOL.md.
Every frame is `A5 5A | version | type | seq u16 | length u16 | CRC-8(header) | payload |
CRC-16/CCITT-FALSE`, little-endian. The parser resynchronises after garbage by dropping one
byte and searching for the next sync pair, and counts every kind of damage it sees.
"""

from __future__ import annotations

import binascii
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from sim.errors import TwinbridgeError

SYNC = b"\xa5\x5a"
VERSION = 1
HEADER_SIZE = 9  # sync(2) version(1) type(1) seq(2) length(2) header-crc(1)
CRC_SIZE = 2
MAX_PAYLOAD = 1024
MAX_JOINTS = 64
MAX_NAME = 64


class ProtocolError(TwinbridgeError, ValueError):
    """A frame or payload that does not follow PROTOCOL.md; `reason` is a counter key."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


# -- checksums -------------------------------------------------------------------------------
def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected); "123456789" -> 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8 = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0x00); "123456789" -> 0xF4. Guards the header, so a
    corrupted length is caught at once instead of swallowing the frames that follow."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


# -- payload fields ------------------------------------------------------------------------
class _Reader:
    """Reads little-endian fields from a payload; any overrun or leftover is `bad_payload`."""

    def __init__(self, payload: bytes, kind: str):
        self.data, self.offset, self.kind = payload, 0, kind

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.offset + size > len(self.data):
            raise ProtocolError("bad_payload", f"{self.kind} payload ends early")
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += size
        return values

    def one(self, fmt: str):
        return self.take(fmt)[0]

    def text(self) -> str:
        size = self.one("B")
        if size > MAX_NAME or self.offset + size > len(self.data):
            raise ProtocolError("bad_payload", f"{self.kind} string of {size} bytes")
        raw = self.data[self.offset : self.offset + size]
        self.offset += size
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("bad_payload", f"{self.kind} string is not UTF-8") from e

    def floats(self, count: int) -> np.ndarray:
        return np.array(self.take(f"{count}f"), dtype=np.float64)

    def count(self, what: str) -> int:
        n = self.one("B")
        if n > MAX_JOINTS:
            raise ProtocolError("bad_payload", f"{self.kind} claims {n} {what} (max {MAX_JOINTS})")
        return n

    def end(self) -> None:
        if self.offset != len(self.data):
            extra = len(self.data) - self.offset
            raise ProtocolError("bad_payload", f"{self.kind} has {extra} trailing bytes")


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_NAME:
        raise ProtocolError("bad_payload", f"string {value[:20]!r}... longer than {MAX_NAME} B")
    return struct.pack("<B", len(raw)) + raw


def _same_count(what: str, *arrays: np.ndarray) -> None:
    """Arrays sent under one count byte must share that count, at most MAX_JOINTS."""
    sizes = {len(a) for a in arrays}
    if len(sizes) != 1 or max(sizes) > MAX_JOINTS:
        raise ProtocolError(
            "bad_payload", f"{what}: sizes {sorted(sizes)} (equal, <= {MAX_JOINTS})"
        )


def _floats(values: np.ndarray) -> bytes:
    return struct.pack(f"<{len(values)}f", *(float(v) for v in values))


# -- messages --------------------------------------------------------------------------------
class Message:
    """A decoded payload; subclasses set TYPE and implement payload()/parse()."""

    TYPE: ClassVar[int]

    def payload(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, reader: _Reader) -> Message:
        return cls()


@dataclass(frozen=True)
class Hello(Message):
    """Host -> device: open a session; the device answers DeviceInfo."""

    TYPE: ClassVar[int] = 0x01
    protocol_version: int = VERSION

    def payload(self) -> bytes:
        return struct.pack("<B", self.protocol_version)

    @classmethod
    def parse(cls, reader: _Reader) -> Hello:
        return cls(reader.one("B"))


@dataclass(frozen=True)
class CommandChannel:
    """One commanded servo: its name and limits (SI units: rad or m, per second)."""

    name: str
    position_min: float
    position_max: float
    velocity_max: float
    effort_max: float


@dataclass(frozen=True)
class DeviceInfo(Message):
    """Device -> host: who the device is and the order of its state joints and commands."""

    TYPE: ClassVar[int] = 0x02
    model: str
    firmware: tuple[int, int, int]
    calibration_hash: int
    watchdog_ms: int
    state_period_ms: int
    state_joints: tuple[str, ...]
    commands: tuple[CommandChannel, ...]
    reports_object_pose: bool = False
    supports_scene_reset: bool = False

    def payload(self) -> bytes:
        out = _text(self.model) + struct.pack(
            "<3BIHH", *self.firmware, self.calibration_hash, self.watchdog_ms, self.state_period_ms
        )
        out += struct.pack("<B", len(self.state_joints))
        out += b"".join(_text(name) for name in self.state_joints)
        out += struct.pack("<B", len(self.commands))
        for c in self.commands:
            out += _text(c.name) + struct.pack(
                "<4f", c.position_min, c.position_max, c.velocity_max, c.effort_max
            )
        flags = int(self.reports_object_pose) | int(self.supports_scene_reset) << 1
        return out + struct.pack("<B", flags)

    @classmethod
    def parse(cls, reader: _Reader) -> DeviceInfo:
        model = reader.text()
        major, minor, patch, calibration, watchdog, period = reader.take("3BIHH")
        joints = tuple(reader.text() for _ in range(reader.count("state joints")))
        commands = tuple(
            CommandChannel(reader.text(), *reader.take("4f"))
            for _ in range(reader.count("commands"))
        )
        flags = reader.one("B")
        return cls(
            model,
            (major, minor, patch),
            calibration,
            watchdog,
            period,
            joints,
            commands,
            bool(flags & 1),
            bool(flags & 2),
        )

    @property
    def command_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.commands)


class Status:
    """Bits of State.status."""

    ENABLED = 1 << 0  # servos powered and following commands (else torque off)
    HOLDING = 1 << 1  # device watchdog tripped: holding the measured position
    ESTOP = 1 << 2  # e-stop latched on the device
    FAULT = 1 << 3  # a fault is latched on the device (see the last Fault frame)


@dataclass(frozen=True, eq=False)
class State(Message):
    """Device -> host, every state period: measured joints in DeviceInfo.state_joints order,
    then each servo's own measurement in DeviceInfo.commands order (a servo can drive a
    coupled pair, like the Fetch gripper, so it is not always one of the joints)."""

    TYPE: ClassVar[int] = 0x10
    device_time_us: int
    status: int
    last_command_seq: int
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    servo_positions: np.ndarray
    servo_velocities: np.ndarray
    servo_efforts: np.ndarray

    def payload(self) -> bytes:
        _same_count("State joints", self.positions, self.velocities, self.efforts)
        _same_count(
            "State servos", self.servo_positions, self.servo_velocities, self.servo_efforts
        )
        head = struct.pack("<QHH", self.device_time_us, self.status, self.last_command_seq)
        joints = struct.pack("<B", len(self.positions))
        joints += _floats(self.positions) + _floats(self.velocities) + _floats(self.efforts)
        servos = struct.pack("<B", len(self.servo_positions)) + _floats(self.servo_positions)
        servos += _floats(self.servo_velocities) + _floats(self.servo_efforts)
        return head + joints + servos

    @classmethod
    def parse(cls, reader: _Reader) -> State:
        time_us, status, seq = reader.take("QHH")
        n = reader.count("joints")
        joints = reader.floats(n), reader.floats(n), reader.floats(n)
        m = reader.count("servos")
        return cls(
            time_us, status, seq, *joints, reader.floats(m), reader.floats(m), reader.floats(m)
        )


@dataclass(frozen=True, eq=False)
class ObjectPose(Message):
    """Device -> host (optional, DeviceInfo flag): a tracked object's pose in the world frame,
    stamped with the State it belongs to (an emulator's ground truth or a mocap bridge)."""

    TYPE: ClassVar[int] = 0x11
    device_time_us: int
    position: np.ndarray  # x, y, z in m
    quaternion: np.ndarray  # w, x, y, z

    def payload(self) -> bytes:
        return (
            struct.pack("<Q", self.device_time_us)
            + _floats(self.position)
            + _floats(self.quaternion)
        )

    @classmethod
    def parse(cls, reader: _Reader) -> ObjectPose:
        return cls(reader.one("Q"), reader.floats(3), reader.floats(4))


@dataclass(frozen=True, eq=False)
class Command(Message):
    """Host -> device: position targets in DeviceInfo.commands order; feeds the watchdog."""

    TYPE: ClassVar[int] = 0x20
    positions: np.ndarray

    def payload(self) -> bytes:
        _same_count("Command", self.positions)
        return struct.pack("<B", len(self.positions)) + _floats(self.positions)

    @classmethod
    def parse(cls, reader: _Reader) -> Command:
        return cls(reader.floats(reader.count("commands")))


@dataclass(frozen=True)
class Enable(Message):
    """Host -> device: 1 = servos on, holding the measured position; 0 = torque off."""

    TYPE: ClassVar[int] = 0x21
    enabled: bool

    def payload(self) -> bytes:
        return struct.pack("<B", int(self.enabled))

    @classmethod
    def parse(cls, reader: _Reader) -> Enable:
        value = reader.one("B")
        if value not in (0, 1):
            raise ProtocolError("bad_payload", f"Enable value {value} (0 or 1)")
        return cls(bool(value))


@dataclass(frozen=True)
class EStop(Message):
    """Host -> device: latch the device's e-stop (hold); only ResetFault clears it."""

    TYPE: ClassVar[int] = 0x22


@dataclass(frozen=True)
class Heartbeat(Message):
    """Host -> device while not commanding: keeps the link alive (not the motion watchdog)."""

    TYPE: ClassVar[int] = 0x23
    counter: int

    def payload(self) -> bytes:
        return struct.pack("<I", self.counter)

    @classmethod
    def parse(cls, reader: _Reader) -> Heartbeat:
        return cls(reader.one("I"))


@dataclass(frozen=True)
class ResetFault(Message):
    """Host -> device: clear latched e-stop and faults; the device holds until a fresh
    Command arrives."""

    TYPE: ClassVar[int] = 0x24


@dataclass(frozen=True)
class SceneReset(Message):
    """Host -> device (optional, DeviceInfo flag): reset a test rig's scene to a seeded
    episode. Emulators implement it; real firmware answers Ack(UNSUPPORTED)."""

    TYPE: ClassVar[int] = 0x25
    seed: int

    def payload(self) -> bytes:
        return struct.pack("<I", self.seed)

    @classmethod
    def parse(cls, reader: _Reader) -> SceneReset:
        return cls(reader.one("I"))


class AckResult:
    OK = 0
    UNSUPPORTED = 1
    REFUSED = 2  # not allowed in the device's state (e.g. Command while disabled/estopped)
    BAD_PAYLOAD = 3


@dataclass(frozen=True)
class Ack(Message):
    """Device -> host: the answer to Enable, EStop, ResetFault and SceneReset."""

    TYPE: ClassVar[int] = 0x30
    acked_type: int
    acked_seq: int
    result: int
    message: str = ""

    def payload(self) -> bytes:
        return struct.pack("<BHB", self.acked_type, self.acked_seq, self.result) + _text(
            self.message
        )

    @classmethod
    def parse(cls, reader: _Reader) -> Ack:
        kind, seq, result = reader.take("BHB")
        return cls(kind, seq, result, reader.text())


class FaultCode:
    WATCHDOG = 1  # no valid Command within watchdog_ms while enabled: holding
    COMMAND_REJECTED = 2  # a Command with a non-finite, out-of-limit or too-far target
    TRACKING = 3  # a servo far off its setpoint for 500 ms (seized, broken, blocked): D20
    ESTOP = 4
    LINK = 5  # nothing from the host for the link timeout: torque off / hold per device
    INTERNAL = 6


NO_JOINT = 0xFF


@dataclass(frozen=True)
class Fault(Message):
    """Device -> host: something the device did to stay safe, with the joint if any."""

    TYPE: ClassVar[int] = 0x31
    code: int
    joint: int = NO_JOINT
    message: str = ""

    def payload(self) -> bytes:
        return struct.pack("<HB", self.code, self.joint) + _text(self.message)

    @classmethod
    def parse(cls, reader: _Reader) -> Fault:
        code, joint = reader.take("HB")
        return cls(code, joint, reader.text())


MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        DeviceInfo,
        State,
        ObjectPose,
        Command,
        Enable,
        EStop,
        Heartbeat,
        ResetFault,
        SceneReset,
        Ack,
        Fault,
    )
}


# -- frames --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One checked frame: its sequence number and decoded message."""

    seq: int
    message: Message


def encode_frame(message: Message, seq: int) -> bytes:
    """The bytes of one frame carrying `message` with sequence number `seq` (mod 2^16);
    ProtocolError for a message the receiver would refuse (so it is never sent)."""
    try:
        payload = message.payload()
    except (struct.error, OverflowError) as e:
        raise ProtocolError("bad_payload", f"{type(message).__name__}: {e}") from e
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("oversize", f"{type(message).__name__} payload {len(payload)} B")
    header = struct.pack("<BBHH", VERSION, message.TYPE, seq & 0xFFFF, len(payload))
    body = header + bytes([crc8(header)]) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


def decode_payload(kind: int, payload: bytes) -> Message:
    """The message of a CRC-checked frame, or ProtocolError (`unknown_type`, `bad_payload`)."""
    cls = MESSAGES.get(kind)
    if cls is None:
        raise ProtocolError("unknown_type", f"frame type 0x{kind:02x}")
    reader = _Reader(payload, cls.__name__)
    message = cls.parse(reader)
    reader.end()
    return message


@dataclass
class FrameParser:
    """Turns a byte stream into frames; never raises on bad input, counts it instead.

    `feed(data, now_s)` returns the frames completed by `data`. The frame at the head of
    the buffer gets `frame_timeout_s` plus its own transfer time at `link_bytes_per_s`
    (its header's claimed length) to complete; after that its first byte is dropped as
    `partial_timeout` and the rest rescanned. So a cut link never leaves half a frame to
    corrupt the next session, a false header holds back the frames behind it for at most
    that long, and a long frame on a slow UART is still received whole.
    """

    frame_timeout_s: float = 0.05
    link_bytes_per_s: float = 100_000.0  # 1 Mbaud at 10 bits per byte
    # The longest payload this side can be sent (a device: a Command for its channels): a
    # head frame claiming more is a false header, given no longer to arrive (R4).
    longest_payload: int = MAX_PAYLOAD
    counters: Counter[str] = field(default_factory=Counter)
    _buffer: bytearray = field(default_factory=bytearray)
    _partial_since_s: float | None = None

    def feed(self, data: bytes, now_s: float) -> list[Frame]:
        self._buffer += data
        self.counters["bytes"] += len(data)
        frames = self._scan()
        while self._buffer and self._partial_expired(now_s):
            # The head frame waited too long for its rest: it was a false start (or cut).
            # Drop one byte only, as after any error, so frames behind it survive.
            self._skip(1, "partial_timeout")
            frames += self._scan()
        if self._buffer and self._partial_since_s is None:
            self._partial_since_s = now_s
        return frames

    def expire(self, now_s: float) -> list[Frame]:
        """R4 on the clock: the frames a partial head frame's timeout releases by `now_s`
        with no byte arriving (none, at once, when nothing is buffered)."""
        return self.feed(b"", now_s) if self._buffer else []

    def reset(self) -> None:
        """Forget buffered bytes (after a reconnect)."""
        self._buffer.clear()
        self._partial_since_s = None

    def _scan(self) -> list[Frame]:
        frames: list[Frame] = []
        while True:
            frame, complete = self._next_frame()
            if frame is not None:
                frames.append(frame)
            if not complete:
                return frames

    def _partial_expired(self, now_s: float) -> bool:
        since = self._partial_since_s
        if since is None:
            return False
        transfer_s = self._claimed_size() / self.link_bytes_per_s
        return now_s - since > self.frame_timeout_s + transfer_s

    def _claimed_size(self) -> int:
        """The head frame's whole size as far as its header tells (a header alone if the
        header is not complete yet)."""
        if len(self._buffer) < HEADER_SIZE:
            return HEADER_SIZE
        (length,) = struct.unpack_from("<H", self._buffer, 6)
        return HEADER_SIZE + min(length, self.longest_payload) + CRC_SIZE

    def _skip(self, count: int, reason: str) -> None:
        self.counters[reason] += 1
        self.counters["dropped_bytes"] += count
        del self._buffer[:count]
        self._partial_since_s = None

    def _next_frame(self) -> tuple[Frame | None, bool]:
        """(frame or None, whether to keep scanning)."""
        buf = self._buffer
        start = buf.find(SYNC)
        if start < 0:
            keep = 1 if buf[-1:] == SYNC[:1] else 0
            if len(buf) > keep:
                self._skip(len(buf) - keep, "garbage")
            return None, False
        if start > 0:
            self._skip(start, "garbage")
        if len(buf) < HEADER_SIZE:
            return None, False
        if crc8(bytes(buf[2:8])) != buf[8]:
            self._skip(1, "header_crc")
            return None, True
        version, kind, seq, length = struct.unpack_from("<BBHH", buf, 2)
        if version != VERSION or length > MAX_PAYLOAD:
            self._skip(1, "bad_version" if version != VERSION else "oversize")
            return None, True
        end = HEADER_SIZE + length + CRC_SIZE
        if len(buf) < end:
            return None, False
        (crc,) = struct.unpack_from("<H", buf, end - CRC_SIZE)
        if crc16(bytes(buf[2 : end - CRC_SIZE])) != crc:
            self._skip(1, "crc")
            return None, True
        payload = bytes(buf[HEADER_SIZE : end - CRC_SIZE])
        del buf[:end]
        self._partial_since_s = None
        try:
            message = decode_payload(kind, payload)
        except ProtocolError as e:
            self.counters[e.reason] += 1
            return None, True
        self.counters["frames"] += 1
        return Frame(seq, message), True

    @property
    def errors(self) -> int:
        """Frames or bytes rejected for any reason."""
        keys = (
            "garbage",
            "header_crc",
            "bad_version",
            "oversize",
            "crc",
            "partial_timeout",
            "unknown_type",
            "bad_payload",
        )
        return sum(self.counters[k] for k in keys)
