"""The names of an operator's inputs (keys, gamepad sticks) and the check of a key map.

Run: `python -c "from hardware.teleop.inputs import NAMED_KEYS, STICKS; print(NAMED_KEYS, STICKS)"`

Key names are a lowercase letter or digit, a punctuation character, or one of `NAMED_KEYS`
(what `hardware.teleop.keyboard` decodes). A key map binds key names to commands: a signed
axis ("+x": held, the axis is at full deflection), a robot command or an event. Both the
robot's own bindings (its robot.yaml) and the user's overrides (`TeleopConfig`) are checked
here, so their errors read alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

NAMED_KEYS = (
    "up", "down", "left", "right", "space", "enter", "tab", "backspace", "escape",
)  # fmt: skip
STICKS = ("left_x", "left_y", "right_x", "right_y")


def valid_key_name(key: object) -> bool:
    """A key name the keyboard operator can produce."""
    if not isinstance(key, str):
        return False
    if key in NAMED_KEYS:
        return True
    return len(key) == 1 and key.isprintable() and not key.isspace() and key == key.lower()


def signed_axes(axes: Iterable[str]) -> set[str]:
    """The key commands that hold an axis: "+axis" and "-axis"."""
    return {f"{sign}{axis}" for axis in axes for sign in "+-"}


def key_map_problem(keys: Mapping[Any, Any], commands: set[str]) -> str:
    """What is wrong with a key map (key name -> command), or "" when nothing is."""
    bad_keys = sorted(str(k) for k in keys if not valid_key_name(k))
    if bad_keys:
        return (
            f"invalid key name(s) {bad_keys}; use a lowercase letter, digit or punctuation "
            f"character, or one of {', '.join(NAMED_KEYS)}"
        )
    bad = {k: c for k, c in keys.items() if not isinstance(c, str) or c not in commands}
    if bad:
        return f"unknown command(s) {bad}; valid: {', '.join(sorted(commands))}"
    return ""
