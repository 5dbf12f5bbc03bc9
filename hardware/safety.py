"""Host-side safety layer: the only path from a target to a robot backend's command.

    .venv/bin/pytest -q tests/test_safety.py

A driver loop calls `SafetyLayer.next_command(measured...)` once per control period and sends
what it returns; upstream (a policy, teleop) calls `set_target` at any rate, and only the
latest target is kept. Everything is ordered by `JointLimits.names`.

What the layer guarantees on every command it returns while tracking or holding:
positions finite and within [min, max] (targets are clamped into [min + margin, max - margin]);
|Δq| <= velocity_max·T and |Δ²q| <= acceleration_max·T² between consecutive outputs; a target
older than `command_timeout_s` (host monotonic clock) is never followed: the command
decelerates to a stop within the acceleration limit instead.

What latches (only `reset()` clears it): `engage_estop`, a non-finite target, a non-finite
measurement, an effort over its limit, a tracking error over tolerance, a stuck joint, a
command failing the final check. A latch freezes the command (hold, or torque off when
`SafetyConfig.safe_state == "torque_off"`). An e-stop is persisted to `estop_latch_path`, so
it survives driver restarts; reconnecting never clears a latch. After a reset the command
restarts from the measured positions and waits for a target received after the reset.

Every intervention increments a key of `SafetyLayer.counters`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from sim.actuation import RateLimits, rate_limited_step
from sim.errors import TwinbridgeError
from sim.files import atomic_write

OVERRIDE_KEYS = ("position_min", "position_max", "velocity_max", "acceleration_max", "effort_max")
SAFE_STATES = ("hold", "torque_off")
MODES = ("track", "hold", "torque_off", "none")  # none: nothing sent (no link/state)
MAX_ABS_TARGET = 1e6  # a target beyond this is an overflow, not a position
_REACHED_ABS = 1e-12  # a step within this of the target was not rate limited


class UnsafeCommand(TwinbridgeError, ValueError):
    """A command that must not reach the hardware; names the joint and the value."""

    def __init__(self, joint: str, value: float, detail: str):
        self.joint = joint
        self.value = value
        super().__init__(f"unsafe command for joint {joint}: {value!r} {detail}")


class EstopPersistenceError(TwinbridgeError, RuntimeError):
    """The e-stop latch file could not be written (the in-memory latch state is kept)."""


def _vector(values: object, size: int, what: str) -> np.ndarray:
    """`values` as a fresh float64 array of shape (size,), or a ValueError saying what."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected {size} numbers, got {values!r}") from e
    if array.shape != (size,):
        raise ValueError(f"{what}: expected shape ({size},) in joint order, got {array.shape}")
    return array


