"""Automatic Domain Randomization: randomization ranges that grow only as fast as the policy copes.

Akkaya et al. 2019, "Solving Rubik's Cube with a Robot Hand", section 5 and Algorithm 1.
Hand-tuned ranges are either too narrow (the real robot falls outside them) or too wide (the
policy never learns). ADR starts every parameter's range at its calibrated nominal value, the
unrandomized twin, and moves one bound outward by a step only after the policy performed well in
`buffer_size` episodes with that parameter pinned at that bound; when performance there drops,
the bound moves back inward (never past nominal, so the calibrated twin stays in the training
distribution). The ranges are the curriculum, and their entropy is the progress measure.

Vector envs: this object lives in the trainer process only and touches no processes, locks or
shared memory. Each episode the trainer calls `plan(rng)` and sends `plan.values` to a worker
(workers never see ADR); when a pinned (boundary) episode ends, the trainer calls
`report_episode(plan, performance)` (or `report(path, bound, performance)`).

Reproducibility: `plan` makes the same draws (boundary coin, bound choice, d uniforms) on every
call, pinned or not, so the plans depend only on the generator state and the ADR state.
`state_dict()` holds all of the ADR state (not the generator, which the trainer checkpoints beside
it) as plain JSON types.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from sim.config_loader import check_keys
from sim.randomization.parameters import Parameter, RandomizationError, by_path

BOUNDS = ("low", "high")
# Width a zero-width range counts as in `entropy()`: at the start every range is a point and the
# published formula gives -inf; log(1e-6) = -13.8 nats keeps the curve finite and plottable.
ZERO_WIDTH = 1e-6
COUNTERS = ("boundary_episodes", "stale_reports", "bound_moves_out", "bound_moves_in")
STATE_VERSION = 1
_STATE_KEYS = ("version", "settings", "deltas", "bounds", "buffers", "counters")
# A bound this close to nominal (relative to its step) after an inward move is snapped onto it,
# so float drift from repeated +delta/-delta never leaves a 1e-16-wide range behind.
_SNAP_FRACTION = 1e-9


@dataclass(frozen=True)
class AdrSettings:
    """How ADR decides to move a bound (the published defaults).

    `buffer_size` (m): boundary episodes collected per bound before a decision.
    `boundary_probability` (p_b): chance that an episode pins one bound instead of sampling.
    `low_threshold` (t_L) / `high_threshold` (t_H): a full buffer whose mean performance is
    <= t_L moves the bound inward, >= t_H outward; performance is in the trainer's units
    (success rate, successes per episode...), so only 0 <= t_L < t_H is required.
    """

    buffer_size: int = 240
    boundary_probability: float = 0.5
    low_threshold: float = 0.4
    high_threshold: float = 0.8

    def __post_init__(self) -> None:
        size = self.buffer_size
        if not isinstance(size, numbers.Integral) or isinstance(size, bool):
            raise RandomizationError(f"AdrSettings.buffer_size must be an integer, got {size!r}")
        object.__setattr__(self, "buffer_size", int(size))
        for name in ("boundary_probability", "low_threshold", "high_threshold"):
            object.__setattr__(self, name, _finite(getattr(self, name), f"AdrSettings.{name}"))
        self._check_ranges()

    def _check_ranges(self) -> None:
        if self.buffer_size < 1:
            raise RandomizationError(
                f"AdrSettings.buffer_size must be >= 1, got {self.buffer_size}"
            )
        if not 0.0 <= self.boundary_probability <= 1.0:
            raise RandomizationError(
                "AdrSettings.boundary_probability must be in [0, 1], "
                f"got {self.boundary_probability}"
            )
        if self.low_threshold < 0.0:
            raise RandomizationError(
                f"AdrSettings.low_threshold must be >= 0, got {self.low_threshold}"
            )
        if self.low_threshold >= self.high_threshold:
            raise RandomizationError(
                f"AdrSettings.low_threshold ({self.low_threshold}) must be below "
                f"high_threshold ({self.high_threshold})"
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], source: str) -> AdrSettings:
        """Settings from a YAML/JSON mapping; `source` (a file name) prefixes every error."""
        known = [f.name for f in fields(cls)]
        values = check_keys(mapping, known, source, what="ADR setting", error=RandomizationError)
        try:
            return cls(**values)
        except RandomizationError as e:
            raise RandomizationError(f"{source}: {e}") from e


@dataclass(frozen=True)
class EpisodePlan:
    """One episode's randomization.

    `values`: one sampled value per ADR parameter path (what the worker applies).
    `pinned`: (path, "low" | "high") when this episode evaluates that bound, whose performance
    the trainer must report; None for an ordinary training episode.
    """

    values: dict[str, float]
    pinned: tuple[str, str] | None = None


@dataclass(frozen=True)
class BoundMove:
    """A bound that a full buffer moved; `mean_performance` is the buffer's mean."""

    path: str
    bound: str
    old: float
    new: float
    mean_performance: float

    @property
    def outward(self) -> bool:
        """True when the range grew."""
        return (self.new > self.old) == (self.bound == "high")


