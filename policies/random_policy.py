"""A uniform random policy for any registered task: an ONNX graph and its model card.

Run: `twinbridge sim --task fetch-reach --policy random --episodes 2 --fast`

A robot's ROS graph runs before anyone has trained a policy for it: `--policy random`
writes this graph (onnx RandomUniform, seeded; the observation input `obs` is ignored)
beside its card, and the nodes load it through the same checks as a trained policy
(`PolicyRunner`: card, sha256, graph, observation layout), so no node knows the difference.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from onnx import TensorProto, helper

from policies.card import RANDOM_POLICY, ModelCard, TensorSpec
from policies.observation import task_info

OPSET = 17
IR_VERSION = 8


def write_random_policy(task: str, folder: Path, seed: int = 0) -> Path:
    """Write `<task>-random.onnx` and its card into `folder`; returns the .onnx path."""
    info = task_info(task)
    observation = sum(f.size for f in info.observation)
    data = _graph(observation, len(info.action), seed).SerializeToString()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}-random.onnx"
    path.write_bytes(data)
    card = ModelCard(
        **info.card_fields(),
        inputs=(TensorSpec("obs", (1, observation)),),
        outputs=(TensorSpec("action", (1, len(info.action))),),
        recurrent=(),
        opset=OPSET,
        onnx_file=path.name,
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        training_config={"algo": RANDOM_POLICY},
        seed=seed,
        reproduce_command=f"twinbridge sim --task {task} --policy {RANDOM_POLICY} --seed {seed}",
    )
    card.save(path.with_suffix(".json"))
    return path


def _graph(observation: int, actions: int, seed: int):  # -> onnx.ModelProto
    """action = U(-1, 1) of shape [1, actions], a new draw per run from a seeded stream."""
    node = helper.make_node(
        "RandomUniform", [], ["action"], dtype=TensorProto.FLOAT, shape=[1, actions],
        low=-1.0, high=1.0, seed=float(seed),
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "random_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, observation])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, actions])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
