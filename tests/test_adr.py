"""Automatic Domain Randomization against a synthetic policy with a known capability boundary.

The oracle "policy" succeeds at a pinned value inside its capability interval, fails outside
it, and in between (a ramp of width `ramp`) succeeds with linearly falling probability. With
it, where each ADR bound must end up is known exactly: between the last grid point where the
policy always succeeds and the first where it always fails, i.e. within one delta of the
boundary (plus the ramp).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from sim.randomization.adr import (
    ZERO_WIDTH,
    AdrSettings,
    AutomaticDomainRandomization,
    BoundMove,
    EpisodePlan,
)
from sim.randomization.adr_log import AdrLog
from sim.randomization.parameters import Parameter, RandomizationError

FRICTION = Parameter("physics.friction:scale", 1.0, 0.1, 3.0, 0.05, "friction x")
NOISE = Parameter("observation.noise:std", 0.0, 0.0, 0.5, 0.01, "observation noise")
MASS = Parameter("physics.mass:scale", 1.0, 0.5, 2.0, 0.1, "mass x")
PARAMETERS = (FRICTION, NOISE, MASS)
# Capability intervals: MASS's low end (0.2) lies beyond its legal range, so it clips at 0.5.
CAPABILITY = {FRICTION.path: (0.6, 1.5), NOISE.path: (0.0, 0.12), MASS.path: (0.2, 1.75)}
SMALL = AdrSettings(buffer_size=10)
EPS = 1e-9


@dataclass
class Oracle:
    """Performance of a pinned episode, which depends only on the pinned value."""

    capability: dict[str, tuple[float, float]]
    ramp: float = 0.0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def __call__(self, plan: EpisodePlan) -> float:
        assert plan.pinned is not None
        path, _ = plan.pinned
        low, high = self.capability[path]
        value = plan.values[path]
        outside = max(low - value, value - high, 0.0)
        if self.ramp == 0.0:
            return float(outside == 0.0)
        return float(self.rng.random() < 1.0 - min(outside / self.ramp, 1.0))


def make_adr(settings: AdrSettings = SMALL, **kwargs: object) -> AutomaticDomainRandomization:
    return AutomaticDomainRandomization(PARAMETERS, settings, **kwargs)  # type: ignore[arg-type]


def run(
    adr: AutomaticDomainRandomization,
    oracle: Oracle,
    episodes: int,
    rng: np.random.Generator,
) -> list[dict[str, tuple[float, float]]]:
    """Drive plan/report for `episodes` episodes; the bounds after each."""
    history = []
    for _ in range(episodes):
        plan = adr.plan(rng)
        if plan.pinned is not None:
            adr.report_episode(plan, oracle(plan))
        history.append(adr.bounds)
    return history


def assert_settles_at(history: list, path: str, side: int, edge: float, delta: float) -> None:
    seen = [bounds[path][side] for bounds in history]
    assert edge - delta - EPS <= min(seen) and max(seen) <= edge + delta + EPS, (path, side)


@pytest.mark.parametrize("ramp", [0.0, 0.04])
def test_bounds_grow_to_the_capability_boundary_and_stay_there(ramp: float) -> None:
    adr, rng = make_adr(), np.random.default_rng(0)
    oracle = Oracle(CAPABILITY, ramp=ramp)
    run(adr, oracle, 6000, rng)
    tail = run(adr, oracle, 6000, rng)
    for param in PARAMETERS:
        low, high = CAPABILITY[param.path]
        delta = param.adr_step
        assert_settles_at(tail, param.path, 1, high + ramp / 2, delta + ramp / 2)
        if low >= param.legal_low:
            assert_settles_at(tail, param.path, 0, low - ramp / 2, delta + ramp / 2)
    # Clipped at legal limits: NOISE's low end is its nominal 0; MASS's stops at 0.5, not 0.2.
    assert {b[NOISE.path][0] for b in tail} == {0.0}
    assert {b[MASS.path][0] for b in tail} == {MASS.legal_low}
    assert adr.counters["bound_moves_in"] > 0  # it kept probing past the boundary
    assert adr.counters["stale_reports"] == 0


def test_a_bound_follows_a_shrinking_capability_inward_but_never_past_nominal() -> None:
    adr, rng = AutomaticDomainRandomization([FRICTION], SMALL), np.random.default_rng(1)
    run(adr, Oracle({FRICTION.path: (0.6, 1.5)}), 3000, rng)
    assert adr.bounds[FRICTION.path][1] > 1.4
    tail = run(adr, Oracle({FRICTION.path: (0.6, 1.2)}), 3000, rng)[-1000:]
    assert_settles_at(tail, FRICTION.path, 1, 1.2, FRICTION.adr_step)
    assert_settles_at(tail, FRICTION.path, 0, 0.6, FRICTION.adr_step)
    # The policy collapses (fails everywhere): both bounds return to exactly nominal.
    history = run(adr, Oracle({FRICTION.path: (5.0, 6.0)}), 3000, rng)
    assert all(low <= 1.0 <= high for low, high in (b[FRICTION.path] for b in history))
    assert adr.bounds[FRICTION.path] == (1.0, 1.0)
    assert adr.entropy() == pytest.approx(math.log(ZERO_WIDTH))


def test_report_returns_the_move_once_the_buffer_is_full() -> None:
    adr = make_adr()
    moves = [adr.report(MASS.path, "high", 1.0) for _ in range(10)]
    assert moves[:9] == [None] * 9
    assert moves[9] == BoundMove(MASS.path, "high", 1.0, 1.1, 1.0)
    assert moves[9].outward
    middling = [adr.report(MASS.path, "high", 0.6) for _ in range(10)]  # t_L < 0.6 < t_H
    assert middling == [None] * 10 and adr.bounds[MASS.path] == (1.0, 1.1)
    inward = [adr.report(MASS.path, "high", 0.4) for _ in range(10)][-1]  # mean <= t_L
    assert inward is not None and not inward.outward and adr.bounds[MASS.path] == (1.0, 1.0)
    assert adr.counters == {
        "boundary_episodes": 30,
        "stale_reports": 0,
        "bound_moves_out": 1,
        "bound_moves_in": 1,
    }


def test_moves_are_clipped_to_the_legal_range_and_never_cross_nominal() -> None:
    damping = Parameter("physics.damping:scale", 1.0, 0.95, 1.15, 0.1, "damping x")
    adr = AutomaticDomainRandomization([damping], SMALL)

    def decide(bound: str, performance: float) -> BoundMove | None:
        return [adr.report(damping.path, bound, performance) for _ in range(10)][-1]

    assert decide("high", 1.0) is not None and decide("high", 1.0) is not None
    assert adr.bounds[damping.path] == (1.0, 1.15)  # 1.2 clipped to legal_high
    assert decide("high", 1.0) is None  # at the legal limit: no move, nothing returned
    assert decide("low", 1.0) == BoundMove(damping.path, "low", 1.0, 0.95, 1.0)
    assert decide("high", 0.0) is not None and decide("high", 0.0) is not None
    assert adr.bounds[damping.path] == (0.95, 1.0)  # 1.05 - 0.1 stops at nominal
    assert decide("high", 0.0) is None and decide("low", 0.0) is not None
    assert adr.bounds[damping.path] == (1.0, 1.0)
    assert adr.counters["bound_moves_out"] == 3 and adr.counters["bound_moves_in"] == 3


def test_a_report_for_a_bound_that_moved_since_the_plan_is_dropped_as_stale() -> None:
    adr = make_adr()
    pinned = EpisodePlan({MASS.path: 1.0}, (MASS.path, "high"))
    for _ in range(10):
        adr.report_episode(pinned, 1.0)
    assert adr.report_episode(pinned, 0.0) is None  # ran at 1.0, the bound is now 1.1
    assert adr.counters["stale_reports"] == 1 and adr.counters["boundary_episodes"] == 10
    assert adr.report_episode(EpisodePlan({MASS.path: 1.0}), 0.0) is None  # unpinned: ignored


def test_boundary_sampling_frequency_and_values() -> None:
    adr = make_adr(AdrSettings(buffer_size=10, boundary_probability=0.3))
    state = adr.state_dict()
    state["bounds"] = {FRICTION.path: [0.7, 1.4], NOISE.path: [0.0, 0.1], MASS.path: [0.8, 1.3]}
    adr.load_state_dict(state)
    rng, n = np.random.default_rng(3), 20_000
    counts = dict.fromkeys(((p.path, b) for p in PARAMETERS for b in ("low", "high")), 0)
    free: dict[str, list[float]] = {p.path: [] for p in PARAMETERS}
    for _ in range(n):
        plan = adr.plan(rng)
        if plan.pinned is not None:
            counts[plan.pinned] += 1
            path, bound = plan.pinned
            assert plan.values[path] == adr.bounds[path][0 if bound == "low" else 1]
        for path, value in plan.values.items():
            low, high = adr.bounds[path]
            assert low <= value <= high
            if plan.pinned is None or plan.pinned[0] != path:
                free[path].append(value)
    pinned = sum(counts.values())
    assert abs(pinned - 0.3 * n) < 5 * math.sqrt(n * 0.3 * 0.7)
    share = 1 / len(counts)
    for key, count in counts.items():
        assert abs(count - share * pinned) < 5 * math.sqrt(pinned * share * (1 - share)), key
    for path, values in free.items():  # uniform in [low, high]: mean at the midpoint
        low, high = adr.bounds[path]
        assert np.mean(values) == pytest.approx((low + high) / 2, abs=0.01 * (high - low))


@pytest.mark.parametrize("probability, expected", [(0.0, 0), (1.0, 500)])
def test_boundary_probability_extremes(probability: float, expected: int) -> None:
    adr = make_adr(AdrSettings(buffer_size=10, boundary_probability=probability))
    rng = np.random.default_rng(4)
    assert sum(adr.plan(rng).pinned is not None for _ in range(500)) == expected


def test_state_round_trips_through_json_and_continues_identically() -> None:
    oracle_a, oracle_b = Oracle(CAPABILITY, ramp=0.04), Oracle(CAPABILITY, ramp=0.04)
    original, rng = make_adr(), np.random.default_rng(5)
    run(original, oracle_a, 1234, rng)
    state = json.loads(json.dumps(original.state_dict()))
    assert any(b for bs in state["buffers"].values() for b in bs.values())  # mid-buffer save
    restored = make_adr()
    restored.load_state_dict(state)
    rng_b = np.random.default_rng()
    rng_b.bit_generator.state = rng.bit_generator.state
    oracle_b.rng.bit_generator.state = oracle_a.rng.bit_generator.state
    moves_before = original.counters["bound_moves_out"]
    for _ in range(3000):
        plan_a, plan_b = original.plan(rng), restored.plan(rng_b)
        assert plan_a == plan_b
        if plan_a.pinned is not None:
            assert original.report_episode(plan_a, oracle_a(plan_a)) == restored.report_episode(
                plan_b, oracle_b(plan_b)
            )
        assert original.bounds == restored.bounds
    assert original.counters["bound_moves_out"] > moves_before
    assert original.state_dict() == restored.state_dict()


def test_entropy_of_a_known_state() -> None:
    adr = make_adr()
    assert adr.entropy() == pytest.approx(math.log(ZERO_WIDTH))
    state = adr.state_dict()
    state["bounds"] = {FRICTION.path: [0.8, 1.3], NOISE.path: [0.0, 0.0], MASS.path: [0.5, 1.5]}
    adr.load_state_dict(state)
    expected = (math.log(0.5) + math.log(ZERO_WIDTH) + math.log(1.0)) / 3
    assert adr.entropy() == pytest.approx(expected)


def test_steps_override_the_parameter_adr_step() -> None:
    adr = make_adr(steps={MASS.path: 0.25})
    assert adr.deltas == {FRICTION.path: 0.05, NOISE.path: 0.01, MASS.path: 0.25}
    for _ in range(10):
        adr.report(MASS.path, "low", 1.0)
    assert adr.bounds[MASS.path] == (0.75, 1.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"buffer_size": 0}, "buffer_size"),
        ({"buffer_size": 2.5}, "buffer_size"),
        ({"boundary_probability": 1.5}, "boundary_probability"),
        ({"boundary_probability": math.nan}, "boundary_probability"),
        ({"low_threshold": -0.1}, "low_threshold"),
        ({"low_threshold": 0.8, "high_threshold": 0.8}, "high_threshold"),
    ],
)
def test_invalid_settings_are_refused_by_name(kwargs: dict, name: str) -> None:
    with pytest.raises(RandomizationError, match=name):
        AdrSettings(**kwargs)
    with pytest.raises(RandomizationError, match=f"adr.yaml: .*{name}"):
        AdrSettings.from_dict(kwargs, "adr.yaml")


def test_settings_from_dict() -> None:
    assert AdrSettings.from_dict({"buffer_size": 10}, "adr.yaml") == SMALL
    with pytest.raises(RandomizationError, match=r"adr.yaml: unknown ADR setting.*buffersize"):
        AdrSettings.from_dict({"buffersize": 10}, "adr.yaml")


@pytest.mark.parametrize(
    "parameters, steps, name",
    [
        ((), None, "at least one"),
        ((MASS, MASS), None, "physics.mass:scale.*twice"),
        (PARAMETERS, {"physics.gravity:scale": 0.1}, "physics.gravity:scale"),
        (PARAMETERS, {MASS.path: 0.0}, "physics.mass:scale"),
        (PARAMETERS, {MASS.path: math.inf}, "physics.mass:scale"),
    ],
)
def test_invalid_construction_is_refused(parameters: tuple, steps: dict | None, name: str) -> None:
    with pytest.raises(RandomizationError, match=name):
        AutomaticDomainRandomization(parameters, SMALL, steps)


@pytest.mark.parametrize(
    "path, bound, performance, name",
    [
        ("physics.gravity:scale", "high", 1.0, "physics.gravity:scale"),
        (MASS.path, "middle", 1.0, "middle"),
        (MASS.path, "high", math.nan, "performance.*physics.mass:scale"),
        (MASS.path, "low", math.inf, "performance.*physics.mass:scale"),
        (MASS.path, "low", "1.0", "performance"),
    ],
)
def test_bad_reports_are_refused_by_name(
    path: str, bound: str, performance: float, name: str
) -> None:
    adr = make_adr()
    with pytest.raises(RandomizationError, match=name):
        adr.report(path, bound, performance)
    assert adr.counters["boundary_episodes"] == 0


def _corrupt(state: dict, keys: tuple, value: object) -> dict:
    target = state
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return state


_DELETE = object()


@pytest.mark.parametrize(
    "keys, value, name",
    [
        (("bounds", MASS.path), _DELETE, "bounds.*missing physics.mass:scale"),
        (("bounds", "physics.gravity:scale"), [1.0, 1.0], "bounds.*physics.gravity:scale"),
        (("bounds", MASS.path), [0.5, 2.5], r"bounds\['physics.mass:scale'\].*legal"),
        (("bounds", MASS.path), [1.1, 1.2], r"bounds\['physics.mass:scale'\].*nominal"),
        (("bounds", MASS.path), [math.nan, 1.2], r"bounds\['physics.mass:scale'\]"),
        (("bounds", MASS.path), "1.0", r"bounds\['physics.mass:scale'\]"),
        (("buffers", MASS.path, "low"), "0.5", r"buffers\['physics.mass:scale'\]\['low'\]"),
        (("buffers", MASS.path, "low"), ["x"], r"buffers\['physics.mass:scale'\]\['low'\]"),
        (("buffers", MASS.path, "high"), [1.0] * 10, r"buffers.*'high'.*buffer_size"),
        (("buffers", MASS.path, "middle"), [], r"buffers\['physics.mass:scale'\].*middle"),
        (("counters", "bound_moves_in"), -1, "bound_moves_in"),
        (("counters", "boundary_episodes"), _DELETE, "counters.*boundary_episodes"),
        (("deltas", MASS.path), 0.2, r"deltas\['physics.mass:scale'\]"),
        (("settings", "buffer_size"), 240, "settings.*buffer_size"),
        (("settings", "buffersize"), 10, "settings.*buffersize"),
        (("version",), 99, "version"),
        (("adr",), {}, "unexpected adr"),
    ],
)
def test_corrupted_state_is_refused_by_name_and_changes_nothing(
    keys: tuple, value: object, name: str
) -> None:
    adr, rng = make_adr(), np.random.default_rng(6)
    run(adr, Oracle(CAPABILITY), 500, rng)
    before = adr.state_dict()
    state = _corrupt(json.loads(json.dumps(before)), keys, value)
    with pytest.raises(RandomizationError, match=name):
        adr.load_state_dict(state)
    assert adr.state_dict() == before


def test_adr_log_appends_csv_rows_and_draws_a_png(tmp_path) -> None:
    adr, rng = make_adr(), np.random.default_rng(8)
    log = AdrLog(tmp_path / "run")
    for step in range(3):
        run(adr, Oracle(CAPABILITY), 400, rng)
        log.log(400 * (step + 1), adr)
    assert log.plot() == tmp_path / "run" / "adr.png"
    png = (tmp_path / "run" / "adr.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000

    resumed = AdrLog(tmp_path / "run")  # a resumed run: rows kept, header not repeated
    resumed.log(1600, adr)
    resumed.log(2000, adr)
    with open(tmp_path / "run" / "adr.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == [
        "env_steps",
        "entropy_nats_per_dim",
        *(f"{p.path} {b}" for p in PARAMETERS for b in ("low", "high")),
    ]
    assert [row[0] for row in table[1:]] == ["400", "800", "1200", "1600", "2000"]
    last = resumed.rows()[-1]
    assert float(last["entropy_nats_per_dim"]) == adr.entropy()
    assert float(last[f"{MASS.path} high"]) == adr.bounds[MASS.path][1]
    assert resumed.plot() is not None


def test_adr_log_refuses_rows_of_other_parameters_and_bad_steps(tmp_path) -> None:
    log = AdrLog(tmp_path)
    assert log.plot() is None  # nothing logged yet
    log.log(0, make_adr())
    with pytest.raises(RandomizationError, match=r"adr\.csv has columns"):
        log.log(10, AutomaticDomainRandomization([FRICTION], SMALL))
    with pytest.raises(RandomizationError, match="env_steps"):
        log.log(-1, make_adr())
