"""`PolicyRunner` (R18, R19): hostile models refused at load, every step's I/O checked.

R18, R19: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from policy_fixtures import linear_model, task_card, task_dims, write_policy

from policies.card import ModelCard
from policies.errors import (
    WHOLE_FILE,
    ModelCardError,
    ModelContractError,
    ModelFileError,
    ModelIntegrityError,
    PolicyInputError,
    PolicyLoadError,
    PolicyOutputError,
    TaskMismatchError,
)
from policies.observation import observation_spec
from policies.runtime import PolicyRunner, RuntimeLimits
from policies.training.export import ExportConfig, export_policy
from policies.training.export.graph import LstmPolicyGraph
from sim.envs import make_task_env

TASK = "fetch-push"
OBS, ACT = task_dims(TASK)

# -- an audit hook that records every file Python opens while it is armed -------------------------
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed; this one is inert unless armed


@contextmanager
def opened_files() -> Iterator[list[str]]:
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


# -- the R18 corpus: each case builds files in a fresh model dir and names the expected error -----
def _valid(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT), TASK)


def _truncated(d: Path) -> Path:
    path = _valid(d)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _truncated_with_matching_card(d: Path) -> Path:
    data = linear_model(OBS, ACT).SerializeToString()
    return write_policy(d / "p.onnx", data[: len(data) // 2], TASK)


def _random_bytes(d: Path) -> Path:
    return write_policy(d / "p.onnx", np.random.default_rng(0).bytes(4096), TASK)


def _future_opset(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT, opset=99), TASK, opset=99)


def _future_ir(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT, ir_version=14), TASK)


def _wrong_input_name(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT, input_name="observation"), TASK)


def _wrong_dtype(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT, dtype=TensorProto.DOUBLE), TASK)


def _wrong_shape(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS - 1, ACT), TASK)


def _dynamic_dims(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT, input_shape=["batch", OBS]), TASK)


def _external(location: str) -> onnx.ModelProto:
    model = linear_model(OBS, ACT)
    weights = model.graph.initializer[0]
    weights.ClearField("float_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(OBS * ACT * 4))):
        weights.external_data.add(key=key, value=value)
    return model


def _external_passwd(d: Path) -> Path:
    return write_policy(d / "p.onnx", _external("../../etc/passwd"), TASK)


def _symlinked_weights(d: Path) -> Path:
    outside = d.parent / f"{d.name}-outside.bin"
    outside.write_bytes(np.zeros(OBS * ACT, np.float32).tobytes())
    (d / "weights.bin").symlink_to(outside)
    return write_policy(d / "p.onnx", _external("weights.bin"), TASK)


def _symlinked_model(d: Path) -> Path:
    outside = d.parent / f"{d.name}-outside"
    outside.mkdir()
    target = _valid(outside)
    (d / "p.json").write_text(target.with_suffix(".json").read_text())
    (d / "p.onnx").symlink_to(target)
    return d / "p.onnx"


def _sha_mismatch(d: Path) -> Path:
    path = _valid(d)
    path.write_bytes(linear_model(OBS, ACT, scale=0.2).SerializeToString())
    return path


def _custom_domain(d: Path) -> Path:
    model = linear_model(OBS, ACT)
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    return write_policy(d / "p.onnx", model, TASK)


def _checker_failure(d: Path) -> Path:
    model = linear_model(OBS, ACT)
    model.graph.node[0].input[1] = "no_such_tensor"
    return write_policy(d / "p.onnx", model, TASK)


def _card_opset_disagrees(d: Path) -> Path:
    return write_policy(d / "p.onnx", linear_model(OBS, ACT), TASK, opset=18)


def _card_garbage(d: Path) -> Path:
    path = _valid(d)
    path.with_suffix(".json").write_bytes(b"{not json")
    return path


def _card_edit(**changes: object) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        path = _valid(d)
        card = json.loads(path.with_suffix(".json").read_text())
        card.update(changes)
        card = {k: v for k, v in card.items() if v is not None}
        path.with_suffix(".json").write_text(json.dumps(card))
        return path

    return build


def _wrong_task(d: Path) -> Path:
    obs, act = task_dims("fetch-reach")
    return write_policy(d / "p.onnx", linear_model(obs, act), "fetch-reach")


def _missing(d: Path) -> Path:
    path = _valid(d)
    path.unlink()
    return path


CORPUS: dict[str, tuple[Callable[[Path], Path], type[PolicyLoadError], str]] = {
    "missing file": (_missing, ModelFileError, WHOLE_FILE),
    "truncated file": (_truncated, ModelIntegrityError, "onnx_sha256"),
    "truncated, card rehashed": (_truncated_with_matching_card, ModelIntegrityError, ""),
    "random bytes": (_random_bytes, ModelIntegrityError, ""),
    "future opset": (_future_opset, ModelIntegrityError, "opset"),
    "future IR version": (_future_ir, ModelIntegrityError, "ir_version"),
    "wrong input name": (_wrong_input_name, ModelContractError, "inputs"),
    "wrong input dtype": (_wrong_dtype, ModelContractError, "inputs[0] 'obs'.dtype"),
    "wrong input shape": (_wrong_shape, ModelContractError, "inputs[0] 'obs'.shape"),
    "dynamic dims": (_dynamic_dims, ModelContractError, "inputs[0] 'obs'.shape"),
    "external data ../../etc/passwd": (_external_passwd, ModelIntegrityError, "external_data"),
    "symlinked weight file": (_symlinked_weights, ModelIntegrityError, "external_data"),
    "symlinked model file": (_symlinked_model, ModelFileError, WHOLE_FILE),
    "sha256 mismatch": (_sha_mismatch, ModelIntegrityError, "onnx_sha256"),
    "custom op domain": (_custom_domain, ModelIntegrityError, "opset_import"),
    "checker failure": (_checker_failure, ModelIntegrityError, "onnx.checker"),
    "card opset disagrees": (_card_opset_disagrees, ModelContractError, "opset"),
    "card not JSON": (_card_garbage, ModelCardError, WHOLE_FILE),
    "card field missing": (_card_edit(onnx_sha256=None), ModelCardError, "onnx_sha256"),
    "card unknown field": (_card_edit(extra=1), ModelCardError, "extra"),
    "card wrong type": (_card_edit(seed="0"), ModelCardError, "seed"),
    "card bad shape": (
        _card_edit(inputs=[{"name": "obs", "shape": [1, -1], "dtype": "float32"}]),
        ModelCardError,
        "inputs[0].shape",
    ),
    "card names another file": (_card_edit(onnx_file="q.onnx"), ModelCardError, "onnx_file"),
    "wrong task": (_wrong_task, TaskMismatchError, WHOLE_FILE),
}


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """Import lazily-loaded modules before the audit: only model-driven opens should show."""
    observation_spec(TASK)
    make_task_env(TASK)


@pytest.mark.parametrize("case", list(CORPUS))
def test_hostile_model_is_refused_at_load_without_opening_outside_files(
    case: str, tmp_path: Path
) -> None:
    build, error, field = CORPUS[case]
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path = build(model_dir)
    start = time.perf_counter()
    with opened_files() as opened, pytest.raises(error) as raised:
        PolicyRunner.load(path, expected_task=TASK)
    assert time.perf_counter() - start < 10.0
    assert raised.value.field.startswith(field), raised.value
    assert raised.value.path.name in {"p.onnx", "p.json"}
    assert str(raised.value.path) in str(raised.value)
    outside = [p for p in opened if Path(p).resolve().parent != model_dir.resolve()]
    assert outside == [], f"{case}: opened {outside}"


def test_a_valid_model_loads_and_only_opens_its_own_two_files(tmp_path: Path) -> None:
    path = _valid(tmp_path)
    with opened_files() as opened:
        runner = PolicyRunner.load(path, expected_task=TASK)
    assert runner.act(np.zeros(OBS)).shape == (ACT,)
    assert {Path(p).name for p in opened} == {"p.onnx", "p.json"}  # the hook sees os.open too
    with opened_files() as opened, open(os.devnull, "rb"):
        pass
    assert opened == [os.devnull]  # and would see a file outside the model dir


def test_oversized_files_are_refused_before_reading(tmp_path: Path) -> None:
    path = _valid(tmp_path)
    with pytest.raises(ModelFileError, match="bytes > limit"):
        PolicyRunner.load(path, limits=RuntimeLimits(max_model_bytes=64))


def test_task_metadata_in_the_graph_must_match_the_card(tmp_path: Path) -> None:
    model = linear_model(OBS, ACT)
    helper.set_model_props(model, {"twinbridge.task": "fetch-slide"})
    path = write_policy(tmp_path / "p.onnx", model, TASK)
    with pytest.raises(ModelContractError, match=r"metadata twinbridge\.task"):
        PolicyRunner.load(path)


# -- R19: every step ------------------------------------------------------------------------------
@pytest.fixture
def runner(tmp_path: Path) -> PolicyRunner:
    return PolicyRunner.load(_valid(tmp_path), expected_task=TASK)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(OBS - 1),
        np.zeros((2, OBS)),
        np.zeros((OBS, 1)),
        np.zeros(OBS, dtype=complex),
        np.array(["0"] * OBS),
        np.zeros(OBS, dtype=bool),
        np.full(OBS, np.nan),
        np.r_[np.zeros(OBS - 1), np.inf],
        np.r_[np.zeros(OBS - 1), 1e300],  # finite in float64, inf in the float32 input
        {"observation": np.zeros(OBS - 3)},
    ],
    ids=lambda v: "dict" if isinstance(v, dict) else f"{v.dtype}{v.shape}",
)
def test_bad_observations_raise_in_the_same_step(runner: PolicyRunner, bad: object) -> None:
    with pytest.raises(PolicyInputError, match=r"p\.onnx"):
        runner.act(bad)  # type: ignore[arg-type]
    assert runner.act(np.zeros(OBS)).shape == (ACT,)  # the runner stays usable


def test_integer_and_float64_observations_are_accepted(runner: PolicyRunner) -> None:
    assert np.array_equal(runner.act(np.zeros(OBS, np.int64)), runner.act(np.zeros(OBS)))
    assert runner.act(np.zeros((1, OBS), np.float32)).dtype == np.float64


def test_a_nan_producing_policy_raises_in_the_same_step(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "nan.onnx", linear_model(OBS, ACT, nan=True), TASK)
    runner = PolicyRunner.load(path, expected_task=TASK)
    obs, _ = make_task_env(TASK).reset(seed=0)
    with pytest.raises(PolicyOutputError, match=r"nan\.onnx: action: non-finite"):
        runner.act(obs)


def test_an_action_outside_the_card_bounds_raises(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "big.onnx", linear_model(OBS, ACT), TASK)
    card = ModelCard.load(path.with_suffix(".json"))
    half = tuple(dataclasses.replace(a, low=-0.1, high=0.1) for a in card.action)
    dataclasses.replace(card, action=half).save(path.with_suffix(".json"))
    with pytest.raises(PolicyOutputError, match="outside the card's bounds"):
        PolicyRunner.load(path).act(np.ones(OBS))


# -- recurrent state ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lstm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    graph = LstmPolicyGraph(
        torch.zeros(OBS), torch.ones(OBS), 5.0, -torch.ones(ACT), torch.ones(ACT), 32, 16
    )
    path = tmp_path_factory.mktemp("lstm") / "lstm.onnx"
    config = ExportConfig(parity_samples=100)
    export_policy(graph, TASK, path, training_config={}, seed=0, config=config)
    return path


def _episode(runner: PolicyRunner, seed: int) -> np.ndarray:
    env = make_task_env(TASK)
    obs, _ = env.reset(seed=seed)
    runner.reset()
    actions = []
    for _ in range(20):
        actions.append(runner.act(obs))
        obs, *_ = env.step(actions[-1])
    return np.array(actions)


def test_recurrent_state_is_carried_and_reset_per_episode(lstm_path: Path) -> None:
    runner = PolicyRunner.load(lstm_path, expected_task=TASK)
    first, other, again = _episode(runner, 1), _episode(runner, 2), _episode(runner, 1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    runner.reset()
    obs = np.zeros(OBS)
    assert not np.array_equal(runner.act(obs), runner.act(obs))  # state advanced


def test_a_failed_step_does_not_advance_the_recurrent_state(lstm_path: Path) -> None:
    runner = PolicyRunner.load(lstm_path)
    clean = [runner.act(np.full(OBS, 0.1 * i)) for i in range(3)]
    runner.reset()
    got = []
    for i in range(3):
        with pytest.raises(PolicyInputError):
            runner.act(np.full(OBS, np.nan))
        got.append(runner.act(np.full(OBS, 0.1 * i)))
    assert np.array_equal(np.array(clean), np.array(got))


def test_a_hand_built_card_matches_what_the_runtime_checks(tmp_path: Path) -> None:
    data = linear_model(OBS, ACT).SerializeToString()
    card = task_card(TASK, "p.onnx", data)
    assert ModelCard.from_dict(json.loads(card.to_json())) == card
