"""Training checkpoints: tensors in safetensors, everything else in JSON. No pickle, ever.

A checkpoint is a directory holding

- ``state.safetensors``: every tensor (networks, targets, Adam moments, normalizer sums,
  replay arrays, RNG states as uint8 tensors), and
- ``checkpoint.json``: format version, task, algorithm, the training config, integer/float
  counters, and the sha256 of the state file (written last, so a torn write is detected).

`load_checkpoint` never unpickles: the state file is parsed by safetensors (a JSON header and
raw buffers), after its sha256 has matched, and errors name the file and the field at fault.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from policies.training.errors import (
    CheckpointCorruptError,
    CheckpointMismatchError,
    CheckpointMissingError,
    TrainingConfigError,
)
from sim.files import atomic_write

_Trainer = TypeVar("_Trainer", bound="ResumableTrainer")
STATE_FILE = "state.safetensors"
META_FILE = "checkpoint.json"
FORMAT_VERSION = 1
_META_FIELDS = ("format_version", "task", "algo", "config", "counters", "state_sha256")


@dataclass
class CheckpointState:
    """Everything needed to resume a run bit-identically."""

    task: str
    algo: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    counters: dict[str, Any] = field(default_factory=dict)  # JSON scalars (steps, sizes)


def save_checkpoint(directory: Path | str, state: CheckpointState) -> Path:
    """Write `state` into `directory` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in state.tensors.items()}
    blob = save_tensors(tensors, metadata={"task": state.task, "algo": state.algo})
    atomic_write(directory / STATE_FILE, blob)
    meta = {
        "format_version": FORMAT_VERSION,
        "task": state.task,
        "algo": state.algo,
        "config": state.config,
        "counters": state.counters,
        "state_sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write(directory / META_FILE, json.dumps(meta, indent=2).encode())
    return directory


def load_checkpoint(
    directory: Path | str, *, task: str | None = None, required: tuple[str, ...] = ()
) -> CheckpointState:
    """Read a checkpoint; `task` (if given) must match; `required` tensors must be present."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointMissingError(f"checkpoint directory {directory} does not exist", directory)
    meta = _read_meta(directory / META_FILE)
    if task is not None and meta["task"] != task:
        raise CheckpointMismatchError(
            f"{directory / META_FILE}: field 'task' is {meta['task']!r}, but this run trains "
            f"{task!r}; resume from a {task} checkpoint or change --task",
            directory / META_FILE,
        )
    tensors = _read_state(directory / STATE_FILE, meta["state_sha256"])
    missing = [name for name in required if name not in tensors]
    if missing:
        raise CheckpointCorruptError(
            f"{directory / STATE_FILE}: missing tensor(s) {missing}", directory / STATE_FILE
        )
    return CheckpointState(meta["task"], meta["algo"], meta["config"], tensors, meta["counters"])


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointMissingError(f"checkpoint file {path} does not exist", path)
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointCorruptError(f"{path} is not valid JSON (truncated?): {e}", path) from e
    if not isinstance(meta, dict):
        raise CheckpointCorruptError(f"{path}: expected a JSON object", path)
    for name in _META_FIELDS:
        if name not in meta:
            raise CheckpointCorruptError(f"{path}: missing field {name!r}", path)
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"{path}: field 'format_version' is {meta['format_version']!r}; this code reads "
            f"version {FORMAT_VERSION}",
            path,
        )
    return meta


def _read_state(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointMissingError(f"checkpoint file {path} does not exist", path)
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise CheckpointCorruptError(
            f"{path}: sha256 differs from field 'state_sha256' of {META_FILE} "
            f"(truncated, replaced or from another save); not parsed",
            path,
        )
    try:
        return load_tensors(blob)
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointCorruptError(f"{path} is not a valid safetensors file: {e}", path) from e


def resumed_config(
    directory: Path, config_class: Any, resumable: tuple[str, ...], overrides: dict[str, Any]
) -> tuple[Any, CheckpointState]:
    """The config saved in the checkpoint in `directory` with `overrides` applied, and the
    checkpoint; `overrides` may change only `resumable` options (those that do not affect
    what is learned), anything else is a `TrainingConfigError` naming it."""
    locked = sorted(set(overrides) - set(resumable))
    if locked:
        raise TrainingConfigError(
            f"a resumed run may change only {', '.join(resumable)}; not {locked}"
        )
    state = load_checkpoint(directory)
    config = replace(config_class.from_dict(state.config, str(directory)), **overrides)
    return config, state


class ResumableTrainer:
    """`save`, `resume` and `close`, shared by the trainers.

    A subclass names its options dataclass (`config_class`) and the options a resumed run
    may change (`resumable`), and provides `state()`, `restore(state)` and `envs`.
    """

    config_class: Any
    resumable: tuple[str, ...]
    envs: Any

    def __init__(self, config: Any):  # the subclasses' signature, for `resume`
        raise NotImplementedError

    def state(self) -> CheckpointState:
        raise NotImplementedError

    def restore(self, state: CheckpointState) -> None:
        raise NotImplementedError

    def save(self, directory: Path) -> Path:
        """Checkpoint into `directory`."""
        return save_checkpoint(directory, self.state())

    @classmethod
    def resume(cls: type[_Trainer], directory: Path, **overrides: Any) -> _Trainer:
        """A trainer continuing the checkpoint in `directory`; `overrides` may change only
        options that do not affect learning (`resumable`)."""
        config, state = resumed_config(directory, cls.config_class, cls.resumable, overrides)
        trainer = cls(config)
        trainer.restore(state)
        return trainer

    def close(self) -> None:
        self.envs.close()


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as named tensors (hyperparameters come from the config)."""
    out: dict[str, torch.Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}{index}/{key}"] = torch.as_tensor(value).clone()
    return out


def load_optimizer_tensors(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]
) -> None:
    """Restore what `optimizer_tensors` saved under `prefix`."""
    state_dict = optimizer.state_dict()
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix):
            index, key = name[len(prefix) :].split("/")
            per_param.setdefault(int(index), {})[key] = value.clone()
    state_dict["state"] = per_param
    optimizer.load_state_dict(state_dict)
