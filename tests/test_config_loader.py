"""The one config loader: a misspelled key, a wrong type or a bad file is one line naming it.

Run: `.venv/bin/python -m pytest -q tests/test_config_loader.py`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.config_loader import config_from_mapping, load_yaml_mapping
from sim.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    rate: float = 0.0
    name: str = "a"


@dataclass(frozen=True)
class Outer:
    count: int
    inner: Inner = field(default_factory=Inner)
    pairs: tuple[Inner, ...] = ()
    window: tuple[float, float] = (0.0, 1.0)
    optional: Inner | None = None


def test_nested_values_are_converted() -> None:
    data = {"count": 2, "inner": {"rate": 1}, "pairs": [{"name": "b"}], "window": [1, 2]}
    built = config_from_mapping(Outer, data, "x")
    assert built == Outer(2, Inner(1.0), (Inner(name="b"),), (1.0, 2.0))
    assert isinstance(built.inner.rate, float) and built.optional is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"count": 1, "inner": {"rat": 1.0}},
            r"x.inner: unknown key 'rat'; did you mean 'rate'\? valid keys: rate, name",
        ),
        ({"count": 1, "cout": 2}, r"x: unknown key 'cout'"),
        ({"count": True}, r"x.count: expected an integer, got True"),
        ({"count": 1, "window": [1.0]}, r"x.window: expected a list of 2 values"),
        ({"count": 1, "optional": {"rate": "fast"}}, r"x.optional.rate: expected a number"),
        ({}, r"x: missing key\(s\) count"),
        ([1, 2], r"x: expected a mapping"),
    ],
)
def test_bad_mappings_name_the_key_and_the_valid_ones(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(Outer, data, "x")


def test_a_file_source_is_named_before_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("count: 1\ninner: {rate: 1, nme: b}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: inner: unknown key 'nme'"):
        config_from_mapping(Outer, load_yaml_mapping(path), str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"settings .*missing\.yaml does not exist"),
        ("a: [1\n", r"settings .*c\.yaml is not valid YAML: .* at line 2, column 1$"),
        ("- 1\n- 2\n", r"top level must be a mapping of key: value, got a list"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path: Path, text, message: str) -> None:
    path = tmp_path / ("missing.yaml" if text is None else "c.yaml")
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_yaml_mapping(path, "settings")
    assert "\n" not in str(error.value)


def test_an_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text("")
    assert load_yaml_mapping(tmp_path / "e.yaml") == {}
