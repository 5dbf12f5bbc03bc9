"""Run an exported policy with onnxruntime only (importing this never imports torch).

Run: `twinbridge rollout --task fetch-push --policy policies/zoo/fetch-push.onnx --episodes 5`

`PolicyRunner.load` refuses, with a typed `PolicyLoadError` naming the file and field,
anything but the exact graph its card describes, before an inference session exists:

1. card: bounded-size JSON, every field validated, task (and env version) as expected;
2. file: a regular file, inside the model directory after resolving symlinks, bounded size,
   read once (the bytes hashed are the bytes run: no check-then-reopen race);
3. sha256 of those bytes equals the card's `onnx_sha256` (truncated or swapped files);
4. protobuf parses; IR version and opset within what this runtime supports; only the
   default ONNX domain (no custom ops); no external data anywhere (a deployable policy is
   one file, so `location: ../../etc/passwd` or a symlinked weight file is never opened);
5. `onnx.checker.check_model(full_check=True)`;
6. graph inputs/outputs equal the card's names, static shapes and dtypes, in order
   (dynamic dims are refused: onnxruntime would not check their size).

Each `act` then checks the observation (shape, castable dtype, finite after the float32
cast) and the outputs (shape, finite, within the card's action bounds) in the same step,
raising `PolicyInputError` / `PolicyOutputError`; recurrent state is carried between
steps and zeroed by `reset()` at each episode start.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.checker
import onnxruntime as ort
from onnx import TensorProto

from policies.card import NAMED_POLICIES, TASK_METADATA_KEY, ModelCard, TensorSpec, onnx_sha256
from policies.errors import (
    EXPORTED_POLICY,
    WHOLE_FILE,
    ModelCardError,
    ModelContractError,
    ModelFileError,
    ModelIntegrityError,
    PolicyInputError,
    PolicyOutputError,
    TaskMismatchError,
)
from sim.errors import did_you_mean

_ONNX_DTYPES = {TensorProto.FLOAT: "float32"}


@dataclass(frozen=True)
class RuntimeLimits:
    """What `PolicyRunner.load` accepts; bounds load time and the formats it trusts.

    IR <= 10 and opset 13..21 are what onnxruntime 1.31 runs and this runtime is tested
    with (the exporter writes IR 8, opset 17).
    """

    max_model_bytes: int = 256 << 20
    max_ir_version: int = 10
    min_opset: int = 13
    max_opset: int = 21
    intra_op_threads: int = 1  # batch-1 control: threads cost more than they save
    action_tolerance: float = 1e-5  # slack on the card's action bounds (float32 rounding)

    def __post_init__(self) -> None:
        if self.max_model_bytes < 1 or self.intra_op_threads < 1:
            raise ValueError("RuntimeLimits: max_model_bytes and intra_op_threads must be >= 1")
        if not 1 <= self.min_opset <= self.max_opset:
            raise ValueError("RuntimeLimits: need 1 <= min_opset <= max_opset")


class PolicyRunner:
    """One loaded, checked policy; `act` per control step, `reset` per episode."""

    def __init__(
        self, session: ort.InferenceSession, card: ModelCard, path: Path, limits: RuntimeLimits
    ):
        """Use `PolicyRunner.load`; this trusts that the session matches the card."""
        self.card, self.path, self._session = card, path, session
        self._obs = np.zeros(card.inputs[0].shape, dtype=np.float32)
        self._state_shapes = {r.input: (1, r.size) for r in card.recurrent}
        self._state_out = {r.output: r.input for r in card.recurrent}
        self._feed: dict[str, np.ndarray] = {}
        low = np.array([a.low for a in card.action], dtype=np.float64)
        high = np.array([a.high for a in card.action], dtype=np.float64)
        slack = limits.action_tolerance * np.maximum(1.0, high - low)
        self._low, self._high = low - slack, high + slack
        self.reset()

    @classmethod
    def load(
        cls,
        onnx_path: Path | str,
        card_path: Path | str | None = None,
        expected_task: str | None = None,
        limits: RuntimeLimits | None = None,
    ) -> PolicyRunner:
        """Check `onnx_path` against its card and open it.

        The card (default: the sibling .json) must sit in the model's directory: nothing
        outside that directory is opened. `expected_task` also checks env id and layout.
        """
        limits = limits or RuntimeLimits()
        path = Path(onnx_path)
        card_file = Path(card_path) if card_path is not None else path.with_suffix(".json")
        _check_files_exist(path, card_file)
        _check_inside_model_dir(card_file, path.parent, ModelCardError)
        card = ModelCard.load(card_file)
        if expected_task is not None:
            _check_task(card, card_file, expected_task, path)
        if card.onnx_file != path.name:
            raise ModelCardError(card_file, "onnx_file", f"describes {card.onnx_file}, not {path}")
        data = _read_model(path, limits)
        _check_sha256(data, card, path)
        model = _parse(data, path)
        _check_model(model, card, path, limits)
        return cls(_open_session(data, path, limits), card, path, limits)

    @property
    def observation_size(self) -> int:
        return self.card.observation_size

    @property
    def action_size(self) -> int:
        return self.card.action_size

    def reset(self) -> None:
        """Zero the recurrent state: call at the start of every episode."""
        self._feed = {
            name: np.zeros(shape, np.float32) for name, shape in self._state_shapes.items()
        }

    def act(self, observation: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
        """The action (float64, env units) for one observation dict or flat vector.

        Raises `PolicyInputError` for a bad observation and `PolicyOutputError` for a bad
        action; the recurrent state only advances when the step succeeds.
        """
        self._load_observation(observation)
        outputs = self._session.run(None, {self.card.inputs[0].name: self._obs, **self._feed})
        action = self._checked_action(outputs[0])
        states = dict(zip((o.name for o in self.card.outputs[1:]), outputs[1:], strict=True))
        for name, value in states.items():
            if (
                value.shape != self._state_shapes[self._state_out[name]]
                or not np.isfinite(value).all()
            ):
                raise PolicyOutputError(f"{self.path}: {name}: mis-shaped or non-finite state")
        self._feed = {self._state_out[name]: value for name, value in states.items()}
        return action

    __call__ = act

    def _load_observation(self, observation: Mapping[str, np.ndarray] | np.ndarray) -> None:
        """Flatten, check shape and dtype, cast into the input buffer, check finiteness."""
        if isinstance(observation, Mapping):
            observation = self._flatten(observation)
        flat = np.asarray(observation)
        if flat.dtype.kind not in "fiu":
            raise PolicyInputError(
                f"{self.path}: {self.card.inputs[0].name}: dtype {flat.dtype} is not numeric"
            )
        if flat.shape not in ((self.observation_size,), self._obs.shape):
            raise PolicyInputError(
                f"{self.path}: {self.card.inputs[0].name}: shape {flat.shape}, expected "
                f"({self.observation_size},) laid out as {[f.name for f in self.card.observation]}"
            )
        self._obs[0] = flat.reshape(-1)
        if not np.isfinite(self._obs).all():  # after the cast: float32 overflow counts too
            bad = np.flatnonzero(~np.isfinite(self._obs[0]))
            raise PolicyInputError(
                f"{self.path}: {self.card.inputs[0].name}: non-finite values at {bad.tolist()} "
                "(as float32); the policy was not evaluated"
            )

    def _flatten(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
        try:
            parts = (observation["observation"], observation["desired_goal"])
            return np.concatenate([np.asarray(p).reshape(-1) for p in parts])
        except KeyError as e:
            raise PolicyInputError(f"{self.path}: observation dict lacks key {e}") from e

    def _checked_action(self, raw: np.ndarray) -> np.ndarray:
        name = self.card.outputs[0].name
        action = np.asarray(raw, dtype=np.float64).reshape(-1)
        if action.shape != (self.action_size,):
            raise PolicyOutputError(
                f"{self.path}: {name}: shape {action.shape}, expected ({self.action_size},)"
            )
        if not np.isfinite(action).all():
            raise PolicyOutputError(
                f"{self.path}: {name}: non-finite action {action}; not applied"
            )
        if (action < self._low).any() or (action > self._high).any():
            raise PolicyOutputError(f"{self.path}: {name}: {action} outside the card's bounds")
        return action


# -- load-time checks ---------------------------------------------------------------------------
def _check_files_exist(path: Path, card_file: Path) -> None:
    """A missing model or card is the common user error: name the file given, what is
    missing, and what to give instead."""
    if not path.exists():
        near = [str(path.parent / p.name) for p in path.parent.glob("*.onnx")]
        hint = did_you_mean(path, [*NAMED_POLICIES, *near])
        raise ModelFileError(path, WHOLE_FILE, f"does not exist; {hint}{EXPORTED_POLICY}")
    if not card_file.exists():
        raise ModelCardError(
            path, WHOLE_FILE, f"its model card {card_file.name} is missing beside it (a policy "
            f"is the .onnx and its .json card); {EXPORTED_POLICY}",
        )  # fmt: skip


def _check_inside_model_dir(path: Path, model_dir: Path, error: type) -> Path:
    """Refuse a file whose real location (symlinks resolved) is outside the model dir."""
    try:
        real, real_dir = path.resolve(strict=True), model_dir.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise error(path, WHOLE_FILE, f"does not exist or cannot be resolved: {e}") from e
    if real.parent != real_dir:
        raise error(
            path, WHOLE_FILE, f"resolves to {real}, outside the model directory {real_dir}"
        )
    return real


def _check_task(card: ModelCard, card_file: Path, expected_task: str, path: Path) -> None:
    """Same task, same env id and version, same observation layout as this code base's."""
    from policies.observation import observation_spec
    from sim.tasks import get_task_spec

    if card.task != expected_task:
        raise TaskMismatchError(
            path, WHOLE_FILE, f"trained for task {card.task!r} (its "
            f"card {card_file.name}), not {expected_task!r}; give a policy of {expected_task}",
        )  # fmt: skip
    gym_id = get_task_spec(expected_task).gym_id
    if card.gym_id != gym_id:
        raise TaskMismatchError(card_file, "gym_id", f"{card.gym_id!r}, this code runs {gym_id!r}")
    if tuple(observation_spec(expected_task)) != card.observation:
        raise TaskMismatchError(
            card_file, "observation", f"layout differs from {expected_task}'s current one"
        )


