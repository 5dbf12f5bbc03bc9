"""What every training-config dataclass shares: fields with help, checks, the --config file.

The config dataclasses (`HerSacConfig`, `PpoLstmConfig`) are the single source of truth of
their options; `TrainingOptions` and these helpers keep their behaviour and validation
messages alike: each names the option.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Self, TypeVar

from policies.training.errors import TrainingConfigError
from sim.config_loader import load_yaml_mapping
from sim.errors import UnknownNameError
from sim.tasks import get_task_spec

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


EXPORT_FROM = ("final", "best")  # export the last policy, or the best-evaluating snapshot
# Options a resumed run may change: they do not affect what is learned, except
# randomization, which a resumed run may add or change to fine-tune on randomized physics.
RESUMABLE = ("total_env_steps", "progress", "num_workers", "randomization")


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field whose help text becomes the CLI flag's --help."""
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


class TrainingOptions:
    """What every training-config dataclass shares (its fields are its own).

    `__post_init__` makes list values of tuple options tuples, checks every field's type,
    then runs the subclass's `_validate`, all before any env or network is built.
    """

    task: str
    max_episode_steps: int

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            if isinstance(f.default, tuple):
                setattr(self, f.name, tuple(getattr(self, f.name)))
        check_field_types(self)
        self._validate()

    def _validate(self) -> None:
        raise NotImplementedError

    def episode_steps(self) -> int:
        """Episode length: the option, or the task's registered limit."""
        return self.max_episode_steps or get_task_spec(self.task).max_episode_steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples become lists)."""
        values = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> Self:
        """Build from a mapping, refusing unknown keys with the list of valid ones."""
        return build_config(cls, values, source)


def check_task_and_randomization(config: Any) -> None:
    """The `randomization` file is valid and `task` is registered."""
    check_randomization(config.randomization)
    try:
        get_task_spec(config.task)
    except UnknownNameError as e:
        raise TrainingConfigError(f"option task: {e}") from e


def check_env_counts(config: Any) -> None:
    """No more workers than envs, episodes no longer than the task's limit."""
    c = config
    require("num_workers", c.num_workers, c.num_workers <= c.num_envs, "must be <= num_envs")
    limit = get_task_spec(c.task).max_episode_steps
    require("max_episode_steps", c.max_episode_steps, c.max_episode_steps <= limit,
            f"must be <= the task's limit {limit}")  # fmt: skip


def check_widths(name: str, widths: tuple[int, ...]) -> None:
    """Hidden-layer widths: one or more, all positive."""
    ok = len(widths) > 0 and min(widths) > 0
    require(name, widths, ok, "must be one or more positive widths")


def load_config_file(path: Path) -> dict[str, Any]:
    """Option values from a JSON or YAML file; not yet validated."""
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        return load_yaml_mapping(path, "config file", error=TrainingConfigError)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TrainingConfigError(f"cannot read config file {path}: {e}") from e
    values = _parse(text, Path(path))
    if not isinstance(values, dict):
        raise TrainingConfigError(f"{path}: expected a mapping of option: value at top level")
    return values


def _parse(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TrainingConfigError(f"{path} is not valid JSON: {e}") from e
