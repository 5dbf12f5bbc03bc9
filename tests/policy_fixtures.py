"""Hand-built ONNX policies with matching model cards, for runtime and rollout tests (no torch)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from policies.card import ModelCard, TensorSpec
from policies.observation import task_info


def linear_model(
    inputs: int,
    outputs: int,
    *,
    scale: float = 0.1,
    nan: bool = False,
    input_name: str = "obs",
    input_shape: list[Any] | None = None,
    dtype: int = TensorProto.FLOAT,
    opset: int = 17,
    ir_version: int = 8,
) -> onnx.ModelProto:
    """action = tanh(obs W); with `nan`, tanh(...) / 0 via a Div node (0/0 and x/0)."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    weights = helper.make_tensor(
        "W", dtype, [inputs, outputs], np.full(inputs * outputs, scale, dtype=np_dtype).tolist()
    )
    zero = helper.make_tensor("zero", dtype, [1], [0.0])
    nodes = [helper.make_node("MatMul", [input_name, "W"], ["z"])]
    if nan:
        nodes += [
            helper.make_node("Tanh", ["z"], ["t"]),
            helper.make_node("Div", ["t", "zero"], ["action"]),
        ]
    else:
        nodes.append(helper.make_node("Tanh", ["z"], ["action"]))
    shape = input_shape if input_shape is not None else [1, inputs]
    graph = helper.make_graph(
        nodes,
        "policy",
        [helper.make_tensor_value_info(input_name, dtype, shape)],
        [helper.make_tensor_value_info("action", dtype, [shape[0], outputs])],
        initializer=[weights, zero],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version
    )


def task_card(task: str, onnx_file: str, data: bytes, **overrides: Any) -> ModelCard:
    """A card for a feed-forward policy of `task` describing exactly `data`."""
    info = task_info(task)
    obs_width = sum(f.size for f in info.observation)
    card = ModelCard(
        **info.card_fields(),
        inputs=(TensorSpec("obs", (1, obs_width)),),
        outputs=(TensorSpec("action", (1, len(info.action))),),
        recurrent=(),
        opset=17,
        onnx_file=onnx_file,
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        training_config={"algo": "hand-built"},
        seed=0,
    )
    return dataclasses.replace(card, **overrides)


def write_policy(
    path: Path, model: onnx.ModelProto | bytes, task: str, **card_overrides: Any
) -> Path:
    """Save `model` (a proto or raw bytes) at `path` and a card that matches its bytes."""
    data = model if isinstance(model, bytes) else model.SerializeToString()
    path.write_bytes(data)
    task_card(task, path.name, data, **card_overrides).save(path.with_suffix(".json"))
    return path


def task_dims(task: str) -> tuple[int, int]:
    """(flat observation width, action width) of a task."""
    info = task_info(task)
    return sum(f.size for f in info.observation), len(info.action)
