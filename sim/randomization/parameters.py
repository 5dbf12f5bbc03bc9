"""Named randomization parameters: what a path like `physics.friction:scale` means.

A parameter is one scalar the randomizers read each episode. Its spec says where it sits
(nominal: the calibrated value, at which the twin is exactly the unrandomized twin), which
values are physically legal (a friction scale of 0 or a negative latency is not), and the
step ADR moves its bounds by. Paths are `<family>.<quantity>:<unit>`, the unit saying how the
value acts (`scale` multiplies the nominal model value; `std`, `steps`, `rad`... are
absolute).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sim.errors import ConfigError

FAMILIES = ("physics", "actuation", "action", "sensor", "observation", "visual")


class RandomizationError(ConfigError):
    """A randomization config or sampled value that must not reach the model; the message
    names the parameter path, the value and the legal range."""


@dataclass(frozen=True)
class Parameter:
    """One randomizable scalar, addressed by `path`.

    `legal_low`/`legal_high` bound every range and every sampled value (inclusive);
    `adr_step` is the default ADR delta (0.02 of the parameter's scale, as published);
    `integer` parameters are rounded to the nearest whole number when applied.
    """

    path: str
    nominal: float
    legal_low: float
    legal_high: float
    adr_step: float
    description: str
    integer: bool = False

    def __post_init__(self) -> None:
        family = self.path.split(".", 1)[0]
        if family not in FAMILIES or ":" not in self.path:
            raise RandomizationError(
                f"parameter path {self.path!r} must look like '<family>.<quantity>:<unit>' "
                f"with family one of {', '.join(FAMILIES)}"
            )
        if not self.legal_low <= self.nominal <= self.legal_high:
            raise RandomizationError(
                f"{self.path}: nominal {self.nominal} outside its legal range "
                f"[{self.legal_low}, {self.legal_high}]"
            )
        if not (math.isfinite(self.adr_step) and self.adr_step > 0):
            raise RandomizationError(f"{self.path}: adr_step must be > 0, got {self.adr_step}")

    @property
    def family(self) -> str:
        return self.path.split(".", 1)[0]

    def check_value(self, value: float, what: str = "value") -> float:
        """`value` as a float if finite and legal, else an error naming path and range."""
        value = float(value)
        if not (math.isfinite(value) and self.legal_low <= value <= self.legal_high):
            raise RandomizationError(
                f"{self.path}: {what} {value} is outside the legal range "
                f"[{self.legal_low}, {self.legal_high}] ({self.description})"
            )
        return value

    def check_range(self, low: float, high: float) -> tuple[float, float]:
        """A legal (low, high) range that contains no value outside the parameter's bounds."""
        low = self.check_value(low, "range low")
        high = self.check_value(high, "range high")
        if low > high:
            raise RandomizationError(f"{self.path}: range [{low}, {high}] has low > high")
        return low, high

    def applied(self, value: float) -> float:
        """The value a randomizer acts on: rounded for integer parameters."""
        return float(round(value)) if self.integer else float(value)


def by_path(parameters: Iterable[Parameter], what: str = "parameter") -> dict[str, Parameter]:
    """`parameters` keyed by path; a path listed twice is an error naming it."""
    indexed: dict[str, Parameter] = {}
    for parameter in parameters:
        if parameter.path in indexed:
            raise RandomizationError(f"{what} {parameter.path!r} is listed twice")
        indexed[parameter.path] = parameter
    return indexed
