"""Typed errors of the simulation side; each message names the thing and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class TwinbridgeError(Exception):
    """Base class of every error Twinbridge raises on purpose."""


class UnknownNameError(TwinbridgeError, LookupError):
    """A robot, scene, task, joint, actuator, sensor or camera name that does not exist."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")


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