def _read_model(path: Path, limits: RuntimeLimits) -> bytes:
    """The model bytes, read once from a regular file inside its own directory."""
    real = _check_inside_model_dir(path, path.parent, ModelFileError)
    try:  # the resolved path, not following a symlink swapped in since the check
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ModelFileError(path, WHOLE_FILE, "not a regular file")
            if info.st_size > limits.max_model_bytes:
                raise ModelFileError(
                    path, WHOLE_FILE, f"{info.st_size} bytes > limit {limits.max_model_bytes}"
                )
            return f.read(limits.max_model_bytes + 1)
    except OSError as e:
        raise ModelFileError(path, WHOLE_FILE, f"cannot read: {e}") from e


def _check_sha256(data: bytes, card: ModelCard, path: Path) -> None:
    digest = onnx_sha256(data)
    if digest != card.onnx_sha256:
        raise ModelIntegrityError(
            path,
            "onnx_sha256",
            f"file hashes to {digest}, card says {card.onnx_sha256}: the file is truncated, "
            "corrupted or not the model the card describes",
        )


def _parse(data: bytes, path: Path) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelIntegrityError(path, "<protobuf>", f"not an ONNX model: {e}") from e
    return model


def _check_model(
    model: onnx.ModelProto, card: ModelCard, path: Path, limits: RuntimeLimits
) -> None:
    _check_versions(model, card, path, limits)
    _check_no_external_data(model, path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # ValidationError, shape-inference errors
        raise ModelIntegrityError(path, "onnx.checker", str(e).splitlines()[0][:500]) from e
    _check_io(list(model.graph.input), card.inputs, "inputs", path)
    _check_io(list(model.graph.output), card.outputs, "outputs", path)
    task = {p.key: p.value for p in model.metadata_props}.get(TASK_METADATA_KEY)
    if task is not None and task != card.task:
        raise ModelContractError(
            path, f"metadata {TASK_METADATA_KEY}", f"{task!r} != card task {card.task!r}"
        )


def _check_versions(
    model: onnx.ModelProto, card: ModelCard, path: Path, limits: RuntimeLimits
) -> None:
    if not 3 <= model.ir_version <= limits.max_ir_version:
        raise ModelIntegrityError(
            path,
            "ir_version",
            f"{model.ir_version}; this runtime reads 3..{limits.max_ir_version}",
        )
    domains = {o.domain: o.version for o in model.opset_import}
    if set(domains) - {"", "ai.onnx"}:
        raise ModelIntegrityError(
            path, "opset_import", f"custom op domains {sorted(domains)} refused"
        )
    opset = domains.get("", domains.get("ai.onnx", 0))
    if not limits.min_opset <= opset <= limits.max_opset:
        raise ModelIntegrityError(
            path, "opset", f"{opset}; this runtime runs {limits.min_opset}..{limits.max_opset}"
        )
    if opset != card.opset:
        raise ModelContractError(path, "opset", f"graph has {opset}, card says {card.opset}")


def _check_no_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Refuse any tensor stored outside the file (CVE-2022-25882, -2024-27318, -2025-51480)."""
    for where, tensor in _all_tensors(model.graph, "graph"):
        if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
            location = {e.key: e.value for e in tensor.external_data}.get("location", "?")
            raise ModelIntegrityError(
                path,
                "external_data",
                f"{where} {tensor.name!r} points at {location!r}; deployable policies must be "
                "one self-contained file (re-export without external data)",
            )


def _all_tensors(graph: onnx.GraphProto, where: str) -> Any:
    """Every TensorProto in a graph: initializers, attributes and nested subgraphs."""
    for tensor in graph.initializer:
        yield f"{where}.initializer", tensor
    for sparse in graph.sparse_initializer:
        yield f"{where}.sparse_initializer", sparse.values
        yield f"{where}.sparse_initializer", sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            at = f"{where}.node[{node.name or node.op_type}].{attr.name}"
            if attr.HasField("t"):
                yield at, attr.t
            yield from ((at, t) for t in attr.tensors)
            if attr.HasField("g"):
                yield from _all_tensors(attr.g, at)
            for sub in attr.graphs:
                yield from _all_tensors(sub, at)


def _check_io(values: list, specs: tuple[TensorSpec, ...], kind: str, path: Path) -> None:
    """Names, order, static shapes and dtypes exactly as the card says."""
    names = [v.name for v in values]
    if names != [s.name for s in specs]:
        raise ModelContractError(
            path, kind, f"graph has {names}, card says {[s.name for s in specs]}"
        )
    for i, (value, spec) in enumerate(zip(values, specs, strict=True)):
        field = f"{kind}[{i}] {spec.name!r}"
        tensor = value.type.tensor_type
        dtype = _ONNX_DTYPES.get(tensor.elem_type, TensorProto.DataType.Name(tensor.elem_type))
        if dtype != spec.dtype:
            raise ModelContractError(
                path, f"{field}.dtype", f"graph has {dtype}, card says {spec.dtype}"
            )
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim
        ]
        if not tensor.HasField("shape") or any(not isinstance(d, int) or d < 1 for d in dims):
            raise ModelContractError(
                path, f"{field}.shape", f"dynamic or unknown dims {dims} refused"
            )
        if tuple(dims) != spec.shape:
            raise ModelContractError(
                path, f"{field}.shape", f"graph has {dims}, card says {list(spec.shape)}"
            )


def _open_session(data: bytes, path: Path, limits: RuntimeLimits) -> ort.InferenceSession:
    """The session, from the bytes already checked (not from the path: no second read)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = limits.intra_op_threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelIntegrityError(path, "onnxruntime", f"refused the model: {e}") from e
