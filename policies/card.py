"""The JSON model card beside every exported policy: what the graph expects and where it came from.

Torch-free (robots read cards). `ModelCard.load` validates every field and raises
`ModelCardError` naming the file and the field; `ModelCard.save` writes atomically. The
graph's tensor names, the digest `onnx_sha256` pins and the later merge of evaluation
metrics live here too, so the exporter (torch) and the runtime (no torch) share them.

Run: `python -c "from policies.card import ModelCard; print(ModelCard.load('policy.json'))"`
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.errors import WHOLE_FILE, ExportError, ModelCardError
from sim.errors import TwinbridgeError
from sim.files import atomic_write

CARD_FORMAT_VERSION = 1
OBS_INPUT = "obs"  # the policy input: flatten_observation(obs), float32 [1, n]
ACTION_OUTPUT = "action"  # the policy output, env action units, float32 [1, a]
RECURRENT_NAMES = (("h_in", "h_out"), ("c_in", "c_out"))  # LSTM hidden, cell: input, output
TASK_METADATA_KEY = "twinbridge.task"  # ONNX metadata_props entry naming the task
DTYPES = ("float32",)  # the only tensor dtype a card may declare
COMPUTE_DTYPES = ("float32", "float64")  # what the graph may compute in between them
MAX_CARD_BYTES = 1 << 20
# A policy given by name instead of a file (no card): sim.scripted's Fetch controller.
SCRIPTED_POLICY = "scripted"
# ... and a graph of random actions written for the task (policies/random_policy.py).
RANDOM_POLICY = "random"
NAMED_POLICIES = (RANDOM_POLICY, SCRIPTED_POLICY)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _FieldError(TwinbridgeError, ValueError):
    """A card field with an invalid value; `ModelCard.load` adds the file name."""

    def __init__(self, field_name: str, detail: str):
        self.field, self.detail = field_name, detail
        super().__init__(f"{field_name}: {detail}")


@dataclass(frozen=True)
class FieldSpec:
    """One named slice of the flat observation, in order: `size` numbers in `unit`."""

    name: str
    size: int
    unit: str

    def __post_init__(self) -> None:
        _require(bool(self.name), "name", "must be a non-empty string")
        _require(self.size >= 1, "size", f"must be >= 1, got {self.size}")


@dataclass(frozen=True)
class ActionField:
    """One action component: the graph emits values in [low, high]; `unit` says what 1.0 means."""

    name: str
    unit: str
    low: float
    high: float

    def __post_init__(self) -> None:
        _require(bool(self.name), "name", "must be a non-empty string")
        finite = math.isfinite(self.low) and math.isfinite(self.high)
        _require(finite and self.low < self.high, "low", f"needs low < high, finite: {self}")


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: name, static shape (no dynamic dims) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _require(bool(self.name), "name", "must be a non-empty string")
        _require(
            all(type(d) is int and d >= 1 for d in self.shape),
            "shape",
            f"must be static positive dims, got {self.shape}",
        )
        _require(self.dtype in DTYPES, "dtype", f"must be one of {DTYPES}, got {self.dtype!r}")


@dataclass(frozen=True)
class RecurrentState:
    """A recurrent state carried between steps: fed as `input`, read back from `output`."""

    input: str
    output: str
    size: int

    def __post_init__(self) -> None:
        _require(self.size >= 1, "size", f"must be >= 1, got {self.size}")


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to run, check and reproduce one exported policy.

    Inputs are `[obs, *recurrent inputs]` and outputs `[action, *recurrent outputs]`, each
    with batch dimension 1; observation fields sum to the obs width and action fields match
    the action width. `onnx_sha256` pins the exact graph bytes the card describes.
    """

    task: str
    gym_id: str
    env_version: int
    robot: str
    control_rate_hz: float
    observation: tuple[FieldSpec, ...]
    action: tuple[ActionField, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    recurrent: tuple[RecurrentState, ...]
    opset: int
    onnx_file: str
    onnx_sha256: str
    training_config: dict[str, Any]
    seed: int
    metrics: dict[str, Any] = field(default_factory=dict)
    reproduce_command: str = ""
    created_utc: str = ""
    compute_dtype: str = "float32"  # arithmetic inside the graph (I/O is float32 always)
    # The command path it was trained with (sim.actuation.ActuationConfig fields); a card
    # without one (older policies) was trained with the ideal servos (`ideal_actuation`).
    actuation: dict[str, Any] = field(default_factory=dict)
    randomization: dict[str, Any] = field(default_factory=dict)  # its training's YAML form
    format_version: int = CARD_FORMAT_VERSION

    def __post_init__(self) -> None:
        _require(
            self.format_version == CARD_FORMAT_VERSION,
            "format_version",
            f"this runtime reads version {CARD_FORMAT_VERSION}, got {self.format_version}",
        )
        _require(self.control_rate_hz > 0, "control_rate_hz", "must be > 0")
        _require(bool(_SHA256.fullmatch(self.onnx_sha256)), "onnx_sha256", "must be 64 hex")
        _require(
            Path(self.onnx_file).name == self.onnx_file and self.onnx_file.endswith(".onnx"),
            "onnx_file",
            f"must be a bare *.onnx file name beside the card, got {self.onnx_file!r}",
        )
        _require(self.opset >= 1, "opset", f"must be >= 1, got {self.opset}")
        _require(
            self.compute_dtype in COMPUTE_DTYPES,
            "compute_dtype",
            f"must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}",
        )
        self._check_io()

    def _check_io(self) -> None:
        """Input/output lists agree with the observation, action and recurrent specs."""
        obs_width = sum(f.size for f in self.observation)
        want_in = (OBS_INPUT, *(r.input for r in self.recurrent))
        want_out = (ACTION_OUTPUT, *(r.output for r in self.recurrent))
        _require(_names(self.inputs) == want_in, "inputs", f"names must be {want_in}")
        _require(_names(self.outputs) == want_out, "outputs", f"names must be {want_out}")
        obs_shape, action_shape = (1, obs_width), (1, len(self.action))
        _require(self.inputs[0].shape == obs_shape, "inputs[0].shape", f"must be {obs_shape}")
        _require(
            self.outputs[0].shape == action_shape, "outputs[0].shape", f"must be {action_shape}"
        )
        for i, state in enumerate(self.recurrent, start=1):
            shape = (1, state.size)
            ok = self.inputs[i].shape == shape and self.outputs[i].shape == shape
            _require(ok, f"recurrent[{i - 1}]", f"{state.input}/{state.output} must be {shape}")

    @property
    def actuation_model(self) -> str:
        """ "robot" when trained on the robot's command path, else "ideal" (also for a card
        from before cards recorded it: those policies were trained on ideal servos)."""
        return str(self.actuation.get("model", "ideal"))

    @property
    def observation_size(self) -> int:
        """Width of the flat observation the graph takes."""
        return self.inputs[0].shape[1]

    @property
    def action_size(self) -> int:
        """Width of the action the graph emits."""
        return self.outputs[0].shape[1]

    def to_json(self) -> str:
        """The card as indented JSON (tuples become lists)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        """Write the card atomically (a reader never sees half a card)."""
        atomic_write(Path(path), self.to_json().encode())

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """Read and validate a card; every problem is a `ModelCardError` naming the field."""
        path = Path(path)
        data = _read_json(path)
        try:
            return cls.from_dict(data)
        except _FieldError as e:
            raise ModelCardError(path, e.field, e.detail) from e

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """Build from parsed JSON, checking keys and types first (raises `_FieldError`)."""
        if not isinstance(data, dict):
            raise _FieldError(WHOLE_FILE, f"must be a JSON object, got {type(data).__name__}")
        _check_keys(data, _FIELD_TYPES, "")
        kwargs = {k: _convert(k, v) for k, v in data.items()}
        return cls(**kwargs)


def onnx_sha256(data: bytes) -> str:
    """The digest a card's `onnx_sha256` pins: sha256 of the ONNX file's bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def check_json(name: str, value: Any) -> None:
    """Card fields must survive a JSON round trip (no tensors, paths or NaN)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ExportError(f"{name} is not JSON-serializable (plain numbers/strings): {e}") from e


def update_card_metrics(card_path: Path, metrics: dict[str, Any]) -> ModelCard:
    """Merge evaluation `metrics` into an existing card (the ONNX file is untouched)."""
    check_json("metrics", metrics)
    card = ModelCard.load(card_path)
    card = dataclasses.replace(card, metrics={**card.metrics, **metrics})
    card.save(Path(card_path))
    return card


def _read_json(path: Path) -> Any:
    """Parse a bounded-size JSON file; a missing or garbled card is a `ModelCardError`."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CARD_BYTES + 1)
    except OSError as e:
        raise ModelCardError(path, WHOLE_FILE, f"cannot read the model card: {e}") from e
    if len(raw) > MAX_CARD_BYTES:
        raise ModelCardError(path, WHOLE_FILE, f"larger than {MAX_CARD_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelCardError(path, WHOLE_FILE, f"not valid UTF-8 JSON: {e}") from e


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "task": str,
    "gym_id": str,
    "env_version": int,
    "robot": str,
    "control_rate_hz": (int, float),
    "observation": list,
    "action": list,
    "inputs": list,
    "outputs": list,
    "recurrent": list,
    "opset": int,
    "onnx_file": str,
    "onnx_sha256": str,
    "training_config": dict,
    "seed": int,
    "metrics": dict,
    "reproduce_command": str,
    "created_utc": str,
    "compute_dtype": str,
    "actuation": dict,
    "randomization": dict,
}
_OPTIONAL = frozenset(
    {"metrics", "reproduce_command", "created_utc", "compute_dtype", "actuation", "randomization"}
)
_ITEM_TYPES: dict[str, type] = {
    "observation": FieldSpec,
    "action": ActionField,
    "inputs": TensorSpec,
    "outputs": TensorSpec,
    "recurrent": RecurrentState,
}


def _check_keys(data: dict, types: dict[str, Any], prefix: str, optional=_OPTIONAL) -> None:
    """Unknown keys, missing keys and wrong JSON types, each named by its full path."""
    for key in data:
        if key not in types:
            raise _FieldError(f"{prefix}{key}", f"unknown field; known: {sorted(types)}")
    for key, kind in types.items():
        if key not in data:
            if key in optional:
                continue
            raise _FieldError(f"{prefix}{key}", "missing")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise _FieldError(f"{prefix}{key}", f"must be {_type_name(kind)}, got {value!r}")


def _convert(key: str, value: Any) -> Any:
    """JSON lists of objects become tuples of the spec dataclasses."""
    item_type = _ITEM_TYPES.get(key)
    if item_type is None:
        return float(value) if key == "control_rate_hz" else value
    return tuple(_item(item_type, f"{key}[{i}]", v) for i, v in enumerate(value))


def _item(item_type: type, where: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise _FieldError(where, f"must be a JSON object, got {value!r}")
    types = {f.name: _ITEM_FIELD_TYPES[str(f.type)] for f in dataclasses.fields(item_type)}
    optional = frozenset({"dtype"}) if item_type is TensorSpec else frozenset()
    _check_keys(value, types, f"{where}.", optional)
    try:
        return item_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    except _FieldError as e:
        raise _FieldError(f"{where}.{e.field}", e.detail) from e


_ITEM_FIELD_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "tuple[int, ...]": list,
}


def _require(ok: bool, field_name: str, detail: str) -> None:
    if not ok:
        raise _FieldError(field_name, detail)


def _names(specs: tuple[TensorSpec, ...]) -> tuple[str, ...]:
    return tuple(s.name for s in specs)


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "a string", "int": "an integer", "float": "a number"}
    return " or ".join(names.get(k.__name__, f"a JSON {k.__name__}") for k in kinds)
