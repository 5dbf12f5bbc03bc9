"""`export_policy`: one ONNX graph + model card per policy, torch/onnxruntime parity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from policy_fixtures import task_dims
from torch import nn

from policies.card import ModelCard, update_card_metrics
from policies.errors import ExportError, ExportParityError, PolicyGraphError
from policies.observation import flatten_observation, observation_spec
from policies.runtime import PolicyRunner
from policies.training.export import ExportConfig, export_policy
from policies.training.export.graph import LstmPolicyGraph, MlpPolicyGraph
from sim.envs import make_task_env
from sim.tasks import TASKS

TASK = "fetch-push"
OBS, ACT = task_dims(TASK)


def _normalizer(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=gen), torch.rand(n, generator=gen) + 0.05


def _mlp(n: int = OBS, a: int = ACT) -> MlpPolicyGraph:
    torch.manual_seed(0)
    actor = nn.Sequential(
        nn.Linear(n, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, a), nn.Tanh()
    )
    mean, std = _normalizer(n)
    return MlpPolicyGraph(mean, std, 5.0, actor, -torch.ones(a), torch.ones(a))


def _lstm(n: int = OBS, a: int = ACT) -> LstmPolicyGraph:
    torch.manual_seed(1)
    mean, std = _normalizer(n, 1)
    return LstmPolicyGraph(mean, std, 5.0, -torch.ones(a), torch.ones(a), 64, 32)


@pytest.fixture(scope="module")
def mlp_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlpPolicyGraph, Path, ModelCard]:
    graph, path = _mlp(), tmp_path_factory.mktemp("mlp") / "push.onnx"
    card = export_policy(
        graph,
        TASK,
        path,
        training_config={"algo": "her-sac", "lr": 1e-3},
        seed=7,
        metrics={"success_rate": 0.9},
        reproduce_command="twinbridge train --task fetch-push --seed 7",
    )
    return graph, path, card


@pytest.fixture(scope="module")
def lstm_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[LstmPolicyGraph, Path]:
    graph, path = _lstm(), tmp_path_factory.mktemp("lstm") / "push-lstm.onnx"
    export_policy(graph, TASK, path, training_config={"algo": "ppo-lstm"}, seed=1)
    return graph, path


def test_mlp_parity_over_1000_random_observations(mlp_export) -> None:
    graph, path, _ = mlp_export
    runner = PolicyRunner.load(path, expected_task=TASK)
    gen = torch.Generator().manual_seed(5)
    obs = graph.obs_mean + graph.obs_std * 3 * torch.randn(1000, OBS, generator=gen)
    with torch.no_grad():
        expected = graph(obs).numpy()
    got = np.stack([runner.act(row) for row in obs.numpy()])
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_lstm_parity_over_100_recurrent_steps(lstm_export) -> None:
    graph, path = lstm_export
    runner = PolicyRunner.load(path, expected_task=TASK)
    gen = torch.Generator().manual_seed(6)
    h, c = graph.initial_state()
    worst = 0.0
    for _ in range(100):
        obs = graph.obs_mean + graph.obs_std * 3 * torch.randn(1, OBS, generator=gen)
        with torch.no_grad():
            expected, h, c = graph(obs, h, c)
        worst = max(worst, float(np.max(np.abs(runner.act(obs.numpy()[0]) - expected.numpy()))))
    assert worst <= 1e-5


def test_card_describes_the_task_and_pins_the_file(mlp_export) -> None:
    _, path, card = mlp_export
    assert ModelCard.load(path.with_suffix(".json")) == card
    assert card.onnx_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card.task == TASK and card.gym_id == "twinbridge/FetchPush-v1" and card.env_version == 1
    assert card.actuation_model == "robot" and card.actuation["cycle_period_s"] == 0.01
    assert card.robot == "fetch" and card.control_rate_hz == pytest.approx(25.0)
    assert [f.name for f in card.observation][:2] == ["grip_pos", "object_pos"]
    assert card.observation[-1].name == "desired_goal" and card.observation_size == OBS
    assert [a.name for a in card.action] == ["dx", "dy", "dz", "gripper"]
    assert card.inputs[0].shape == (1, OBS) and card.outputs[0].shape == (1, ACT)
    assert card.recurrent == () and card.opset == 17 and card.seed == 7
    assert card.training_config["algo"] == "her-sac" and card.metrics["success_rate"] == 0.9
    assert card.compute_dtype == "float32"  # well-conditioned: the fast path holds parity
    assert 0 <= card.metrics["parity_max_abs_diff"] <= 1e-5
    assert card.reproduce_command.startswith("twinbridge train") and card.created_utc


def test_onnx_file_is_static_batch_1_opset_17_with_the_task_in_metadata(mlp_export) -> None:
    _, path, _ = mlp_export
    model = onnx.load(path)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert model.ir_version <= 10
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, OBS]
    assert {p.key: p.value for p in model.metadata_props}["twinbridge.task"] == TASK


def test_lstm_card_lists_state_inputs_and_outputs(lstm_export) -> None:
    _, path = lstm_export
    card = ModelCard.load(path.with_suffix(".json"))
    assert [t.name for t in card.inputs] == ["obs", "h_in", "c_in"]
    assert [t.name for t in card.outputs] == ["action", "h_out", "c_out"]
    assert [(r.input, r.output, r.size) for r in card.recurrent] == [
        ("h_in", "h_out", 32),
        ("c_in", "c_out", 32),
    ]


def test_update_card_metrics_merges_and_keeps_the_model_loadable(tmp_path: Path) -> None:
    path = tmp_path / "p.onnx"
    export_policy(_mlp(), TASK, path, training_config={}, seed=0, metrics={"a": 1})
    card = update_card_metrics(path.with_suffix(".json"), {"success_rate": 0.5})
    assert card.metrics["a"] == 1 and card.metrics["success_rate"] == 0.5
    PolicyRunner.load(path, expected_task=TASK)


def test_graph_computes_the_documented_formula() -> None:
    graph = _mlp()
    obs = torch.randn(4, OBS) * 10
    norm = torch.clamp((obs - graph.obs_mean) / graph.obs_std, -5.0, 5.0)
    low, high = -torch.ones(ACT), torch.ones(ACT)
    with torch.no_grad():
        expected = low + (graph.actor(norm) + 1) * (high - low) / 2
        assert torch.allclose(graph(obs), expected)


def test_lstm_from_parts_runs_a_trained_sequence_lstm_step_by_step() -> None:
    torch.manual_seed(3)
    dense, lstm, head = nn.Linear(OBS, 16), nn.LSTM(16, 8), nn.Linear(8, ACT)
    mean, std = _normalizer(OBS)
    graph = LstmPolicyGraph.from_parts(
        mean, std, 5.0, dense, lstm, head, -torch.ones(ACT), torch.ones(ACT)
    )
    obs = torch.randn(5, 1, OBS)
    with torch.no_grad():
        x = torch.relu(dense(torch.clamp((obs - mean) / std, -5, 5)))
        expected = torch.tanh(head(lstm(x)[0]))[:, 0]
        h, c = graph.initial_state()
        got = []
        for t in range(5):
            action, h, c = graph(obs[t], h, c)
            got.append(action[0])
    assert torch.allclose(torch.stack(got), expected, atol=1e-6)


def test_bad_graph_parts_are_refused() -> None:
    with pytest.raises(PolicyGraphError, match="obs_std must be > 0"):
        MlpPolicyGraph(
            torch.zeros(3), torch.zeros(3), 5.0, nn.Identity(), -torch.ones(1), torch.ones(1)
        )
    with pytest.raises(PolicyGraphError, match="one unidirectional layer"):
        LstmPolicyGraph.from_parts(
            torch.zeros(3), torch.ones(3), 5.0, nn.Linear(3, 4), nn.LSTM(4, 2, num_layers=2),
            nn.Linear(2, 1), -torch.ones(1), torch.ones(1),
        )  # fmt: skip


def test_a_graph_for_another_task_is_not_exported(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="obs_dim: graph takes 13 numbers"):
        export_policy(_mlp(13, ACT), TASK, tmp_path / "p.onnx", training_config={}, seed=0)
    wide = MlpPolicyGraph(
        torch.zeros(OBS), torch.ones(OBS), 5.0, nn.Tanh(), -2 * torch.ones(ACT), torch.ones(ACT)
    )
    with pytest.raises(ExportError, match="action bounds"):
        export_policy(wide, TASK, tmp_path / "p.onnx", training_config={}, seed=0)
    with pytest.raises(ExportError, match="training_config is not JSON"):
        export_policy(_mlp(), TASK, tmp_path / "p.onnx", training_config={"x": Path()}, seed=0)
    assert list(tmp_path.iterdir()) == []


class _ExportsSomethingElse(nn.Module):
    """An actor whose traced graph differs from its eager behaviour."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.tanh(x[:, :ACT])
        return out * 0.5 if torch.onnx.is_in_onnx_export() else out


