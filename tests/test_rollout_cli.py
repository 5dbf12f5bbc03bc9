"""`twinbridge rollout` end to end: the installed command, JSON summary, MP4, ONNX policies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from policies.errors import PolicyLoadError, PolicyOutputError
from policies.onnx_policy import OnnxPolicy
from sim.rollout import RolloutConfig, rollout
from sim.tasks import make_task_env

TWINBRIDGE = shutil.which("twinbridge") or str(Path(sys.executable).parent / "twinbridge")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWINBRIDGE, *args], capture_output=True, text=True, timeout=300)


def test_rollout_prints_the_documented_json_summary() -> None:
    done = run_cli("rollout", "--task", "fetch-reach", "--episodes", "2", "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"task", "episodes", "success_rate", "mean_return", "steps_per_s"} <= set(summary)
    assert summary["task"] == "fetch-reach" and summary["episodes"] == 2
    assert 0.0 <= summary["success_rate"] <= 1.0
    assert -50.0 <= summary["mean_return"] <= 0.0
    assert summary["steps_per_s"] > 50


def test_rollout_is_reproducible_under_a_seed() -> None:
    config = RolloutConfig(task="fetch-push", episodes=2, seed=11, progress=False)
    first, second = rollout(config), rollout(config)
    assert first.mean_return == second.mean_return
    assert first.per_episode_success == second.per_episode_success


def test_rollout_writes_a_watchable_mp4(tmp_path: Path) -> None:
    import imageio.v3 as iio

    video = tmp_path / "reach.mp4"
    config = RolloutConfig(
        task="fetch-reach", episodes=1, video=video, video_size_px=128, progress=False
    )
    rollout(config)
    frames = iio.imread(video)
    assert frames.shape == (50, 128, 128, 3)
    assert frames.std() > 5.0
    assert not np.array_equal(frames[0], frames[-1])  # the arm moved


def test_unknown_task_exits_2_and_lists_valid_tasks() -> None:
    done = run_cli("rollout", "--task", "fetch-fly", "--episodes", "1")
    assert done.returncode == 2
    assert "unknown task 'fetch-fly'" in done.stderr and "fetch-push" in done.stderr


def test_unknown_policy_lists_the_valid_ones() -> None:
    done = run_cli("rollout", "--task", "fetch-reach", "--episodes", "1", "--policy", "smart")
    assert done.returncode == 2 and "random" in done.stderr and ".onnx" in done.stderr


def _linear_policy(path: Path, inputs: int, outputs: int, scale: float = 0.1) -> Path:
    """A tanh(x W) policy; scale=0 with a Div node makes it emit NaN (0/0)."""
    weights = helper.make_tensor(
        "W", TensorProto.FLOAT, [inputs, outputs], np.full(inputs * outputs, scale).tolist()
    )
    nodes = [
        helper.make_node("MatMul", ["obs", "W"], ["z"]),
        helper.make_node("Tanh", ["z"], ["t"]),
    ]
    if scale == 0.0:
        nodes.append(helper.make_node("Div", ["t", "t"], ["action"]))
    else:
        nodes[-1] = helper.make_node("Tanh", ["z"], ["action"])
    graph = helper.make_graph(
        nodes,
        "policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, inputs])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, outputs])],
        initializer=[weights],
    )
    # IR 9 / opset 17: what torch's exporter writes, and what onnxruntime reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, path)
    return path


def test_onnx_policy_runs_in_rollout(tmp_path: Path) -> None:
    env = make_task_env("fetch-reach")
    dims = (
        env.observation_space["observation"].shape[0]
        + env.observation_space["desired_goal"].shape[0]
    )
    path = _linear_policy(tmp_path / "reach.onnx", dims, env.action_space.shape[0])
    done = run_cli(
        "rollout", "--task", "fetch-reach", "--episodes", "1", "--policy", str(path), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["episodes"] == 1


def test_onnx_policy_of_the_wrong_shape_is_refused_at_load(tmp_path: Path) -> None:
    env = make_task_env("fetch-push")
    path = _linear_policy(tmp_path / "wrong.onnx", 13, 4)
    with pytest.raises(PolicyLoadError, match=r"needs tensor\(float\) \[1, 28\]"):
        OnnxPolicy(path, env.observation_space, env.action_space)


def test_garbage_or_missing_onnx_file_is_refused(tmp_path: Path) -> None:
    env = make_task_env("fetch-push")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a model")
    with pytest.raises(PolicyLoadError, match="not a loadable ONNX model"):
        OnnxPolicy(garbage, env.observation_space, env.action_space)
    with pytest.raises(PolicyLoadError, match="does not exist"):
        OnnxPolicy(tmp_path / "missing.onnx", env.observation_space, env.action_space)


def test_nan_action_raises_instead_of_reaching_the_env(tmp_path: Path) -> None:
    env = make_task_env("fetch-push")
    path = _linear_policy(tmp_path / "nan.onnx", 28, 4, scale=0.0)
    policy = OnnxPolicy(path, env.observation_space, env.action_space)
    obs, _ = env.reset(seed=0)
    with pytest.raises(PolicyOutputError, match="finite"):
        policy(obs)
