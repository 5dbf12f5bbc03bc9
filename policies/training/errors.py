"""Typed errors of the training side; each message names the option, file or field to fix."""

from __future__ import annotations

from sim.errors import ConfigError, TwinbridgeError


class TrainingConfigError(ConfigError):
    """A training option that is unknown, of the wrong type or out of range (checked before
    any compute starts)."""


class CheckpointError(TwinbridgeError):
    """Base class of checkpoint problems; `path` is the offending file."""

    def __init__(self, message: str, path: object = None):
        super().__init__(message)
        self.path = path


class CheckpointMissingError(CheckpointError, FileNotFoundError):
    """The checkpoint directory or one of its files does not exist."""


class CheckpointCorruptError(CheckpointError, ValueError):
    """A checkpoint file is truncated, not safetensors/JSON, or lacks a required field."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """A valid checkpoint that belongs to another task, algorithm or format version."""
