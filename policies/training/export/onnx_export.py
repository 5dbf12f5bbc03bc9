"""Export a policy graph to one ONNX file plus its JSON model card, parity-checked.

Run: `python -c "from policies.training.export import export_policy; help(export_policy)"`
(`twinbridge train --export` calls it through `export_trained_policy`).

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
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from policies.card import (
    ACTION_OUTPUT,
    COMPUTE_DTYPES,
    OBS_INPUT,
    RECURRENT_NAMES,
    TASK_METADATA_KEY,
    ModelCard,
    RecurrentState,
    TensorSpec,
    check_json,
    onnx_sha256,
)
from policies.errors import ExportError, ExportParityError
from policies.observation import TaskInfo, task_info
from policies.training.export.config import ExportConfig
from policies.training.export.graph import PolicyGraphBase
from policies.training.export.parity import max_parity_error
from sim.files import atomic_write


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
    check_json("training_config", training_config)
    check_json("metrics", metrics or {})
    info = task_info(task)
    _check_fits_task(graph, info, path)
    graph = graph.eval()
    model_bytes, compute_dtype, worst = _export_within_parity(graph, task, config, path)
    metrics = {**(metrics or {}), "parity_max_abs_diff": worst}
    card = _card(graph, info, path, model_bytes, config, training_config, seed, metrics)
    card = dataclasses.replace(
        card, reproduce_command=reproduce_command, compute_dtype=compute_dtype
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, model_bytes)
    card.save(path.with_suffix(".json"))
    return card


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
        worst = max_parity_error(module, graph, model_bytes, config)
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
        **info.card_fields(),
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
        onnx_sha256=onnx_sha256(model_bytes),
        training_config=dict(training_config),
        randomization=_randomization(training_config),
        seed=int(seed),
        metrics=dict(metrics or {}),
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _randomization(training_config: dict[str, Any]) -> dict[str, Any]:
    """The randomization a policy was trained with, as its YAML form ({} for none)."""
    path = training_config.get("randomization") or ""
    if not path:
        return {}
    from sim.randomization import load_randomization

    return {"file": str(path), **load_randomization(path).to_dict()}
