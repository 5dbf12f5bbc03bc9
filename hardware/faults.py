"""What makes the emulated device "a different robot" and an imperfect link, as validated config.

Run: `python -c "from sim.config_loader import load_yaml_mapping as l; from hardware.faults import FaultConfig as F; print(F.from_mapping(l('hardware/config/faults-example.yaml')['faults']))"`

`Deviations` are physics and sensor differences from the twin a policy trained in (applied
once, by `hardware.emulator`, through named MuJoCo model fields). `FaultConfig` is what goes
wrong while running: byte damage in each direction, split/truncated/late replies, link
disconnects, and servo faults (a stuck joint, a weak servo, a sensor offset) that start at a
device time. `LinkInjector` applies one direction's byte faults. Every random draw comes from
the one `numpy.random.Generator` the emulator owns, so a seed gives identical runs.

YAML keys and types are checked by `sim.config_loader`: an unknown key is a `ConfigError`
naming it and the valid keys.

R7: see hardware/RELIABILITY.md.
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from hardware.protocol import SYNC
from sim.config_loader import config_from_mapping
from sim.errors import ConfigError

Record = Callable[..., None]  # record(kind, **details): logs one injected fault


def _check_rate(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{type(owner).__name__}.{name}={value} must be in [0, 1]")


def _check_positive(owner: object, *names: str, allow_zero: bool = False) -> None:
    for name in names:
        value = getattr(owner, name)
        ok = value >= 0 if allow_zero else value > 0
        if not (math.isfinite(value) and ok):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"{type(owner).__name__}.{name}={value} must be finite and {bound}")


def _check_range_ms(owner: object, name: str) -> None:
    low, high = getattr(owner, name)
    if not 0 <= low <= high or not math.isfinite(high):
        raise ConfigError(f"{type(owner).__name__}.{name}={[low, high]} needs 0 <= low <= high")


# -- deviations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deviations:
    """How the emulated robot differs from its twin (1.0 / 0.0 = identical).

    Scales multiply the model's values: the manipulated object's mass (and inertia, so its
    shape is unchanged), its geoms' sliding friction (given the highest geom priority so
    that friction is the one its contacts use), each position actuator's stiffness (gainprm[0]
    and -biasprm[1] together) and the robot joints' damping. Noise is Gaussian, added to
    every reported measurement (`position_noise_std` in rad, or m for a linear channel).
    `command_latency_ms` delays an accepted target reaching the servos; `state_latency_ms`
    delays every byte the device sends.
    """

    object_mass_scale: float = 1.1
    object_friction_scale: float = 0.9
    actuator_kp_scale: float = 0.95
    joint_damping_scale: float = 1.1
    position_noise_std: float = 0.0005
    velocity_noise_std: float = 0.005
    object_position_noise_std_m: float = 0.001
    command_latency_ms: float = 2.0
    state_latency_ms: float = 2.0

    def __post_init__(self) -> None:
        _check_positive(self, "object_mass_scale", "object_friction_scale", "actuator_kp_scale")
        _check_positive(
            self,
            "joint_damping_scale",
            "position_noise_std",
            "velocity_noise_std",
            "object_position_noise_std_m",
            "command_latency_ms",
            "state_latency_ms",
            allow_zero=True,
        )

    @classmethod
    def none(cls) -> Deviations:
        """The twin itself: no scaling, no noise, no latency."""
        return cls(1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_mapping(cls, data: Any, where: str = "deviations") -> Deviations:
        """`none`, `default` (or absent), or a mapping overriding the defaults."""
        if data == "none":
            return cls.none()
        if data is None or data == "default":
            return cls()
        return config_from_mapping(cls, data, where)


# -- link faults -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ByteFaults:
    """Damage to one direction of the byte stream (probabilities in [0, 1]).

    Per byte: `bit_flip_rate` flips one random bit, `duplicate_rate` sends it twice,
    `insert_rate` adds a random byte after it. Per frame (per received chunk for bytes
    arriving at the device): `sync_inject_rate` puts a header look-alike (A5 5A and 0-7
    random bytes) before it; `drop_frame_rate` loses a whole frame (arriving: a decoded one).
    """

    bit_flip_rate: float = 0.0
    duplicate_rate: float = 0.0
    insert_rate: float = 0.0
    sync_inject_rate: float = 0.0
    drop_frame_rate: float = 0.0

    def __post_init__(self) -> None:
        _check_rate(self, *(f.name for f in fields(ByteFaults)))

    @property
    def mangles_bytes(self) -> bool:
        return bool(self.bit_flip_rate or self.duplicate_rate or self.insert_rate)


@dataclass(frozen=True)
class ReplyFaults(ByteFaults):
    """Device -> host damage: `ByteFaults` plus how replies are written (R7).

    `split_rate`: a reply goes out as 1-byte writes, `split_pauses` of the gaps between them
    (at random places) lasting a time drawn from `split_gap_ms`, the rest back to back (all
    gaps 0-5 ms would spread a 220-byte State over ~0.5 s, longer than any partial-frame
    timeout: a slower link, not a split reply);
    `truncate_rate`: a reply loses its tail (cut at a random byte); `latency_spike_rate`: the
    stream stalls for a time drawn from `latency_spike_ms` before a reply (bytes stay in order).
    """

    split_rate: float = 0.0
    split_gap_ms: tuple[float, float] = (0.0, 5.0)
    split_pauses: int = 4
    truncate_rate: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_ms: tuple[float, float] = (5.0, 50.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_rate(self, "split_rate", "truncate_rate", "latency_spike_rate")
        _check_range_ms(self, "split_gap_ms")
        if self.split_pauses < 0:
            raise ConfigError(f"ReplyFaults.split_pauses={self.split_pauses} must be >= 0")
        _check_range_ms(self, "latency_spike_ms")


# -- servo faults and disconnects ----------------------------------------------------------
@dataclass(frozen=True)
class Disconnect:
    """The device drops off the bus at device time `at_s` for `for_s` (USB unplug/replug)."""

    at_s: float
    for_s: float

    def __post_init__(self) -> None:
        _check_positive(self, "at_s", allow_zero=True)
        _check_positive(self, "for_s")


@dataclass(frozen=True)
class StuckJoint:
    """From device time `at_s` the joint(s) a servo channel `name` moves are seized: frozen
    in the physics where they are, whatever the commands (the servo keeps pushing)."""

    name: str
    at_s: float = 0.0

    def __post_init__(self) -> None:
        _check_positive(self, "at_s", allow_zero=True)


@dataclass(frozen=True)
class WeakServo:
    """From device time `at_s` servo channel `name` delivers `torque_scale` of its torque
    (gain, bias and force range scaled together)."""

    name: str
    at_s: float = 0.0
    torque_scale: float = 0.5

    def __post_init__(self) -> None:
        _check_positive(self, "at_s", allow_zero=True)
        if not 0 < self.torque_scale <= 1:
            raise ConfigError(f"WeakServo.torque_scale={self.torque_scale} must be in (0, 1]")


@dataclass(frozen=True)
class SensorOffset:
    """From device time `at_s` servo channel `name`'s encoder (and its joint's, for a joint
    transmission) reads `offset` too high (rad, or m for a linear channel). The servo loop
    uses the same encoder, so commands and holds are in the offset frame, as on a robot."""

    name: str
    at_s: float = 0.0
    offset: float = 0.2

    def __post_init__(self) -> None:
        _check_positive(self, "at_s", allow_zero=True)
        if not math.isfinite(self.offset):
            raise ConfigError(f"SensorOffset.offset={self.offset} must be finite")


@dataclass(frozen=True)
class FaultConfig:
    """Every injected fault; the default injects nothing."""

    host_to_device: ByteFaults = field(default_factory=ByteFaults)
    device_to_host: ReplyFaults = field(default_factory=ReplyFaults)
    disconnects: tuple[Disconnect, ...] = ()
    stuck_joint: StuckJoint | None = None
    weak_servo: WeakServo | None = None
    sensor_offset: SensorOffset | None = None

    @property
    def servo_faults(self) -> tuple[StuckJoint | WeakServo | SensorOffset, ...]:
        found = (self.stuck_joint, self.weak_servo, self.sensor_offset)
        return tuple(f for f in found if f is not None)

    @classmethod
    def from_mapping(cls, data: Any, where: str = "faults") -> FaultConfig:
        """From YAML: byte faults per direction, `disconnects` as a list, servo faults."""
        return config_from_mapping(cls, data, where)


# -- injection -------------------------------------------------------------------------------
class LinkInjector:
    """Applies one direction's `ByteFaults` (and, device -> host, `ReplyFaults`) to bytes.

    Draws only for the faults that are on, from the emulator's generator, so identical
    traffic with the same seed is damaged identically. `record(kind, **details)` is called
    for each injection (the device log).
    """

    def __init__(
        self, faults: ByteFaults, rng: np.random.Generator, record: Record, direction: str
    ):
        self.faults, self.rng, self.direction = faults, rng, direction
        self._record = record

    def _chance(self, rate: float) -> bool:
        return rate > 0 and bool(self.rng.random() < rate)

    def record(self, kind: str, **details: Any) -> None:
        self._record(kind, direction=self.direction, **details)

    def drop_frame(self) -> bool:
        """Whether to lose this frame (logged)."""
        if self._chance(self.faults.drop_frame_rate):
            self.record("drop_frame")
            return True
        return False

    def sync_prefix(self) -> bytes:
        """A header look-alike to put before a frame or chunk, usually empty."""
        if not self._chance(self.faults.sync_inject_rate):
            return b""
        junk = self.rng.integers(0, 256, size=int(self.rng.integers(0, 8)), dtype=np.uint8)
        self.record("sync_inject", size=2 + len(junk))
        return SYNC + junk.tobytes()

    def mangle(self, data: bytes) -> bytes:
        """Bit flips, duplicated and inserted bytes (each logged)."""
        f = self.faults
        if not f.mangles_bytes or not data:
            return data
        out = bytearray(data)
        for i in self._positions(f.bit_flip_rate, len(out)):
            bit = int(self.rng.integers(8))
            out[i] ^= 1 << bit
            self.record("bit_flip", index=i, bit=bit)
        extra: dict[int, bytes] = {}
        for i in self._positions(f.duplicate_rate, len(out)):
            extra[i] = bytes([out[i]])
            self.record("duplicate", index=i)
        for i in self._positions(f.insert_rate, len(out)):
            extra[i] = extra.get(i, b"") + bytes([int(self.rng.integers(256))])
            self.record("insert", index=i)
        return _splice(bytes(out), extra)

    def _positions(self, rate: float, size: int) -> list[int]:
        if rate <= 0:
            return []
        return np.flatnonzero(self.rng.random(size) < rate).tolist()

    def incoming(self, data: bytes) -> bytes:
        """Bytes from the host as the device's UART sees them."""
        return self.sync_prefix() + self.mangle(data) if data else data

    def outgoing(self, frame: bytes) -> list[tuple[float, bytes]]:
        """One encoded reply as (delay before it in s, bytes) writes; [] if dropped."""
        if self.drop_frame():
            return []
        data = self.sync_prefix() + self.mangle(self._truncate(frame))
        delay_s = self._spike_s()
        if not isinstance(self.faults, ReplyFaults) or not self._chance(self.faults.split_rate):
            return [(delay_s, data)]
        gaps_s = np.zeros(len(data))
        pauses = min(self.faults.split_pauses, len(data) - 1)
        where = self.rng.choice(np.arange(1, len(data)), size=pauses, replace=False)
        gaps_s[where] = self.rng.uniform(*self.faults.split_gap_ms, size=pauses) * 1e-3
        gaps_s[0] = delay_s
        self.record("split", size=len(data), pauses=pauses)
        return [(float(g), data[i : i + 1]) for i, g in enumerate(gaps_s)]

    def _truncate(self, frame: bytes) -> bytes:
        if not isinstance(self.faults, ReplyFaults) or not self._chance(self.faults.truncate_rate):
            return frame
        keep = int(self.rng.integers(1, len(frame)))
        self.record("truncate", kept=keep, size=len(frame))
        return frame[:keep]

    def _spike_s(self) -> float:
        f = self.faults
        if not isinstance(f, ReplyFaults) or not self._chance(f.latency_spike_rate):
            return 0.0
        spike_ms = float(self.rng.uniform(*f.latency_spike_ms))
        self.record("latency_spike", ms=round(spike_ms, 3))
        return spike_ms * 1e-3


def _splice(data: bytes, extra: dict[int, bytes]) -> bytes:
    """`data` with `extra[i]` inserted after byte i."""
    if not extra:
        return data
    pieces, start = [], 0
    for i in sorted(extra):
        pieces += [data[start : i + 1], extra[i]]
        start = i + 1
    pieces.append(data[start:])
    return b"".join(pieces)
