"""The one way a config file or mapping becomes a validated dataclass.

Run: `python -c "from sim.config_loader import load_yaml_mapping as l; print(l('hardware/config/faults-example.yaml', 'emulator config'))"`

Every Twinbridge config (emulator faults, limit overrides, randomization, training options,
node parameters) is read here, so every one refuses a misspelled key with a one-line
`ConfigError` naming the key, the file and the valid keys, instead of ignoring it.
`config_from_mapping` checks scalar types (float, int, str, bool), fixed and variable-length
tuples, optional fields and nested dataclasses; range checks stay in each dataclass's
`__post_init__`. Callers may pass their own `ConfigError` subclass as `error`.
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sim.errors import ConfigError, did_you_mean, plural

T = TypeVar("T")


def load_yaml_mapping(
    path: str | Path, what: str = "config file", *, error: type[ConfigError] = ConfigError
) -> dict[str, Any]:
    """The top-level mapping of YAML file `path` ({} for an empty file); a missing file,
    bad YAML or a non-mapping is one line naming `what`, the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise error(f"{what} {path} does not exist; give the path of a YAML file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {what} {path}: {_one_line(e)}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise error(f"{what} {path} is not valid YAML: {_yaml_problem(e)}") from e
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise error(
            f"{what} {path}: the top level must be a mapping of key: value, "
            f"got a {type(data).__name__}"
        )
    return dict(data)


def check_keys(
    data: Any,
    valid: typing.Sequence[str],
    source: str,
    *,
    what: str = "key",
    error: type[ConfigError] = ConfigError,
) -> dict[str, Any]:
    """`data` as a dict whose keys are all in `valid` (None is {}); otherwise an `error`
    naming `source`, the unknown key(s) and the valid ones."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise error(f"{source}: expected a mapping with {what}s {', '.join(valid)}, got {data!r}")
    unknown = [str(key) for key in data if key not in valid]
    if unknown:
        named = ", ".join(repr(key) for key in unknown)
        many = "s" if len(unknown) > 1 else ""
        hint = "".join(did_you_mean(key, valid) for key in unknown)
        raise error(
            f"{source}: unknown {what}{many} {named}; {hint}valid {plural(what)}: "
            f"{', '.join(valid)}"
        )
    return dict(data)


def config_from_mapping(
    cls: type[T],
    data: Any,
    source: str,
    *,
    what: str = "key",
    error: type[ConfigError] = ConfigError,
) -> T:
    """An instance of dataclass `cls` from a mapping: unknown keys, wrong types and missing
    required keys are an `error` naming `source` (a file or a dotted path) and the key."""
    hints = typing.get_type_hints(cls)
    init_fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    values = check_keys(data, [f.name for f in init_fields], source, what=what, error=error)
    missing = [f.name for f in init_fields if _required(f) and f.name not in values]
    if missing:
        raise error(f"{source}: missing {what}(s) {', '.join(missing)}")
    typed = {k: _convert(hints[k], v, _child(source, k), error) for k, v in values.items()}
    return cls(**typed)


def _child(source: str, key: str) -> str:
    """Where a nested key is: `file.yaml: faults.device_to_host`, `faults.device_to_host`."""
    is_file = Path(source).suffix.lower() in (".yaml", ".yml", ".json")
    return f"{source}: {key}" if is_file else f"{source}.{key}"


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _convert(hint: Any, value: Any, where: str, error: type[ConfigError]) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, error) if len(inner) == 1 else value
    if origin is tuple:
        return _tuple(args, value, where, error)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return config_from_mapping(hint, value, where, error=error)
    return _scalar(hint, value, where, error)


def _tuple(args: tuple, value: Any, where: str, error: type[ConfigError]) -> tuple:
    if not isinstance(value, list | tuple):
        raise error(f"{where}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        items = [args[0]] * len(value)
    elif len(value) != len(args):
        raise error(f"{where}: expected a list of {len(args)} values, got {value!r}")
    else:
        items = list(args)
    pairs = enumerate(zip(items, value, strict=True))
    return tuple(_convert(h, v, f"{where}[{i}]", error) for i, (h, v) in pairs)


def _scalar(hint: Any, value: Any, where: str, error: type[ConfigError]) -> Any:
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise error(f"{where}: expected a number, got {value!r}")
        return float(value)
    checks = {int: "an integer", bool: "true or false", str: "a string"}
    if hint in checks:
        is_bool = isinstance(value, bool)
        if not isinstance(value, hint) or (hint is int and is_bool):
            raise error(f"{where}: expected {checks[hint]}, got {value!r}")
    return value


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or _one_line(e)
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _one_line(e: BaseException) -> str:
    return " ".join(str(getattr(e, "strerror", None) or e).split())
