"""Export a policy graph to one ONNX file plus its JSON model card, parity-checked.

Run: `python -c "from policies.export import export_policy; help(export_policy)"`
(the trainers call `export_policy` at the end of training).

Exporter: torch's TorchScript-based exporter (`dynamo=False`) at opset 17. Measured with
torch 2.13 / onnxscript 0.7.2 on an MLP + LSTM-cell policy: it takes ~0.05 s, writes IR 8
and opset 17 natively, and onnxruntime 1.31 loads the result. The dynamo exporter takes
~2.3 s (torch.export + onnxscript), implements opset >= 18 only, and its down-conversion
to 17 produced a `Split` node onnxruntime rejects as an invalid graph; at opset 18 it works.
When torch removes the TorchScript exporter, set `ExportConfig(dynamo=True, opset=18)`.

Precision: the graph's inputs and outputs are float32; inside, it computes in float32 when
that already meets the parity bound, else in float64 (`compute_dtype="auto"`, recorded on the
card). Why: two correct float32 implementations sum in different orders, so they differ by
about eps * sum|w x|. Measured on the HER-TD3 fetch-push actor (256x256, unregularized
weights): torch float32 is itself 1.7e-5 from float64 and 2.8e-5 from onnxruntime float32,
while torch batch-of-1000 vs row-by-row differs by 2e-5, so no float32 export of that network
can promise 1e-5. In float64 both sides agree to float32 rounding (measured 0.0) at 25 us per
call instead of 10 us (torch float32: ~45 us). The Dactyl LSTM stays float32 when it can: in
float64 it takes 1.8 ms per step instead of 0.16 ms.

Shapes are static with batch 1 (what a controller runs, and what `PolicyRunner` demands:
it refuses dynamic dims, whose sizes onnxruntime would not check). Files are written
atomically and only after parity holds: onnxruntime vs torch max abs difference <=
`parity_atol` on `parity_samples` random observations and over `parity_recurrent_steps`
steps of carried recurrent state.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from policies.card import (
    ACTION_OUTPUT,
    COMPUTE_DTYPES,
    OBS_INPUT,
    TASK_METADATA_KEY,
    ModelCard,
    RecurrentState,
    TensorSpec,
)
from policies.errors import ExportError, ExportParityError
from policies.graph import PolicyGraphBase
from policies.observation import TaskInfo, task_info

RECURRENT_NAMES = (("h_in", "h_out"), ("c_in", "c_out"))  # LSTM hidden, cell


@dataclass(frozen=True)
class ExportConfig:
    """How a policy is exported and how hard its parity is checked."""

    opset: int = 17
    dynamo: bool = False  # torch.export-based exporter; needs opset >= 18
    parity_atol: float = 1e-5
    parity_samples: int = 1000
    parity_recurrent_steps: int = 100
    parity_seed: int = 0
    # Random observations are mean + spread * std * N(0, 1): around the data the policy saw,
    # wide enough that some entries hit the normalizer's clip.
    parity_spread_std: float = 3.0
    # "float32", "float64", or "auto": float32 if it meets `parity_atol`, else float64.
    compute_dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.compute_dtype not in ("auto", *COMPUTE_DTYPES):
            raise ExportError(
                f"ExportConfig.compute_dtype {self.compute_dtype!r}: use auto, "
                + ", ".join(COMPUTE_DTYPES)
            )
        if self.opset < 17 or (self.dynamo and self.opset < 18):
            raise ExportError(f"ExportConfig.opset {self.opset}: use 17 (18+ with dynamo)")
        if self.parity_atol <= 0 or self.parity_samples < 1 or self.parity_recurrent_steps < 1:
            raise ExportError("ExportConfig: parity tolerance and counts must be positive")


def export_policy(
    graph: PolicyGraphBase,
    task: str,
    path: Path,
    *,
    training_config: dict[str, Any],
    seed: int,
    metrics: dict[str, Any] | None = None,
    reproduce_command: str = "",
    config: ExportConfig | None = None,
) -> ModelCard:
    """Write `path` (.onnx) and `path.with_suffix('.json')` (its card); return the card.

    `graph` is an `MlpPolicyGraph` or `LstmPolicyGraph` (anything with `obs_dim`,
    `action_dim`, `recurrent_size`, `action_low`, `action_high`) for task `task`.
    Raises `ExportError` if it does not fit the task, `ExportParityError` if onnxruntime
    disagrees with torch; nothing is written then.
    """
    config = config or ExportConfig()
    path = Path(path)
    if path.suffix != ".onnx":
        raise ExportError(f"{path}: path must end in .onnx")
    _check_json("training_config", training_config)
    _check_json("metrics", metrics or {})
    info = task_info(task)
    _check_fits_task(graph, info, path)
    graph = graph.eval()
    model_bytes, compute_dtype, worst = _export_within_parity(graph, task, config, path)
    metrics = {**(metrics or {}), "parity_max_abs_diff": worst}
    card = _card(graph, info, path, model_bytes, config, training_config, seed, metrics)
    card = dataclasses.replace(
        card, reproduce_command=reproduce_command, compute_dtype=compute_dtype
    )
    _write_atomic(path, model_bytes)
    card.save(path.with_suffix(".json"))
    return card


def update_card_metrics(card_path: Path, metrics: dict[str, Any]) -> ModelCard:
    """Merge evaluation `metrics` into an existing card (the ONNX file is untouched)."""
    _check_json("metrics", metrics)
    card = ModelCard.load(card_path)
    card = dataclasses.replace(card, metrics={**card.metrics, **metrics})
    card.save(Path(card_path))
    return card


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_json(name: str, value: Any) -> None:
    """Card fields must survive a JSON round trip (no tensors, paths or NaN)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ExportError(f"{name} is not JSON-serializable (plain numbers/strings): {e}") from e