@dataclass(frozen=True, eq=False)
class JointLimits:
    """Per-joint limits, in the order of `names` (radians or metres, per second, per second²).

    Positions, velocities and accelerations are in the joint's unit (rad or m); efforts in
    N·m or N. Targets are clamped into [position_min + position_margin,
    position_max - position_margin]; commands outside [position_min, position_max] are refused.
    """

    names: tuple[str, ...]
    position_min: np.ndarray
    position_max: np.ndarray
    velocity_max: np.ndarray  # per second
    acceleration_max: np.ndarray  # per second²
    effort_max: np.ndarray
    position_margin: float = 0.0

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if (
            not names
            or len(set(names)) != len(names)
            or not all(isinstance(n, str) for n in names)
        ):
            raise ValueError(f"JointLimits: names must be unique strings, one per joint: {names}")
        object.__setattr__(self, "names", names)
        for key in OVERRIDE_KEYS:
            array = _vector(getattr(self, key), len(names), f"JointLimits.{key}")
            array.flags.writeable = False
            object.__setattr__(self, key, array)
            self._check_finite(key, array)
        self._check_ranges()

    def _check_finite(self, key: str, array: np.ndarray) -> None:
        for name, value in zip(self.names, array, strict=True):
            if not math.isfinite(value):
                raise ValueError(f"JointLimits: {key} of joint {name} is {value}; give a number")

    def _check_ranges(self) -> None:
        margin = self.position_margin
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"JointLimits: position_margin {margin} must be finite and >= 0")
        for i, name in enumerate(self.names):
            low, high = self.position_min[i], self.position_max[i]
            if not low < high:
                raise ValueError(
                    f"JointLimits: joint {name} position_min {low} must be < position_max {high}"
                )
            if not 2 * margin < high - low:
                raise ValueError(
                    f"JointLimits: position_margin {margin} leaves no range for joint {name} "
                    f"([{low}, {high}]); use a margin below {(high - low) / 2}"
                )
            for key in ("velocity_max", "acceleration_max", "effort_max"):
                if not getattr(self, key)[i] > 0:
                    raise ValueError(
                        f"JointLimits: {key} of joint {name} is {getattr(self, key)[i]}; "
                        "it must be > 0"
                    )

    @property
    def target_min(self) -> np.ndarray:
        """Lowest accepted target per joint: position_min + position_margin."""
        return self.position_min + self.position_margin

    @property
    def target_max(self) -> np.ndarray:
        """Highest accepted target per joint: position_max - position_margin."""
        return self.position_max - self.position_margin

    def with_overrides(self, overrides: dict[str, dict[str, float]]) -> JointLimits:
        """A copy with per-joint values from YAML: {joint: {key: value}}.

        Keys are those of `OVERRIDE_KEYS`. Velocity, acceleration and effort limits may take
        any valid value; the position range may only be narrowed, since the model's range is
        the mechanical one.
        """
        arrays = {key: np.array(getattr(self, key)) for key in OVERRIDE_KEYS}
        for joint, values in overrides.items():
            index = self._joint_index(joint)
            for key, value in values.items():
                arrays[key][index] = self._override_value(joint, key, value)
        return replace(
            self,
            position_min=arrays["position_min"],
            position_max=arrays["position_max"],
            velocity_max=arrays["velocity_max"],
            acceleration_max=arrays["acceleration_max"],
            effort_max=arrays["effort_max"],
        )

    def _joint_index(self, joint: str) -> int:
        if joint not in self.names:
            raise ValueError(
                f"JointLimits override: unknown joint {joint!r}; valid joints: {list(self.names)}"
            )
        return self.names.index(joint)

    def _override_value(self, joint: str, key: str, value: object) -> float:
        if key not in OVERRIDE_KEYS:
            raise ValueError(
                f"JointLimits override for joint {joint}: unknown key {key!r}; "
                f"valid keys: {list(OVERRIDE_KEYS)}"
            )
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as e:
            raise ValueError(f"JointLimits override {joint}.{key}: {value!r} is no number") from e
        index = self.names.index(joint)
        low, high = self.position_min[index], self.position_max[index]
        if (key == "position_min" and number < low) or (key == "position_max" and number > high):
            raise ValueError(
                f"JointLimits override {joint}.{key} = {number} widens the model range "
                f"[{low}, {high}]; overrides may only narrow it (edit the model instead)"
            )
        return number


@dataclass(frozen=True)
class SafetyConfig:
    """Timing, monitoring thresholds and safe state of a `SafetyLayer`."""

    period_s: float = 0.01  # control period T: one `next_command` call per period
    command_timeout_s: float = 0.1  # a target older than this is never followed
    tracking_tolerance: float = 0.2  # rad (or m): |commanded - measured| allowed
    tracking_violation_cycles: int = 2  # consecutive cycles over tolerance before a fault
    stuck_velocity: float = 0.01  # rad/s: below this a joint commanded to move is not moving
    stuck_cycles: int = 20  # consecutive stuck cycles (with growing error) before a fault
    # A servo at its current limit reads effort_max (it saturates; pushing is normal): only a
    # reading beyond what the motor can deliver (sensor fault, impact) is a fault.
    effort_margin: float = 1.1  # fault when |effort| > effort_max * effort_margin
    safe_state: str = "hold"  # what a latch commands: "hold" or "torque_off"
    estop_latch_path: str = ""  # JSON file keeping the e-stop across restarts; "" = none

    def __post_init__(self) -> None:
        positive = ("period_s", "command_timeout_s", "tracking_tolerance", "stuck_velocity")
        for key in (*positive, "effort_margin"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"SafetyConfig.{key} = {value!r}: give a finite number > 0")
        for key in ("tracking_violation_cycles", "stuck_cycles"):
            value = getattr(self, key)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"SafetyConfig.{key} = {value!r}: give an integer >= 1")
        if self.safe_state not in SAFE_STATES:
            raise ValueError(
                f"SafetyConfig.safe_state = {self.safe_state!r}: use one of {SAFE_STATES}"
            )