def test_parity_failure_raises_and_writes_nothing(tmp_path: Path) -> None:
    mean, std = _normalizer(OBS)
    graph = MlpPolicyGraph(
        mean, std, 5.0, _ExportsSomethingElse(), -torch.ones(ACT), torch.ones(ACT)
    )
    config = ExportConfig(parity_samples=50)
    with pytest.raises(ExportParityError, match="parity: onnxruntime and torch differ"):
        export_policy(graph, TASK, tmp_path / "p.onnx", training_config={}, seed=0, config=config)
    assert list(tmp_path.iterdir()) == []


class _SinExp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(torch.exp(x))


def _ill_conditioned_mlp(scale: float = 10.0) -> MlpPolicyGraph:
    """sin of values in the thousands: one float32 ulp of the exp there (~1e-3) moves the
    action by as much, and torch's and onnxruntime's float32 exp differ by ulps (summation
    order alone did not separate them on every CPU: on some, both sum alike); computed in
    float64, both round to the same float32 action."""
    torch.manual_seed(0)
    actor = nn.Sequential(nn.Linear(OBS, 256), nn.Tanh(), nn.Linear(256, ACT), _SinExp())
    with torch.no_grad():
        actor[2].weight.mul_(scale)
    return MlpPolicyGraph(torch.zeros(OBS), torch.ones(OBS), 5.0, actor, -torch.ones(ACT),
                          torch.ones(ACT))  # fmt: skip