def _check_fits_task(graph: PolicyGraphBase, info: TaskInfo, path: Path) -> None:
    """Observation width, action width and action bounds are the task's."""
    obs_width = sum(f.size for f in info.observation)
    if graph.obs_dim != obs_width:
        raise ExportError(
            f"{path}: obs_dim: graph takes {graph.obs_dim} numbers, task {info.task} "
            f"observes {obs_width} ({', '.join(f.name for f in info.observation)})"
        )
    low = np.array([a.low for a in info.action], dtype=np.float32)
    high = np.array([a.high for a in info.action], dtype=np.float32)
    graph_low = graph.action_low.detach().cpu().numpy()
    graph_high = graph.action_high.detach().cpu().numpy()
    if graph_low.shape != low.shape or not (
        np.allclose(graph_low, low) and np.allclose(graph_high, high)
    ):
        raise ExportError(
            f"{path}: action bounds: graph scales to [{graph_low}, {graph_high}], task "
            f"{info.task}'s action space is [{low}, {high}]"
        )


class Float64Compute(nn.Module):
    """`graph` computed in float64 between float32 inputs and outputs (same interface)."""

    def __init__(self, graph: PolicyGraphBase):
        super().__init__()
        self.graph = copy.deepcopy(graph).double().eval()

    def forward(self, obs: torch.Tensor, *state: torch.Tensor) -> Any:
        out = self.graph(obs.double(), *(s.double() for s in state))
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


def _export_within_parity(
    graph: PolicyGraphBase, task: str, config: ExportConfig, path: Path
) -> tuple[bytes, str, float]:
    """ONNX bytes, the compute dtype used and its parity; the first dtype within bound wins."""
    dtypes = COMPUTE_DTYPES if config.compute_dtype == "auto" else (config.compute_dtype,)
    tried = []
    for dtype in dtypes:
        module: nn.Module = graph if dtype == "float32" else Float64Compute(graph)
        model_bytes = _to_onnx(module, graph, task, config)
        worst = _parity(module, graph, model_bytes, config)
        if worst <= config.parity_atol:  # False for NaN
            return model_bytes, dtype, worst
        tried.append(f"{worst:.3g} computing in {dtype}")
    raise ExportParityError(
        f"{path}: parity: onnxruntime and torch differ by {' and '.join(tried)}, more than "
        f"{config.parity_atol:g}; nothing was written"
    )


def _example_inputs(graph: PolicyGraphBase) -> tuple[torch.Tensor, ...]:
    obs = graph.obs_mean.detach().reshape(1, -1).clone()
    states = [torch.zeros(1, graph.recurrent_size) for _ in _recurrent_names(graph)]
    return (obs, *states)


def _recurrent_names(graph: PolicyGraphBase) -> tuple[tuple[str, str], ...]:
    return RECURRENT_NAMES if graph.recurrent_size else ()