@dataclass(frozen=True, eq=False)
class SafeCommand:
    """What the driver sends this period: positions, or None when torque must be off."""

    positions: np.ndarray | None
    mode: str  # "track", "hold", "torque_off", or "none" (nothing sent: no link, no state)
    reason: str = ""  # why not tracking ("" when tracking)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"SafeCommand.mode {self.mode!r}: use one of {MODES}")
        if (self.positions is None) != (self.mode in ("torque_off", "none")):
            raise ValueError(
                "SafeCommand: positions must be None exactly when torque is off or none is sent"
            )
        if self.positions is not None:
            positions = np.array(self.positions, dtype=np.float64)
            positions.flags.writeable = False
            object.__setattr__(self, "positions", positions)

    @property
    def torque_off(self) -> bool:
        """True when the backend must disable torque instead of sending positions."""
        return self.mode == "torque_off"


def check_finite_in_limits(positions: object, limits: JointLimits) -> np.ndarray:
    """`positions` as float64 if every value is finite and within [min, max], else raise.

    Backends call this right before bytes are written, as the last line of defence.
    """
    try:
        array = _vector(positions, len(limits.names), "command")
    except ValueError as e:
        raise UnsafeCommand("<all>", math.nan, str(e)) from e
    for i, name in enumerate(limits.names):
        value = float(array[i])
        if not math.isfinite(value):
            raise UnsafeCommand(name, value, "is not finite")
        if not limits.position_min[i] <= value <= limits.position_max[i]:
            raise UnsafeCommand(
                name, value, f"is outside [{limits.position_min[i]}, {limits.position_max[i]}]"
            )
    return array


class _Measured(NamedTuple):
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray


@dataclass
class _CommandState:
    """The last command sent: position q and step velocity v per joint."""

    q: np.ndarray
    v: np.ndarray


