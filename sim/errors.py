"""Typed errors of the simulation side; each message names the thing and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TwinbridgeError(Exception):
    """Base class of every error Twinbridge raises on purpose."""


def did_you_mean(name: object, valid: Iterable[object]) -> str:
    """`did you mean 'x'? ` for the valid name closest to a mistyped `name`, or "": the one
    spelling suggestion of every message (tasks, robots, cameras, config keys, sections)."""
    names = [str(v) for v in valid]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    extended = [v for v in names if str(name) and v.startswith(str(name))]  # "ppo", "hand-egg"
    close = close or (extended if len(extended) == 1 else [])
    return f"did you mean {close[0]!r}? " if close else ""


def plural(noun: str) -> str:
    """`policy` -> `policies`, `task` -> `tasks` (the last word of `noun`)."""
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


class UnknownNameError(TwinbridgeError, LookupError):
    """A robot, scene, task, joint, actuator, sensor or camera name that does not exist.

    The message names the value, the closest valid names and all valid ones; `alternative`
    is another way to say what is wanted (e.g. "or the path of a policy .onnx")."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], alternative: str = ""):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        also = f", {alternative}" if alternative else ""
        super().__init__(
            f"unknown {kind} {name!r}; {did_you_mean(name, self.valid)}"
            f"valid {plural(kind)}: {', '.join(self.valid)}{also}"
        )


class ModelCompileError(TwinbridgeError):
    """MJCF or MjSpec edits that MuJoCo refuses to compile."""


class ConfigError(TwinbridgeError, ValueError):
    """A configuration value out of its legal range; the message names the field and value."""


class ControlError(TwinbridgeError, ValueError):
    """A control or action that must not reach the simulator (wrong shape, non-finite)."""


class StateError(TwinbridgeError, ValueError):
    """A physics state vector that does not belong to this model."""


class PhysicsError(TwinbridgeError, RuntimeError):
    """The simulation diverged (MuJoCo warning or non-finite state)."""


class RenderError(TwinbridgeError, RuntimeError):
    """Offscreen rendering is unavailable or was asked for something impossible."""
