"""Checks shared by every training-config dataclass: field types, named ranges, unknown keys.

The config dataclasses (`HerSacConfig`, `PpoLstmConfig`) are the single source of truth of
their options; these helpers keep their validation messages alike: each names the option.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import fields
from typing import Any, TypeVar

from policies.training.errors import TrainingConfigError

T = TypeVar("T")


def build_config(cls: type[T], values: dict[str, Any], source: str) -> T:
    """`cls(**values)`, refusing unknown keys with the list of valid ones."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainingConfigError(
            f"{source}: unknown option(s) {unknown}; valid options: {', '.join(sorted(known))}"
        )
    return cls(**values)


def check_field_types(config: Any) -> None:
    """Refuse values of the wrong type (e.g. "1e3" strings or floats for int options)."""
    for f in fields(config):
        value = getattr(config, f.name)
        expected = type(f.default) if f.default is not dataclasses.MISSING else None
        if expected is tuple:
            ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        elif expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = expected is None or isinstance(value, expected)
        if not ok:
            raise TrainingConfigError(
                f"option {f.name} must be of type {getattr(expected, '__name__', expected)}, "
                f"got {value!r}"
            )


def check_ranges(
    config: Any,
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    unit_interval: tuple[str, ...] = (),
) -> None:
    """Options that must be > 0, >= 0, or in (0, 1]; every float option must be finite."""
    for name in positive:
        require(name, getattr(config, name), getattr(config, name) > 0, "must be > 0")
    for name in non_negative:
        require(name, getattr(config, name), getattr(config, name) >= 0, "must be >= 0")
    for name in unit_interval:
        value = getattr(config, name)
        require(name, value, 0.0 < value <= 1.0, "must be in (0, 1]")
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float):
            require(f.name, value, math.isfinite(value), "must be finite")


def require(name: str, value: Any, ok: bool, what: str) -> None:
    """Raise `TrainingConfigError` naming the option unless `ok`."""
    if not ok:
        raise TrainingConfigError(f"option {name} {what}, got {value!r}")


def check_randomization(path: str) -> None:
    """The `randomization` option names a readable, valid randomization YAML (or is "")."""
    if not path:
        return
    from sim.randomization import RandomizationError, load_randomization

    try:
        load_randomization(path)
    except RandomizationError as e:
        raise TrainingConfigError(f"option randomization: {e}") from e