class SafetyLayer:
    """Turns the latest target and the measured state into a safe command, once per period."""

    def __init__(
        self,
        limits: JointLimits,
        config: SafetyConfig,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limits = limits
        self.config = config
        self._clock = clock
        self._rate = RateLimits(
            limits.velocity_max, limits.acceleration_max, limits.target_min, limits.target_max,
            limits.position_min, limits.position_max,
        )  # fmt: skip
        self.counters: Counter[str] = Counter()
        self._command: _CommandState | None = None
        self._target: np.ndarray | None = None
        self._target_s = -math.inf
        self._fresh_after_s = -math.inf  # targets received earlier are discarded
        self._awaiting_fresh = False
        self._estop_reason = ""
        self._fault = ""
        self._hold: np.ndarray | None = None  # frozen command while latched
        self._stop: np.ndarray | None = None  # where a decelerating hold comes to rest
        self._hold_reason = ""
        self._state = "holding:no_target"
        self._reset_monitors()
        persisted = self._read_latch_file()
        if persisted is not None:
            self._estop_reason = f"persisted: {persisted}"
            self.counters["estop_persisted"] += 1

    # ----------------------------------------------------------------- status
    @property
    def estopped(self) -> bool:
        """True while the e-stop is latched."""
        return bool(self._estop_reason)

    @property
    def fault(self) -> str:
        """The latched fault ("<key>: joint <name> <numbers>"), or "" when none."""
        return self._fault

    @property
    def latched(self) -> bool:
        """True while an e-stop or a fault holds the robot; only `reset()` clears it."""
        return self.estopped or bool(self._fault)

    @property
    def state(self) -> str:
        """One of tracking, holding:<reason>, estop:<reason>, fault:<reason>."""
        if self._estop_reason:
            return f"estop:{self._estop_reason}"
        if self._fault:
            return f"fault:{self._fault}"
        return self._state

    def diagnostics(self) -> dict[str, object]:
        """Flat key/values for a DiagnosticArray: state, latch, target age, worst error, counts."""
        worst = int(np.argmax(self._last_error))
        values: dict[str, object] = {
            "state": self.state,
            "latched": self.latched,
            "estop_reason": self._estop_reason,
            "fault": self._fault,
            "target_age_s": self._clock() - self._target_s if self._target is not None else -1.0,
            "max_tracking_error": float(self._last_error[worst]),
            "max_tracking_error_joint": self.limits.names[worst],
        }
        values.update({f"count.{key}": n for key, n in sorted(self.counters.items())})
        return values

    # ---------------------------------------------------------------- targets
    def set_target(
        self, positions: Sequence[float] | np.ndarray, *, received_s: float | None = None
    ) -> None:
        """Make `positions` the target (latest wins). Non-finite or overflowed values latch.

        `received_s` is when it arrived on this host's clock (default: now); later than now
        counts as now, so a wrong stamp cannot stretch the watchdog.
        """
        target = _vector(positions, len(self.limits.names), "set_target positions")
        received = self._received_time(received_s)
        bad = np.flatnonzero(~np.isfinite(target) | (np.abs(target) > MAX_ABS_TARGET))
        if bad.size:
            self._reject_nonfinite_target(int(bad[0]), float(target[bad[0]]))
        elif self.latched:
            self.counters["target_while_latched"] += 1
        elif received < self._fresh_after_s:
            self.counters["target_before_reset"] += 1
        else:
            self._accept_target(target, received)

    def _received_time(self, received_s: float | None) -> float:
        now = self._clock()
        if received_s is None:
            return now
        received = float(received_s)
        if not math.isfinite(received):
            raise ValueError(f"set_target: received_s {received_s!r} must be a finite time")
        if received > now:
            self.counters["future_received_s"] += 1
        return min(received, now)

    def _reject_nonfinite_target(self, index: int, value: float) -> None:
        name = self.limits.names[index]
        self._latch_fault(
            "nonfinite_target",
            f"nonfinite_target: nonfinite target for joint {name} (value {value!r})",
            self._last_command(),
        )

    def _accept_target(self, target: np.ndarray, received_s: float) -> None:
        clamped = np.clip(target, self.limits.target_min, self.limits.target_max)
        if np.any(clamped != target):
            self.counters["clamped_targets"] += 1
        self._target, self._target_s = clamped, received_s
        self._awaiting_fresh = False

    # --------------------------------------------------------------- commands
    def next_command(
        self,
        measured_positions: Sequence[float] | np.ndarray,
        measured_velocities: Sequence[float] | np.ndarray,
        measured_efforts: Sequence[float] | np.ndarray,
    ) -> SafeCommand:
        """The command to send this period, given the state measured this period."""
        size = len(self.limits.names)
        measured = _Measured(
            _vector(measured_positions, size, "measured positions"),
            _vector(measured_velocities, size, "measured velocities"),
            _vector(measured_efforts, size, "measured efforts"),
        )
        if not self.latched:
            self._start_from(measured.positions)
            self._monitor(measured)
        if self.latched:
            return self._latched_command(measured.positions)
        return self._motion_command()

    def next_command_unmeasured(self, reason: str) -> SafeCommand:
        """The command for a period without a fresh measurement (a late or partial read):
        brake to a stop within the limits, and do not judge tracking on stale values."""
        if self.latched and self._hold is not None:
            return self._latched_command(self._hold)
        if self.latched or self._command is None:
            return SafeCommand(None, "none", reason)
        self.counters[f"unmeasured_{reason}"] += 1
        return self._decelerate(reason)

    def _start_from(self, measured_positions: np.ndarray) -> None:
        """Initialise the command state at the measured positions (never jump away)."""
        if self._command is None and np.all(np.isfinite(measured_positions)):
            q = np.clip(measured_positions, self.limits.position_min, self.limits.position_max)
            self._command = _CommandState(q, np.zeros_like(q))
            self._hold_reason = ""

    def _last_command(self) -> np.ndarray | None:
        return None if self._command is None else self._command.q.copy()

    def _latched_command(self, measured_positions: np.ndarray) -> SafeCommand:
        """Hold the frozen position (measured, for a layer that never commanded), v := 0.

        Without a finite position within limits to hold, the only safe command is torque off.
        """
        if self._hold is None and np.all(np.isfinite(measured_positions)):
            self._hold = np.clip(
                measured_positions, self.limits.position_min, self.limits.position_max
            )
        if self.config.safe_state == "torque_off" or self._hold is None:
            return SafeCommand(None, "torque_off", self.state)
        try:
            check_finite_in_limits(self._hold, self.limits)
        except UnsafeCommand:
            self.counters["unsafe_hold"] += 1
            return SafeCommand(None, "torque_off", self.state)
        self._command = _CommandState(self._hold.copy(), np.zeros_like(self._hold))
        return SafeCommand(self._hold.copy(), "hold", self.state)

    def _motion_command(self) -> SafeCommand:
        if self._awaiting_fresh:
            return self._decelerate("awaiting_fresh_target")
        if self._target is None:
            return self._decelerate("no_target")
        if self._clock() - self._target_s > self.config.command_timeout_s:
            return self._decelerate("stale_target")
        return self._track(self._target)

    def _decelerate(self, reason: str) -> SafeCommand:
        """Hold: brake to the stopping point fixed when this hold began, within limits."""
        command = self._require_command()
        if reason != self._hold_reason:
            if reason in ("no_target", "stale_target"):
                self.counters["stale_holds"] += 1
            stop = command.q + command.v * np.abs(command.v) / (2 * self.limits.acceleration_max)
            low = np.minimum(self.limits.target_min, command.q)
            high = np.maximum(self.limits.target_max, command.q)
            self._stop, self._hold_reason = np.clip(stop, low, high), reason
        if self._stop is None:
            raise RuntimeError("SafetyLayer: hold began without a stopping point (a bug)")
        return self._commit(self._stop, "hold", reason)

    def _track(self, target: np.ndarray) -> SafeCommand:
        self._hold_reason = ""
        return self._commit(target, "track", "")

    def _commit(self, target: np.ndarray, mode: str, reason: str) -> SafeCommand:
        """Rate-limit toward `target`, run the final check, and only then update the state."""
        command = self._require_command()
        q, v = rate_limited_step(command.q, command.v, target, self._rate, self.config.period_s)
        try:
            check_finite_in_limits(q, self.limits)
        except UnsafeCommand as e:
            self._latch_fault("unsafe_command", f"unsafe_command: {e}", command.q.copy())
            return self._latched_command(command.q)
        if mode == "track" and np.any(np.abs(q - target) > _REACHED_ABS):
            self.counters["rate_limited"] += 1
        self._command = _CommandState(q, v)
        self._state = "tracking" if mode == "track" else f"holding:{reason}"
        return SafeCommand(q.copy(), mode, reason)

    def _require_command(self) -> _CommandState:
        if self._command is None:
            raise RuntimeError("SafetyLayer: no command state outside a latch (a bug)")
        return self._command

    # ------------------------------------------------------------- monitoring
    def _reset_monitors(self) -> None:
        size = len(self.limits.names)
        self._over_tolerance = np.zeros(size, dtype=np.int64)
        self._stuck = np.zeros(size, dtype=np.int64)
        self._last_error = np.zeros(size)

    def _monitor(self, measured: _Measured) -> None:
        """Latch a fault for a bad measurement, an effort, tracking error or stuck joint."""
        finite = np.isfinite(np.stack(measured)).all(axis=0)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            values = ", ".join(f"{key} {getattr(measured, key)[i]!r}" for key in measured._fields)
            message = f"nonfinite_measurement: joint {self.limits.names[i]} measured {values}"
            self._latch_fault("nonfinite_measurement", message, self._last_command())
            return
        fault = self._effort_fault(measured) or self._motion_fault(measured)
        if fault:
            hold = np.clip(measured.positions, self.limits.position_min, self.limits.position_max)
            self._latch_fault(fault[0], fault[1], hold)

    def _effort_fault(self, measured: _Measured) -> tuple[str, str] | None:
        limit = self.limits.effort_max * self.config.effort_margin
        over = np.flatnonzero(np.abs(measured.efforts) > limit)
        if not over.size:
            return None
        i = int(over[0])
        return "effort_limit", (
            f"effort_limit: joint {self.limits.names[i]} effort {measured.efforts[i]:.4g} "
            f"> limit {limit[i]:.4g} (effort_max × effort_margin)"
        )

    def _motion_fault(self, measured: _Measured) -> tuple[str, str] | None:
        """Tracking error, then stuck joint: last period's command against this state."""
        command = self._require_command()
        error = np.abs(command.q - measured.positions)
        config = self.config
        over = error > config.tracking_tolerance
        self._over_tolerance = np.where(over, self._over_tolerance + 1, 0)
        moving = np.abs(command.v) > 10 * config.stuck_velocity
        still = np.abs(measured.velocities) < config.stuck_velocity
        self._stuck = np.where(moving & still & (error > self._last_error), self._stuck + 1, 0)
        self._last_error = error
        return self._tracking_fault(command, measured) or self._stuck_fault(command, measured)

    def _tracking_fault(
        self, command: _CommandState, measured: _Measured
    ) -> tuple[str, str] | None:
        config = self.config
        over = np.flatnonzero(self._over_tolerance >= config.tracking_violation_cycles)
        if not over.size:
            return None
        i = int(over[0])
        return "tracking_error", (
            f"tracking_error: joint {self.limits.names[i]} commanded {command.q[i]:.4f}, "
            f"measured {measured.positions[i]:.4f}, error {self._last_error[i]:.4f} > "
            f"tolerance {config.tracking_tolerance} for {config.tracking_violation_cycles} cycles"
        )

    def _stuck_fault(self, command: _CommandState, measured: _Measured) -> tuple[str, str] | None:
        stuck = np.flatnonzero(self._stuck >= self.config.stuck_cycles)
        if not stuck.size:
            return None
        i = int(stuck[0])
        return "stuck_joint", (
            f"stuck_joint: joint {self.limits.names[i]} commanded {command.v[i]:.4f}/s, "
            f"measured {measured.velocities[i]:.4f}/s, error {self._last_error[i]:.4f} "
            f"growing for {self.config.stuck_cycles} cycles"
        )

    # ---------------------------------------------------------------- latches
    def _latch_fault(self, key: str, message: str, hold: np.ndarray | None) -> None:
        """Count `key` and latch the first fault, freezing `hold` unless already latched."""
        self.counters[key] += 1
        if not self.latched:
            self._hold = hold
        if not self._fault:
            self._fault = message

    def engage_estop(self, reason: str) -> None:
        """Latch the e-stop: hold the last command; persisted to `estop_latch_path` if set.

        The latch is in force before the file is written; a failed write raises
        `EstopPersistenceError` with the latch still engaged.
        """
        if not self.latched:
            self._hold = self._last_command()
        self._estop_reason = reason or "estop"
        self.counters["estop"] += 1
        self._write_latch_file(True, self._estop_reason)

    def reset(self) -> None:
        """Clear e-stop and fault; motion then needs a target received after this call.

        The command restarts from the measured positions on the next `next_command`. The
        latch file is cleared first: if that fails, the layer stays latched.
        """
        self._write_latch_file(False, "reset")
        self._estop_reason, self._fault, self._hold = "", "", None
        self._forget_motion()
        self._awaiting_fresh = True
        self._state = "holding:awaiting_fresh_target"
        self.counters["resets"] += 1

    def on_disconnect(self) -> None:
        """Drop the target and the command state; the latch, if any, stays."""
        self._forget_motion()
        self._state = "holding:disconnected"
        self.counters["disconnects"] += 1

    def resync_to_measured(self) -> None:
        """The device held on its own (its watchdog): restart the commanded trajectory from
        the measured position on the next period, still toward the current target. A latch,
        if any, stays."""
        self._command = None
        self.counters["resyncs"] += 1

    def resync_to(self, positions: Sequence[float] | np.ndarray) -> None:
        """The device refused a command and kept an earlier one's target: restart the
        commanded trajectory from that target, at rest, still toward the current target. A
        latch, if any, stays."""
        q = _vector(positions, len(self.limits.names), "resync positions")
        if np.all(np.isfinite(q)):
            q = np.clip(q, self.limits.position_min, self.limits.position_max)
            self._command = _CommandState(q, np.zeros_like(q))
            self.counters["resyncs"] += 1

    def on_reconnect(self) -> None:
        """Start from the measured state again, ignoring targets from before the reconnect."""
        self._forget_motion()
        self._state = "holding:no_target"
        self.counters["reconnects"] += 1

    def _forget_motion(self) -> None:
        self._target, self._target_s = None, -math.inf
        self._fresh_after_s = self._clock()
        self._command, self._stop, self._hold_reason = None, None, ""
        self._reset_monitors()

    # ------------------------------------------------------------ latch file
    def _write_latch_file(self, latched: bool, reason: str) -> None:
        path = self.config.estop_latch_path
        if not path:
            return
        record = {"latched": latched, "reason": reason, "time": time.time()}
        try:
            atomic_write(path, json.dumps(record))
        except OSError as e:
            self.counters["estop_persist_failed"] += 1
            raise EstopPersistenceError(
                f"could not write the e-stop latch file {path} ({e}); make its directory "
                "exist and writable, or set estop_latch_path to ''"
            ) from e

    def _read_latch_file(self) -> str | None:
        """The persisted e-stop reason, or None; an unreadable file counts as latched."""
        path = self.config.estop_latch_path
        if not path:
            return None
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ValueError(
                f"SafetyConfig.estop_latch_path {path!r}: directory {directory} does not exist"
            )
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as file:
                record = json.load(file)
        except (OSError, ValueError) as e:
            return f"unreadable latch file {path} ({e})"
        if isinstance(record, dict) and record.get("latched") is False:
            return None
        if isinstance(record, dict) and record.get("latched") is True:
            return str(record.get("reason", ""))
        return f"unreadable latch file {path} ({record!r})"
