"""The robot's actuation, one model: what happens between a joint target and the servo.

On the robot a policy's joint targets (IK of its action, at 25 Hz) reach the servos
through the driver and the device: the driver's 100 Hz cycle picks up the newest target
(`command_delay_cycles` after the state it answers), the safety layer's rate limiter moves
its command toward it within the robot's velocity and acceleration limits, the link
delivers that command `link_latency_s` later, and the device ramps each servo's setpoint
toward it at most at the joint's speed limit per physics step. The parts are written once,
here: `rate_limited_step` is the safety layer's limiter (hardware/safety.py), `ramp_step`
the device's setpoint ramp (hardware/emulator.py), and `CommandPath` strings them together
in the twin (sim/twin.py) with the delays, so a policy trains on the command path it will
meet. `ActuationConfig(model="ideal")` is the twin without any of it (Gymnasium-Robotics'
servos follow their target at once), for comparison.

Run: `python -c "from sim.actuation import CommandPath; p = CommandPath.for_robot('fetch', 0.002); p.reset(p.limits.position_min * 0 + 0.1); print(p.setpoints(p.limits.position_min * 0 + 0.5, 20)[:, 1])"`

Numbers here take no MuJoCo: the driver path imports this module. The twin steps
`CommandPath` once per control step, so its per-step work runs compiled (numba, on first
use) from the same functions the driver calls plainly; tests/test_actuation.py holds the
two to the same results.
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, NamedTuple

import numpy as np

from sim.config_loader import config_from_mapping
from sim.errors import ConfigError

MODELS = ("robot", "ideal")
# The safety layer's stale-command watchdog (hardware/safety.py SafetyConfig.command_timeout_s):
# a command delayed longer than this reaches a driver that already stopped following it.
WATCHDOG_S = 0.1
_SLOTS = 64  # commands queued for the driver, or in flight to the device (a watchdog's worth)
_JITTER_STREAM = 0xAC  # a reset seed's second word for the jitter generator


@dataclass(frozen=True)
class ActuationConfig:
    """The command path a twin simulates (`model="robot"`), or none (`"ideal"`).

    Defaults are the robot's nominal path: the driver's cycle (hardware/driver_settings.py
    cycle_rate_hz), a command answering a state first used one cycle later, the emulated
    device's nominal command latency, and the robot table's limits unscaled.
    """

    model: Literal["robot", "ideal"] = "robot"
    cycle_period_s: float = 0.01  # the driver's cycle: one limiter step per cycle
    command_delay_cycles: int = 1  # cycles from the state a command answers to its first use
    command_jitter_cycles: int = 0  # each command is late by U{0..jitter} more cycles
    link_latency_s: float = 0.002  # a limiter output reaches the device this much later
    velocity_scale: float = 1.0  # x the robot table's velocity_max (limiter and ramp)
    acceleration_scale: float = 1.0  # x the robot table's acceleration_max (limiter)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"actuation model {self.model!r}: use one of {', '.join(MODELS)}")
        for key in ("cycle_period_s", "velocity_scale", "acceleration_scale"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"actuation {key} = {value!r}: give a finite number > 0")
        for key in ("command_delay_cycles", "command_jitter_cycles"):
            value = getattr(self, key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise ConfigError(f"actuation {key} = {value!r}: give a whole number >= 0")
        if not (math.isfinite(self.link_latency_s) and self.link_latency_s >= 0):
            raise ConfigError(
                f"actuation link_latency_s = {self.link_latency_s!r}: give a number >= 0"
            )
        if self.longest_delay_s >= WATCHDOG_S:
            raise ConfigError(
                f"actuation delay {self.longest_delay_s:.3f} s (command_delay_cycles "
                f"{self.command_delay_cycles} + command_jitter_cycles "
                f"{self.command_jitter_cycles} at {self.cycle_period_s} s, + link_latency_s "
                f"{self.link_latency_s}) is not below the driver's {WATCHDOG_S} s watchdog: "
                "every command would be stale on arrival; shorten it"
            )

    @property
    def longest_delay_s(self) -> float:
        """From the state a command answers to its latest arrival at the device."""
        cycles = self.command_delay_cycles + self.command_jitter_cycles
        return cycles * self.cycle_period_s + self.link_latency_s

    @classmethod
    def from_mapping(cls, data: Any, where: str = "actuation") -> ActuationConfig:
        """From a mapping of this dataclass's fields (YAML, a card); unknown keys refused."""
        return config_from_mapping(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """Every field, for a policy card (only the model for `ideal`: it has no path)."""
        if self.model == "ideal":
            return {"model": "ideal"}
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_values(self, **values: Any) -> ActuationConfig:
        """A copy with some fields changed (one episode's randomization), validated."""
        return replace(self, **values)


def actuation_of(value: ActuationConfig | str | Mapping[str, Any] | None) -> ActuationConfig:
    """An `ActuationConfig` from a config, a model name ("robot", "ideal") or a mapping."""
    if value is None or isinstance(value, ActuationConfig):
        return value or ActuationConfig(model="ideal")
    if isinstance(value, str):
        if value not in MODELS:
            raise ConfigError(f"actuation {value!r}: use one of {', '.join(MODELS)}")
        return ActuationConfig(model=value)  # type: ignore[arg-type]
    return ActuationConfig.from_mapping(value)


# ------------------------------------------------------------------ the rate limiter
def braking_speed(distance: float, accel: float, period_s: float) -> float:
    """Largest step speed from which braking by accel·T per period stops within `distance`.

    This is the discrete-time form of sqrt(2·a·d): with steps v, v - aT, v - 2aT, ... the
    distance covered is v²/(2a) + vT/2 + up to aT²/8, so following sqrt(2·a·d) overshoots by
    a few aT², and a target at a limit would then be clamped (a jump in Δ²q). Solving
    T·Σ(v - i·aT) = d exactly keeps the limiter feasible, so it never overshoots.
    """
    unit = accel * period_s * period_s
    steps = distance / unit  # distance in units of a·T²
    m = max(float(math.ceil((math.sqrt(1.0 + 8.0 * steps) - 1.0) / 2.0)), 1.0)
    if m * (m + 1) / 2 < steps:  # fix rounding: (m-1)m/2 < steps ...
        m += 1
    if m > 1 and (m - 1) * m / 2 >= steps:  # ... <= m(m+1)/2
        m -= 1
    return (steps / m + (m - 1) / 2) * accel * period_s


class RateLimits(NamedTuple):
    """What the rate limiter needs of a robot's limits, per commanded joint (its order)."""

    velocity_max: np.ndarray
    acceleration_max: np.ndarray
    target_min: np.ndarray
    target_max: np.ndarray
    position_min: np.ndarray
    position_max: np.ndarray


def rate_limited_step(
    q: np.ndarray, v: np.ndarray, target: np.ndarray, limits: RateLimits, period_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """One period of the second-order rate limiter from (q, v) toward `target`.

    Returns the new position and the velocity of the step actually taken. The position is
    kept within the target range, or where it already was when it starts outside it (it is
    never pulled back by a jump). `limits` is read by field position, so the twin's compiled
    path passes the same six rows as one array (a tuple costs microseconds to pass in).
    """
    q_new, v_new = np.empty(len(q)), np.empty(len(q))
    rate_limited_step_into(q, v, target, limits, period_s, q_new, v_new)
    return q_new, v_new


def rate_limited_step_into(
    q: np.ndarray,
    v: np.ndarray,
    target: np.ndarray,
    limits: RateLimits | np.ndarray,
    period_s: float,
    q_out: np.ndarray,
    v_out: np.ndarray,
) -> None:
    """`rate_limited_step` written into `q_out`, `v_out` (which may be `q`, `v`): joint by
    joint in scalars, so the twin's compiled path allocates nothing per physics step."""
    v_maxes, accels, target_min, target_max, position_min, position_max = (
        limits[0], limits[1], limits[2], limits[3], limits[4], limits[5]
    )  # fmt: skip
    for i in range(len(q)):
        qi, vi = q[i], v[i]
        error = target[i] - qi
        distance = abs(error)
        v_max, accel = v_maxes[i], accels[i]
        speed = min(min(v_max, braking_speed(distance, accel, period_s)), distance / period_s)
        direction = 1.0 if error > 0 else (-1.0 if error < 0 else 0.0)
        dv = accel * period_s
        step_v = min(max(direction * speed, vi - dv), vi + dv)
        step_v = min(max(step_v, -v_max), v_max)
        low = max(min(target_min[i], qi), position_min[i])
        high = min(max(target_max[i], qi), position_max[i])
        q_next = min(max(qi + step_v * period_s, low), high)
        q_out[i] = q_next
        v_out[i] = (q_next - qi) / period_s


# ------------------------------------------------------------------ the device's ramp
def ramp_step(setpoint: np.ndarray, goal: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """The servo setpoints one physics step on: toward `goal`, at most `max_step` each (the
    device's speed limit x its timestep), so a valid command never outruns a joint."""
    out = np.empty(len(setpoint))
    ramp_step_into(setpoint, goal, max_step, out)
    return out


def ramp_step_into(
    setpoint: np.ndarray, goal: np.ndarray, max_step: np.ndarray, out: np.ndarray
) -> None:
    """`ramp_step` written into `out` (which may be `setpoint`)."""
    for i in range(len(setpoint)):
        out[i] = setpoint[i] + min(max(goal[i] - setpoint[i], -max_step[i]), max_step[i])


# ------------------------------------------------------------------ the twin's command path
# The path's state is two arrays, so its compiled kernels take few arguments (each array
# passed costs ~0.1 us). Float rows: the limiter's q and v, the driver's newest target, the
# device's goal and its servo setpoints, the last command submitted, the command of the
# current control step; then the command queue (to the driver) and the transit queue (to
# the device), _SLOTS rows each. Int cells: the physics step count, head and length of each
# queue, when the last command is visible; then each queue's due steps.
_Q, _V, _TARGET, _GOAL, _SETPOINT, _SUBMITTED, _COMMANDED = range(7)
_QUEUE, _TRANSIT = 7, 7 + _SLOTS
_STEP, _QUEUE_HEAD, _QUEUE_LEN, _TRANSIT_HEAD, _TRANSIT_LEN, _LAST_VISIBLE = range(6)
_QUEUE_DUE, _TRANSIT_DUE = 6, 6 + _SLOTS
_FLOAT_ROWS, _INT_CELLS = 7 + 2 * _SLOTS, 6 + 2 * _SLOTS
_RAMP_MAX = 6  # the row of the limits array after RateLimits' six: the device's ramp step
SETPOINT_ROW, COMMANDED_ROW = _SETPOINT, _COMMANDED  # rows a caller of the kernels uses


def _submit(commanded: np.ndarray, delay_steps: int, state: np.ndarray, ints: np.ndarray) -> None:
    """`commanded` is what the actuators are commanded from now on: if it differs from the
    last command it is queued, visible to the driver `delay_steps` later (never before an
    earlier command: one publisher's messages arrive in order)."""
    if _differ(commanded, state[_SUBMITTED]):
        state[_SUBMITTED, :] = commanded
        visible = max(ints[_STEP] + delay_steps, ints[_LAST_VISIBLE])
        ints[_LAST_VISIBLE] = visible
        slot = (ints[_QUEUE_HEAD] + ints[_QUEUE_LEN]) % _SLOTS
        ints[_QUEUE_DUE + slot] = visible
        state[_QUEUE + slot, :] = commanded
        ints[_QUEUE_LEN] += 1


def _advance(
    state: np.ndarray,
    ints: np.ndarray,
    limits: np.ndarray,
    period_s: float,
    cycle_steps: int,
    latency_steps: int,
) -> None:
    """One physics step of the path: the driver takes the commands now visible, steps its
    limiter on a cycle boundary and sends the result, the device takes what arrives, and
    `state[_SETPOINT]` holds this step's servo setpoints."""
    step = ints[_STEP]
    while ints[_QUEUE_LEN] > 0 and ints[_QUEUE_DUE + ints[_QUEUE_HEAD]] <= step:  # driver
        state[_TARGET, :] = state[_QUEUE + ints[_QUEUE_HEAD]]
        ints[_QUEUE_HEAD] = (ints[_QUEUE_HEAD] + 1) % _SLOTS
        ints[_QUEUE_LEN] -= 1
    if step % cycle_steps == 0:  # a driver cycle: one limiter step, sent to the device
        q, v = state[_Q], state[_V]
        rate_limited_step_into(q, v, state[_TARGET], limits, period_s, q, v)
        slot = (ints[_TRANSIT_HEAD] + ints[_TRANSIT_LEN]) % _SLOTS
        ints[_TRANSIT_DUE + slot] = step + latency_steps
        state[_TRANSIT + slot, :] = q
        ints[_TRANSIT_LEN] += 1
    while ints[_TRANSIT_LEN] > 0 and ints[_TRANSIT_DUE + ints[_TRANSIT_HEAD]] <= step:
        state[_GOAL, :] = state[_TRANSIT + ints[_TRANSIT_HEAD]]
        ints[_TRANSIT_HEAD] = (ints[_TRANSIT_HEAD] + 1) % _SLOTS
        ints[_TRANSIT_LEN] -= 1
    setpoint = state[_SETPOINT]
    ramp_step_into(setpoint, state[_GOAL], limits[_RAMP_MAX], setpoint)
    ints[_STEP] = step + 1


def _plan(
    out: np.ndarray,
    starts: np.ndarray,
    commanded: np.ndarray,
    delay_steps: int,
    state: np.ndarray,
    ints: np.ndarray,
    limits: np.ndarray,
    period_s: float,
    cycle_steps: int,
    latency_steps: int,
) -> int:
    """One call of the twin's command path: submit `commanded`, then fill `out` with a row
    of servo setpoints per physics step and `starts` with the rows where they change (where
    an `mj_step` call must begin; returns how many), advancing the path state."""
    _submit(commanded, delay_steps, state, ints)
    count = 0
    for row in range(out.shape[0]):
        _advance(state, ints, limits, period_s, cycle_steps, latency_steps)
        out[row, :] = state[_SETPOINT]
        if row == 0 or _differ(out[row], out[row - 1]):
            starts[count] = row
            count += 1
    return count


def _differ(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two rows differ anywhere (compiled: a loop, not a temporary array)."""
    for i in range(len(a)):  # noqa: SIM110 (numba compiles this loop, not a generator)
        if a[i] != b[i]:
            return True
    return False


_COMPILED: dict[str, Callable[..., Any]] = {}
# What `_plan` calls, compiled with it (the twin's stepping loop calls the last two itself).
_KERNELS = (
    "braking_speed", "rate_limited_step_into", "rate_limited_step", "ramp_step_into",
    "ramp_step", "_differ", "_submit", "_advance",
)  # fmt: skip


def compiled_plan() -> Callable[..., None]:
    """`_plan` compiled by numba (cached on disk), with the limiter and ramp it calls:
    the same functions the driver path calls plainly (`compiled(name)` gives each)."""
    if not _COMPILED:
        import numba

        jit = numba.njit(cache=True)
        module = globals()
        plain = {name: module[name] for name in _KERNELS}
        try:  # numba binds the globals `_plan` calls when it compiles
            module.update({name: jit(function) for name, function in plain.items()})
            plan = jit(_plan)
            plan(*_example_arguments())  # compile now, not in an episode
            ones, limits = np.ones(1), np.array(RateLimits(*[np.ones(1)] * 6))
            module["rate_limited_step"](ones, ones, ones, limits, 0.01)  # wrappers `_plan`
            module["ramp_step"](ones, ones, ones)  # does not call: compiled while bound
            _COMPILED.update({name: module[name] for name in _KERNELS}, plan=plan)
        finally:  # the module's names stay the plain functions the driver path calls
            module.update(plain)
    return _COMPILED["plan"]


def compiled(name: str) -> Callable[..., Any]:
    """The compiled twin of one of this module's functions (for tests and benches)."""
    compiled_plan()
    return _COMPILED[name]


def _example_arguments() -> tuple[Any, ...]:
    ones = np.ones(1)
    limits = np.array([*RateLimits(ones, ones, -ones, ones, -ones, ones), ones])
    return (np.zeros((2, 1)), np.zeros(2, dtype=np.int64), ones, 5,
            np.zeros((_FLOAT_ROWS, 1)), np.zeros(_INT_CELLS, dtype=np.int64), limits,
            0.01, 5, 1)  # fmt: skip


class CommandPath:
    """The robot's command path in the twin: targets in, one row of servo setpoints per
    physics step out (`setpoints`), with the driver's cycle, the limiter, the delays and the
    device's ramp (module docstring). Deterministic given `reset`'s seed."""

    def __init__(self, limits: RateLimits, config: ActuationConfig, physics_timestep_s: float):
        self.nominal_limits = limits
        self.timestep_s = float(physics_timestep_s)
        self.config = config
        self._plan = compiled_plan()
        size = len(limits.velocity_max)
        self._state = np.zeros((_FLOAT_ROWS, size))  # the layout above `_submit`
        self._ints = np.zeros(_INT_CELLS, dtype=np.int64)
        self._starts = np.empty(0, dtype=np.int64)
        self._rng = np.random.default_rng((0, _JITTER_STREAM))
        self.starts: list[int] = []  # of the last `setpoints`: the rows where setpoints change
        self.start_rows = np.zeros(0, dtype=np.int64)  # the same, as an array
        self.configure(config)

    @classmethod
    def for_robot(
        cls, robot: str, physics_timestep_s: float, config: ActuationConfig | None = None
    ) -> CommandPath:
        """The command path of `robot`'s commands (its robot.yaml limits)."""
        from sim.robots import get_robot

        commands = get_robot(robot).commands
        margin = get_robot(robot).position_margin

        def column(key: str) -> np.ndarray:
            return np.array([getattr(c, key) for c in commands], dtype=np.float64)

        low, high = column("position_min"), column("position_max")
        limits = RateLimits(
            column("velocity_max"), column("acceleration_max"),
            low + margin, high - margin, low, high,
        )  # fmt: skip
        return cls(limits, config or ActuationConfig(), physics_timestep_s)

    @property
    def limits(self) -> RateLimits:
        return self._limits

    def configure(self, config: ActuationConfig) -> None:
        """Use `config` from now on (an episode's randomized values); call `reset` next."""
        if config.model != "robot":
            raise ConfigError("CommandPath simulates the robot's actuation; 'ideal' has none")
        cycle_steps = config.cycle_period_s / self.timestep_s
        if abs(cycle_steps - round(cycle_steps)) > 1e-6 or round(cycle_steps) < 1:
            raise ConfigError(
                f"actuation cycle_period_s {config.cycle_period_s} is not a whole number of "
                f"physics timesteps ({self.timestep_s} s); use a multiple of it"
            )
        self.config = config
        self._cycle_steps = round(cycle_steps)
        self._delay_steps = config.command_delay_cycles * self._cycle_steps
        self._latency_steps = round(config.link_latency_s / self.timestep_s)
        nominal = self.nominal_limits
        self._limits = nominal._replace(
            velocity_max=nominal.velocity_max * config.velocity_scale,
            acceleration_max=nominal.acceleration_max * config.acceleration_scale,
        )
        # The device announces its speed limit as float32 (PROTOCOL.md DeviceInfo).
        speed = self._limits.velocity_max.astype(np.float32).astype(np.float64)
        # The compiled path's form: the six limits and the ramp's step, one array.
        self._limit_rows = np.array([*self._limits, speed * self.timestep_s])

    def reset(self, positions: np.ndarray, seed: int | None = None) -> None:
        """At rest at `positions` (each commanded joint), nothing in flight: a new episode.
        A seed restarts the jitter's generator (its own, so the env's draws are unchanged)."""
        self.hold(positions)
        self._ints[_STEP] = self._ints[_LAST_VISIBLE] = 0
        if seed is not None:
            self._rng = np.random.default_rng((seed, _JITTER_STREAM))

    def hold(self, positions: np.ndarray) -> None:
        """Stop everything at `positions` now (the safety layer's latched hold and the
        device's hold: no ramp, no limiter, nothing in flight is delivered)."""
        self._state[:_QUEUE] = np.asarray(positions, dtype=np.float64)
        self._state[_V] = 0.0
        self._ints[_QUEUE_HEAD:_QUEUE_DUE] = 0
        self._ints[_LAST_VISIBLE] = self._ints[_STEP]

    @property
    def submitted(self) -> np.ndarray:
        """The last command the path was given (a copy)."""
        return self._state[_SUBMITTED].copy()

    @property
    def sent(self) -> np.ndarray:
        """The limiter's newest command (what the driver sent: `joint_command_applied`)."""
        return self._state[_Q].copy()

    def setpoints(self, commanded: np.ndarray, nstep: int) -> np.ndarray:
        """The servo setpoints for the next `nstep` physics steps, given that the actuators
        are commanded `commanded` from now on (a new command when it changed); `starts`
        then lists the rows where they change."""
        out = np.empty((nstep, len(commanded)))
        if len(self._starts) < nstep:
            self._starts = np.empty(nstep, dtype=np.int64)
        starts = self._starts
        count = self._plan(out, starts, commanded, *self.kernel_arguments(commanded))
        self.start_rows = starts[:count]
        self.starts = self.start_rows.tolist()
        return out

    def kernel_arguments(self, commanded: np.ndarray) -> tuple[Any, ...]:
        """The arguments of `_plan` after `commanded`, for a caller that runs the compiled
        kernels itself (`_submit` takes the first three after `commanded`, `_advance` the
        rest from the state): the twin steps physics between them (sim/twin.py) with no
        Python call per step. A new command's jitter is drawn here."""
        delay = self._delay_steps
        jitter = self.config.command_jitter_cycles
        if jitter and _differ(commanded, self._state[_SUBMITTED]):
            delay += int(self._rng.integers(0, jitter + 1)) * self._cycle_steps
        return (delay, self._state, self._ints, self._limit_rows, self.config.cycle_period_s,
                self._cycle_steps, self._latency_steps)  # fmt: skip

    @staticmethod
    def kernels() -> tuple[Callable[..., None], Callable[..., None]]:
        """The compiled `_submit` and `_advance` (see `kernel_arguments`)."""
        compiled_plan()
        return _COMPILED["_submit"], _COMPILED["_advance"]