def test_ill_conditioned_policy_is_exported_computing_in_float64(tmp_path: Path) -> None:
    graph = _ill_conditioned_mlp()
    with pytest.raises(ExportParityError, match="computing in float32"):
        export_policy(graph, TASK, tmp_path / "f32.onnx", training_config={}, seed=0,
                      config=ExportConfig(compute_dtype="float32"))  # fmt: skip
    card = export_policy(graph, TASK, tmp_path / "p.onnx", training_config={}, seed=0)
    assert card.compute_dtype == "float64" and card.metrics["parity_max_abs_diff"] <= 1e-5
    runner = PolicyRunner.load(tmp_path / "p.onnx", expected_task=TASK)
    obs = torch.randn(300, OBS, generator=torch.Generator().manual_seed(3)) * 3
    with torch.no_grad():
        exact = graph.double()(obs.double()).numpy()
    got = np.stack([runner.act(row) for row in obs.numpy()])
    assert np.max(np.abs(got - exact)) <= 1e-6


def test_card_refuses_an_unknown_compute_dtype(mlp_export, tmp_path: Path) -> None:
    _, path, _ = mlp_export
    data = json.loads(path.with_suffix(".json").read_text())
    data["compute_dtype"] = "float16"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(Exception, match="compute_dtype"):
        ModelCard.load(bad)


@pytest.mark.parametrize("task", list(TASKS))
def test_observation_spec_describes_flatten_observation(task: str) -> None:
    env = make_task_env(task)
    obs, _ = env.reset(seed=0)
    flat = flatten_observation(obs)
    assert flat.dtype == np.float32
    assert flat.shape == (sum(f.size for f in observation_spec(task)),)
    assert np.array_equal(
        flat[-len(obs["desired_goal"]) :], obs["desired_goal"].astype(np.float32)
    )
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert np.array_equal(flatten_observation(batch)[1], flat)


def test_card_json_is_plain_and_round_trips(mlp_export) -> None:
    _, path, card = mlp_export
    raw = json.loads(path.with_suffix(".json").read_text())
    assert raw["onnx_file"] == "push.onnx" and raw["format_version"] == 1
    assert ModelCard.from_dict(raw) == card
