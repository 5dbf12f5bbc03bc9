"""The YAML file that says what to randomize: fixed ranges, and/or ADR-controlled parameters.

```yaml
parameters:                      # fixed ranges, each value drawn uniformly every episode
  physics.friction:scale: [0.7, 1.5]
  observation.noise:std: [0.0, 0.005]
adr:                             # Automatic Domain Randomization (Akkaya et al. 2019)
  buffer_size: 240               # m: performances per bound before it moves
  boundary_probability: 0.5      # p_b
  low_threshold: 0.4             # t_L: shrink a bound at or below this mean performance
  high_threshold: 0.8            # t_H: grow a bound at or above it
  parameters:                    # path: ADR step (delta); bounds start at nominal
    physics.object_mass:scale: 0.02
```
Every path, range and step is checked against the parameter's spec before anything runs;
errors name the file, the path and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config_loader import check_keys, load_yaml_mapping
from sim.randomization.adr import AdrSettings
from sim.randomization.parameters import RandomizationError
from sim.randomization.registry import get_parameter

_TOP_KEYS = ("parameters", "adr")


@dataclass(frozen=True)
class RandomizationConfig:
    """Fixed ranges by path, plus optional ADR settings and the ADR parameters' steps."""

    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    adr: AdrSettings | None = None
    adr_steps: dict[str, float] = field(default_factory=dict)
    source: str = "<config>"

    def __post_init__(self) -> None:
        try:
            for path, (low, high) in self.ranges.items():
                get_parameter(path).check_range(low, high)
            for path in self.adr_steps:
                get_parameter(path)
        except RandomizationError as e:
            raise RandomizationError(f"{self.source}: {e}") from e
        for path, step in self.adr_steps.items():
            if not (isinstance(step, int | float) and 0 < step < float("inf")):
                raise RandomizationError(f"{self.source}: adr step of {path} must be > 0, "
                                         f"got {step!r}")  # fmt: skip
        both = sorted(set(self.ranges) & set(self.adr_steps))
        if both:
            raise RandomizationError(
                f"{self.source}: {', '.join(both)} both fixed and ADR-controlled; "
                "list each parameter under `parameters` or under `adr.parameters`, not both"
            )
        if self.adr_steps and self.adr is None:
            raise RandomizationError(f"{self.source}: ADR parameters without ADR settings")

    @property
    def paths(self) -> tuple[str, ...]:
        """Every randomized path, fixed ones first."""
        return (*self.ranges, *self.adr_steps)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (for checkpoints and model cards)."""
        out: dict[str, Any] = {"parameters": {p: list(r) for p, r in self.ranges.items()}}
        if self.adr is not None:
            settings = {k: getattr(self.adr, k) for k in self.adr.__dataclass_fields__}
            out["adr"] = {**settings, "parameters": dict(self.adr_steps)}
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "<config>") -> RandomizationConfig:
        """Validate a parsed YAML mapping; errors name `source` and the offending key."""
        values = check_keys(values, _TOP_KEYS, source, error=RandomizationError)
        ranges = {
            str(path): _range(source, path, value)
            for path, value in (values.get("parameters") or {}).items()
        }
        adr_values = dict(values.get("adr") or {})
        steps = {str(p): s for p, s in (adr_values.pop("parameters", None) or {}).items()}
        adr = AdrSettings.from_dict(adr_values, source) if "adr" in values else None
        return cls(ranges=ranges, adr=adr, adr_steps=steps, source=source)


def _range(source: str, path: str, value: Any) -> tuple[float, float]:
    ok = isinstance(value, list | tuple) and len(value) == 2
    if not ok or not all(isinstance(v, int | float) for v in value):
        raise RandomizationError(
            f"{source}: {path} must be a range [low, high] of two numbers, got {value!r}"
        )
    return float(value[0]), float(value[1])


def load_randomization(path: str | Path) -> RandomizationConfig:
    """Read and validate a randomization YAML (or JSON) file."""
    values = load_yaml_mapping(path, "randomization file", error=RandomizationError)
    return RandomizationConfig.from_dict(values, str(path))