def _to_onnx(module: nn.Module, graph: PolicyGraphBase, task: str, config: ExportConfig) -> bytes:
    """Serialized ONNX of `module` (`graph` or a wrapper of it) with static shapes and the
    task in its metadata."""
    names = _recurrent_names(graph)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        file = Path(tmp) / "policy.onnx"
        torch.onnx.export(
            module,
            _example_inputs(graph),
            file,
            input_names=[OBS_INPUT, *(i for i, _ in names)],
            output_names=[ACTION_OUTPUT, *(o for _, o in names)],
            opset_version=config.opset,
            dynamo=config.dynamo,
            external_data=False,
        )
        model = onnx.load_model(file)
    onnx.helper.set_model_props(model, {TASK_METADATA_KEY: task})
    model.producer_name = "twinbridge"
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the exported graph fails the ONNX checker: {e}") from e
    return model.SerializeToString()


def _session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _random_observations(graph: PolicyGraphBase, count: int, config: ExportConfig) -> np.ndarray:
    rng = np.random.default_rng(config.parity_seed)
    mean = graph.obs_mean.detach().cpu().numpy()
    std = graph.obs_std.detach().cpu().numpy()
    noise = rng.standard_normal((count, mean.shape[0])) * config.parity_spread_std
    return (mean + std * noise).astype(np.float32)


def _parity(
    module: nn.Module, graph: PolicyGraphBase, model_bytes: bytes, config: ExportConfig
) -> float:
    """Max abs difference between onnxruntime running `model_bytes` and torch's `module`."""
    session = _session(model_bytes)
    if graph.recurrent_size:
        return _recurrent_parity(module, graph, session, config)
    return _feedforward_parity(module, graph, session, config)


def _feedforward_parity(
    module: nn.Module, graph: PolicyGraphBase, session: Any, config: ExportConfig
) -> float:
    obs = _random_observations(graph, config.parity_samples, config)
    with torch.no_grad():
        expected = module(torch.from_numpy(obs)).numpy()
    got = np.concatenate([session.run(None, {OBS_INPUT: row[None]})[0] for row in obs])
    return float(np.max(np.abs(got - expected)))


def _recurrent_parity(
    module: nn.Module, graph: PolicyGraphBase, session: Any, config: ExportConfig
) -> float:
    """Both sides carry their own state for `parity_recurrent_steps` steps, then the
    single-step check runs on the remaining random observations from zero state."""
    steps = max(config.parity_samples, config.parity_recurrent_steps)
    obs = _random_observations(graph, steps, config)
    (h_name, _), (c_name, _) = RECURRENT_NAMES
    h_t, c_t = _zero_state(graph)
    h_o, c_o = h_t.numpy(), c_t.numpy()
    worst = 0.0
    for i, row in enumerate(obs):
        if i == config.parity_recurrent_steps:  # from here: independent steps
            h_t, c_t = _zero_state(graph)
            h_o, c_o = h_t.numpy(), c_t.numpy()
        with torch.no_grad():
            expected = module(torch.from_numpy(row[None]), h_t, c_t)
        got = session.run(None, {OBS_INPUT: row[None], h_name: h_o, c_name: c_o})
        worst = max(
            [worst, *(_max_diff(g, e.numpy()) for g, e in zip(got, expected, strict=True))]
        )
        if i < config.parity_recurrent_steps:
            (_, h_t, c_t), (_, h_o, c_o) = expected, got
    return worst


def _zero_state(graph: PolicyGraphBase) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(1, graph.recurrent_size), torch.zeros(1, graph.recurrent_size)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)))


def _card(
    graph: PolicyGraphBase,
    info: TaskInfo,
    path: Path,
    model_bytes: bytes,
    config: ExportConfig,
    training_config: dict[str, Any],
    seed: int,
    metrics: dict[str, Any] | None,
) -> ModelCard:
    size = graph.recurrent_size
    recurrent = tuple(RecurrentState(i, o, size) for i, o in _recurrent_names(graph))
    return ModelCard(
        task=info.task,
        gym_id=info.gym_id,
        env_version=info.env_version,
        robot=info.robot,
        control_rate_hz=info.control_rate_hz,
        observation=info.observation,
        action=info.action,
        inputs=(
            TensorSpec(OBS_INPUT, (1, graph.obs_dim)),
            *(TensorSpec(r.input, (1, size)) for r in recurrent),
        ),
        outputs=(
            TensorSpec(ACTION_OUTPUT, (1, graph.action_dim)),
            *(TensorSpec(r.output, (1, size)) for r in recurrent),
        ),
        recurrent=recurrent,
        opset=config.opset,
        onnx_file=path.name,
        onnx_sha256=sha256_bytes(model_bytes),
        training_config=dict(training_config),
        seed=int(seed),
        metrics=dict(metrics or {}),
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