class AutomaticDomainRandomization:
    """Per-parameter ranges [phi_L, phi_H], each starting at the parameter's nominal value.

    `steps` overrides `parameter.adr_step` (delta) by path. Bounds always satisfy
    legal_low <= phi_L <= nominal <= phi_H <= legal_high.
    """

    def __init__(
        self,
        parameters: Sequence[Parameter],
        settings: AdrSettings,
        steps: Mapping[str, float] | None = None,
    ):
        self.settings = settings
        self._parameters = _index(parameters)
        self._deltas = _deltas(self._parameters, steps or {})
        self._bounds = {p: [q.nominal, q.nominal] for p, q in self._parameters.items()}
        self._buffers: dict[str, dict[str, list[float]]] = {
            p: {b: [] for b in BOUNDS} for p in self._parameters
        }
        self._counters = dict.fromkeys(COUNTERS, 0)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(self._parameters.values())

    @property
    def deltas(self) -> dict[str, float]:
        return dict(self._deltas)

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """path -> (phi_L, phi_H)."""
        return {p: (low, high) for p, (low, high) in self._bounds.items()}

    @property
    def counters(self) -> dict[str, int]:
        """Boundary episodes reported, stale reports dropped, bound moves out and in."""
        return dict(self._counters)

    def entropy(self) -> float:
        """ADR entropy in nats per dimension, (1/d) * sum(log(phi_H - phi_L)); a range narrower
        than ZERO_WIDTH (at the start, every range) counts as ZERO_WIDTH wide."""
        widths = [max(high - low, ZERO_WIDTH) for low, high in self._bounds.values()]
        return float(np.mean(np.log(widths)))

    def plan(self, rng: np.random.Generator) -> EpisodePlan:
        """With probability p_b pin one uniformly chosen bound of one uniformly chosen parameter;
        every other value is uniform in its [phi_L, phi_H]. Makes the same draws pinned or not."""
        paths = list(self._parameters)
        lows = np.array([self._bounds[p][0] for p in paths])
        highs = np.array([self._bounds[p][1] for p in paths])
        boundary = rng.random() < self.settings.boundary_probability
        choice = int(rng.integers(2 * len(paths)))
        drawn = np.clip(rng.uniform(lows, highs), lows, highs)
        values = {p: float(v) for p, v in zip(paths, drawn, strict=True)}
        if not boundary:
            return EpisodePlan(values)
        path, side = paths[choice // 2], choice % 2
        values[path] = self._bounds[path][side]
        return EpisodePlan(values, (path, BOUNDS[side]))

    def report_episode(self, plan: EpisodePlan, performance: float) -> BoundMove | None:
        """`report` for a finished episode of `plan` (nothing for unpinned plans); a report for a
        bound that has moved since the plan was made is dropped as stale."""
        if plan.pinned is None:
            return None
        path, bound = plan.pinned
        return self.report(path, bound, performance, value=plan.values.get(path))

    def report(
        self, path: str, bound: str, performance: float, value: float | None = None
    ) -> BoundMove | None:
        """Add one boundary episode's performance to the buffer of `path`'s `bound`; a full
        buffer decides (mean >= t_H: outward, <= t_L: inward) and is cleared. Returns the move,
        or None. `value`, the pinned value the episode ran with, if given and no longer the
        bound (another worker's report moved it meanwhile), makes the report stale: dropped."""
        side = self._side(path, bound)
        performance = _finite(performance, f"ADR performance for {path} {bound}")
        if value is not None and value != self._bounds[path][side]:
            self._counters["stale_reports"] += 1
            return None
        self._counters["boundary_episodes"] += 1
        buffer = self._buffers[path][bound]
        buffer.append(performance)
        if len(buffer) < self.settings.buffer_size:
            return None
        mean = float(np.mean(buffer))
        buffer.clear()
        return self._decide(path, side, mean)

    def _side(self, path: str, bound: str) -> int:
        if path not in self._parameters:
            raise RandomizationError(
                f"unknown ADR parameter {path!r}; known: {', '.join(self._parameters)}"
            )
        if bound not in BOUNDS:
            raise RandomizationError(f"ADR bound must be 'low' or 'high', got {bound!r}")
        return BOUNDS.index(bound)

    def _decide(self, path: str, side: int, mean: float) -> BoundMove | None:
        if mean >= self.settings.high_threshold:
            direction = 1
        elif mean <= self.settings.low_threshold:
            direction = -1
        else:
            return None
        old = self._bounds[path][side]
        new = self._moved(path, side, direction)
        if new == old:
            return None
        self._bounds[path][side] = new
        self._counters["bound_moves_out" if direction > 0 else "bound_moves_in"] += 1
        return BoundMove(path, BOUNDS[side], old, new, mean)

    def _moved(self, path: str, side: int, direction: int) -> float:
        """The bound one delta outward (direction 1) or inward (-1), clipped to the legal range
        and never past nominal."""
        param, delta = self._parameters[path], self._deltas[path]
        outward_sign = 1.0 if side == 1 else -1.0
        target = self._bounds[path][side] + outward_sign * direction * delta
        if abs(target - param.nominal) <= _SNAP_FRACTION * delta:
            return param.nominal
        if side == 1:
            return min(max(target, param.nominal), param.legal_high)
        return max(min(target, param.nominal), param.legal_low)

    def state_dict(self) -> dict[str, Any]:
        """Everything ADR knows, as JSON types (the checkpoint's `adr` entry)."""
        return {
            "version": STATE_VERSION,
            "settings": asdict(self.settings),
            "deltas": dict(self._deltas),
            "bounds": {p: list(b) for p, b in self._bounds.items()},
            "buffers": {p: {b: list(v) for b, v in bs.items()} for p, bs in self._buffers.items()},
            "counters": dict(self._counters),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()` output after checking it fits these parameters and settings;
        on any error nothing changes."""
        _check_keys("ADR state", state, _STATE_KEYS)
        if state["version"] != STATE_VERSION:
            raise RandomizationError(
                f"ADR state version is {state['version']!r}; this code reads {STATE_VERSION}"
            )
        self._check_settings(state["settings"])
        self._check_deltas(state["deltas"])
        bounds = self._parse_bounds(state["bounds"])
        buffers = self._parse_buffers(state["buffers"])
        counters = _parse_counters(state["counters"])
        self._bounds, self._buffers, self._counters = bounds, buffers, counters

    def _check_settings(self, saved: Any) -> None:
        if not isinstance(saved, Mapping):
            raise RandomizationError(f"ADR state settings must be a mapping, got {saved!r}")
        settings = AdrSettings.from_dict(saved, "ADR state settings")
        if settings != self.settings:
            raise RandomizationError(
                f"ADR state settings {settings} differ from this ADR's {self.settings}; build "
                "it with AdrSettings.from_dict(state['settings'], ...) to resume as saved"
            )

    def _check_deltas(self, saved: Any) -> None:
        _check_keys("ADR state deltas", saved, self._parameters)
        for path, delta in saved.items():
            if _finite(delta, f"ADR state deltas[{path!r}]") != self._deltas[path]:
                raise RandomizationError(
                    f"ADR state deltas[{path!r}] is {delta}, this ADR steps {self._deltas[path]}; "
                    "resume with the saved steps"
                )

    def _parse_bounds(self, saved: Any) -> dict[str, list[float]]:
        _check_keys("ADR state bounds", saved, self._parameters)
        return {path: self._parse_range(path, saved[path]) for path in self._parameters}

    def _parse_range(self, path: str, pair: Any) -> list[float]:
        where = f"ADR state bounds[{path!r}]"
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise RandomizationError(f"{where} must be [low, high], got {pair!r}")
        param = self._parameters[path]
        try:
            low, high = param.check_range(_finite(pair[0], where), _finite(pair[1], where))
        except RandomizationError as e:
            raise RandomizationError(f"{where}: {e}") from e
        if not low <= param.nominal <= high:
            raise RandomizationError(
                f"{where} = [{low}, {high}] does not contain the nominal value {param.nominal}"
            )
        return [low, high]

    def _parse_buffers(self, saved: Any) -> dict[str, dict[str, list[float]]]:
        _check_keys("ADR state buffers", saved, self._parameters)
        parsed = {}
        for path in self._parameters:
            _check_keys(f"ADR state buffers[{path!r}]", saved[path], BOUNDS)
            parsed[path] = {b: self._parse_buffer(path, b, saved[path][b]) for b in BOUNDS}
        return parsed

    def _parse_buffer(self, path: str, bound: str, entries: Any) -> list[float]:
        where = f"ADR state buffers[{path!r}][{bound!r}]"
        if not isinstance(entries, list):
            raise RandomizationError(f"{where} must be a list of numbers, got {entries!r}")
        if len(entries) >= self.settings.buffer_size:
            raise RandomizationError(
                f"{where} holds {len(entries)} entries; a buffer holds fewer than "
                f"buffer_size={self.settings.buffer_size}"
            )
        return [_finite(x, where) for x in entries]


def _finite(value: Any, what: str) -> float:
    """`value` as a float, or an error naming `what` unless it is a finite real number."""
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise RandomizationError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _check_keys(what: str, mapping: Any, expected: Collection[str]) -> None:
    """Refuse a non-mapping, or one whose keys are not exactly `expected`, naming the keys."""
    if not isinstance(mapping, Mapping):
        raise RandomizationError(f"{what} must be a mapping, got {type(mapping).__name__}")
    missing = [k for k in expected if k not in mapping]
    extra = sorted(str(k) for k in mapping if k not in expected)
    if missing or extra:
        raise RandomizationError(
            f"{what} does not match: missing {', '.join(missing) or 'none'}; "
            f"unexpected {', '.join(extra) or 'none'}"
        )


def _parse_counters(saved: Any) -> dict[str, int]:
    _check_keys("ADR state counters", saved, COUNTERS)
    for name in COUNTERS:
        count = saved[name]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise RandomizationError(
                f"ADR state counters[{name!r}] must be an integer >= 0, got {count!r}"
            )
    return {name: int(saved[name]) for name in COUNTERS}


def _index(parameters: Sequence[Parameter]) -> dict[str, Parameter]:
    if not parameters:
        raise RandomizationError("ADR needs at least one parameter")
    return by_path(parameters, "ADR parameter")


def _deltas(parameters: Mapping[str, Parameter], steps: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(steps) - set(parameters))
    if unknown:
        raise RandomizationError(
            f"ADR steps for unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(parameters)}"
        )
    deltas = {}
    for path, param in parameters.items():
        delta = _finite(steps.get(path, param.adr_step), f"ADR step for {path}")
        if delta <= 0:
            raise RandomizationError(f"ADR step for {path} must be > 0, got {delta}")
        deltas[path] = delta
    return deltas
