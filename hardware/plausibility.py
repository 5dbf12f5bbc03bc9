"""Plausibility of device States beyond their CRC (hardware/PROTOCOL.md, section 9).

Run: `.venv/bin/pytest tests/test_protocol.py -q -k plausibility`

A CRC only says that a frame arrived as it was sent (and, at 2^-16 per corrupted frame with
a valid header, not even that). `StatePlausibility` is the host's second line of defence: a
State is used for control only if its counts match the DeviceInfo, every value is finite, the
servos are within their limits and velocities, no servo jumps further than it could have
moved since the last accepted State, and the device clock runs forward at a believable pace.

    check = StatePlausibility(info)
    check.check(state, time.monotonic())   # raises ImplausibleState(reason, detail)
    check.reset()                          # after a reconnect or a SceneReset

Rejections are counted per reason in `counters`; a rejected State never becomes the
reference for the next jump check.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from hardware.protocol import DeviceInfo, State
from sim.errors import TwinbridgeError

RESERVED_STATUS_BITS = 0xFFF0  # State.status bits 4-15 (PROTOCOL.md, State)


class ImplausibleState(TwinbridgeError, ValueError):
    """A State that must not be used for control; `reason` is a counter key."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


class ImplausibleDeviceInfo(ImplausibleState):
    """A DeviceInfo whose limits cannot support the State checks (non-finite, min > max...)."""


@dataclass
class StatePlausibility:
    """Checks each State against `info` and the last accepted State (PROTOCOL.md P1-P9).

    Margins are in each channel's own units (rad or m, per second for velocities).
    """

    info: DeviceInfo
    position_margin: float = 0.05  # beyond [position_min, position_max]
    velocity_factor: float = 3.0  # |servo velocity| <= factor * velocity_max + margin
    velocity_margin: float = 0.1
    jump_factor: float = 2.0  # |delta position| <= factor * velocity_max * dt + margin
    jump_margin: float = 0.02  # measurement noise between two States
    clock_slack_s: float = 0.25  # device time may outrun host receive time by this much
    counters: Counter[str] = field(default_factory=Counter)
    _last: State | None = field(default=None, init=False, repr=False)
    _last_now_s: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("position_margin", "velocity_margin", "jump_margin", "clock_slack_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        for name in ("velocity_factor", "jump_factor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 1):
                raise ValueError(f"{name} must be finite and >= 1, got {value}")
        self._check_info()
        channels = self.info.commands
        self._names = tuple(c.name for c in channels)
        self._low = np.array([c.position_min for c in channels]) - self.position_margin
        self._high = np.array([c.position_max for c in channels]) + self.position_margin
        self._velocity_max = np.array([c.velocity_max for c in channels])

    def check(self, state: State, now_s: float) -> None:
        """Accept `state`, received at host time `now_s` (monotonic s); else ImplausibleState."""
        try:
            self._check_counts(state)
            self._check_finite(state)
            self._check_status(state)
            self._check_time(state, now_s)
            self._check_servos(state)
            self._check_jumps(state)
        except ImplausibleState as e:
            self.counters[e.reason] += 1
            raise
        self._last, self._last_now_s = state, now_s
        self.counters["accepted"] += 1

    def reset(self) -> None:
        """Forget the last accepted State (after a reconnect or a SceneReset)."""
        self._last = None

    # -- rules -----------------------------------------------------------------------------
    def _check_info(self) -> None:
        for c in self.info.commands:
            limits = (c.position_min, c.position_max, c.velocity_max)
            if not all(math.isfinite(x) for x in limits):
                raise ImplausibleDeviceInfo("device_info", f"channel {c.name!r} limits {limits}")
            if c.position_min > c.position_max or c.velocity_max <= 0:
                raise ImplausibleDeviceInfo(
                    "device_info",
                    f"channel {c.name!r}: position [{c.position_min}, {c.position_max}], "
                    f"velocity_max {c.velocity_max} (need min <= max, velocity_max > 0)",
                )

    def _check_counts(self, state: State) -> None:
        n, m = len(self.info.state_joints), len(self.info.commands)
        joints = {len(state.positions), len(state.velocities), len(state.efforts)}
        if joints != {n}:
            raise ImplausibleState("joint_count", f"{sorted(joints)} joints, DeviceInfo has {n}")
        servos = {
            len(state.servo_positions),
            len(state.servo_velocities),
            len(state.servo_efforts),
        }
        if servos != {m}:
            raise ImplausibleState("servo_count", f"{sorted(servos)} servos, DeviceInfo has {m}")

    def _check_finite(self, state: State) -> None:
        groups = (
            ("joint", self.info.state_joints, ("positions", "velocities", "efforts")),
            ("servo", self._names, ("servo_positions", "servo_velocities", "servo_efforts")),
        )
        for kind, names, fields in groups:
            for name_of_field in fields:
                values = getattr(state, name_of_field)
                bad = np.flatnonzero(~np.isfinite(values))
                if bad.size:
                    i = int(bad[0])
                    raise ImplausibleState(
                        "non_finite", f"{kind} {names[i]!r} {name_of_field} = {values[i]}"
                    )

    def _check_status(self, state: State) -> None:
        if state.status & RESERVED_STATUS_BITS:
            raise ImplausibleState("status_bits", f"reserved status bits in 0x{state.status:04x}")

    def _check_time(self, state: State, now_s: float) -> None:
        last = self._last
        if last is None:
            return
        if state.device_time_us <= last.device_time_us:
            raise ImplausibleState(
                "device_time",
                f"device time {state.device_time_us} us after {last.device_time_us} us",
            )
        device_dt_s = (state.device_time_us - last.device_time_us) * 1e-6
        host_dt_s = max(0.0, now_s - self._last_now_s)
        if device_dt_s > host_dt_s + self.clock_slack_s:
            raise ImplausibleState(
                "device_time_jump",
                f"device time advanced {device_dt_s:.6g} s while the host saw {host_dt_s:.6g} s",
            )

    def _check_servos(self, state: State) -> None:
        q = state.servo_positions
        outside = np.flatnonzero((q < self._low) | (q > self._high))
        if outside.size:
            i = int(outside[0])
            raise ImplausibleState(
                "servo_position",
                f"servo {self._names[i]!r} position {q[i]:.6g} outside "
                f"[{self._low[i]:.6g}, {self._high[i]:.6g}] (limits +- margin)",
            )
        v = state.servo_velocities
        bound = self.velocity_factor * self._velocity_max + self.velocity_margin
        fast = np.flatnonzero(np.abs(v) > bound)
        if fast.size:
            i = int(fast[0])
            raise ImplausibleState(
                "servo_velocity",
                f"servo {self._names[i]!r} velocity {v[i]:.6g} beyond +-{bound[i]:.6g}",
            )

    def _check_jumps(self, state: State) -> None:
        last = self._last
        if last is None:
            return
        dt_s = (state.device_time_us - last.device_time_us) * 1e-6
        step = np.abs(state.servo_positions - last.servo_positions)
        bound = self.jump_factor * self._velocity_max * dt_s + self.jump_margin
        far = np.flatnonzero(step > bound)
        if far.size:
            i = int(far[0])
            raise ImplausibleState(
                "servo_jump",
                f"servo {self._names[i]!r} moved {step[i]:.6g} in {dt_s * 1e3:.3g} ms "
                f"(at most {bound[i]:.6g})",
            )
