"""DAgger from the scripted expert (`--algo dagger`): it learns, resumes bit-identically,
exports a card, keeps ADR to the student's episodes and refuses impossible options by name."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from resume_runs import straight_and_resumed

from policies.training.dagger.config import DaggerConfig
from policies.training.dagger.trainer import DaggerTrainer, LabelledStates
from policies.training.errors import TrainingConfigError
from policies.training.loop import run_training
from sim.cli import main


def tiny_config(total: int, **overrides) -> DaggerConfig:
    values = dict(task="fetch-reach-v0", total_env_steps=total, hidden_sizes=(32, 32),
                  batch_size=64, expert_env_steps=100, expert_share_end_env_steps=300,
                  epoch_env_steps=100, eval_episodes=2, progress=False)  # fmt: skip
    return DaggerConfig(**{**values, **overrides})


def test_the_student_learns_to_reach_from_the_expert(tmp_path: Path) -> None:
    trainer = DaggerTrainer(tiny_config(1000, hidden_sizes=(64, 64), eval_episodes=10))
    try:
        before, _ = trainer.evaluate()
        row = run_training(trainer, tmp_path / "run")
        after, _ = trainer.evaluate()
    finally:
        trainer.close()
    assert before <= 0.2 and after >= 0.8, (before, after)
    assert row["imitation_loss"] < 0.05 and trainer.dataset.size == 1000


def test_the_expert_drives_its_demonstrations_then_hands_over() -> None:
    trainer = DaggerTrainer(tiny_config(400, expert_share=0.5))
    try:
        shares = []
        for _ in range(8):
            shares.append(trainer.expert_share())
            trainer.iterate()
    finally:
        trainer.close()
    # 2 episodes of 50 steps per batch: 100 expert steps, then 0.5 falling to 0 at step 300
    assert shares == [1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_checkpoint_resume_is_bit_identical(tmp_path: Path) -> None:
    a, b = straight_and_resumed(lambda total: DaggerTrainer(tiny_config(total)), 400, 200,
                                tmp_path)  # fmt: skip
    assert a.tensors.keys() == b.tensors.keys()
    for name in a.tensors:
        assert torch.equal(a.tensors[name], b.tensors[name]), name
    assert a.counters["updates"] == b.counters["updates"] == 400
    assert a.tensors["dataset/inputs"].shape[0] == 400


def test_adr_hears_only_the_episodes_the_student_drove() -> None:
    trainer = DaggerTrainer(tiny_config(
        200, task="fetch-push-v0", randomization="sim/randomization/configs/fetch-push-adr.yaml"
    ))  # fmt: skip
    heard: list[float] = []
    adr = trainer.randomization.adr
    assert adr is not None
    adr.settings = dataclasses.replace(adr.settings, boundary_probability=1.0)  # all pinned
    adr.report_episode = lambda plan, success: heard.append(success)  # type: ignore[method-assign]
    try:
        trainer.randomization.plan(3, np.random.default_rng(0))
        success = np.array([True, False, True])
        trainer.randomization.report(success, counted=np.array([False, True, True]))
    finally:
        trainer.close()
    assert heard == [0.0, 1.0]


def test_the_dataset_drops_its_oldest_rows_when_full() -> None:
    data = LabelledStates(5, 2, 1)
    data.add(np.arange(8, dtype=np.float32).reshape(4, 2), np.zeros((4, 1), np.float32))
    data.add(np.full((3, 2), 9, np.float32), np.ones((3, 1), np.float32))
    assert data.size == 5 and data.next == 2
    assert data.inputs[:, 0].tolist() == [9, 9, 4, 6, 9]


def test_train_command_exports_a_card_naming_dagger(tmp_path: Path) -> None:
    onnx = tmp_path / "reach.onnx"
    args = ["train", "--task", "fetch-reach-v0", "--algo", "dagger", "--total-env-steps", "200",
            "--expert-env-steps", "100", "--hidden-sizes", "16", "--eval-episodes", "2",
            "--no-progress", "--out", str(tmp_path / "run"), "--export", str(onnx),
            "--export-eval-episodes", "2"]  # fmt: skip
    assert main(args) == 0
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert card["training_config"]["algo"] == "dagger"
    assert card["training_config"]["expert"] == "scripted"
    assert "--algo dagger" in card["reproduce_command"]


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"expert": "human"}, "option expert 'human'"),
        ({"task": "hand-reach"}, "no controller for task 'hand-reach'"),
        ({"expert_share": 1.5}, "expert_share"),
        ({"lr": 0.0}, "lr"),
        ({"algo": "her-sac"}, "algo"),
        ({"hidden_sizes": (0,)}, "hidden_sizes"),
    ],
)
def test_impossible_configs_are_refused_by_name(values: dict, match: str) -> None:
    with pytest.raises(TrainingConfigError, match=match):
        DaggerConfig.from_dict(values)


def test_cli_refuses_a_task_without_an_expert_in_one_line(tmp_path: Path, capsys) -> None:
    code = main(["train", "--algo", "dagger", "--task", "hand-reach", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no controller for task 'hand-reach'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_config_defaults_are_valid() -> None:
    config = DaggerConfig()
    assert dataclasses.asdict(config)["algo"] == "dagger"


def test_the_expert_sees_the_true_observation_the_student_a_noisy_one(tmp_path: Path) -> None:
    from sim.envs import make_task_env

    noisy = tmp_path / "noise.yaml"
    noisy.write_text("parameters:\n  observation.noise:std: [0.01, 0.01]\n")
    env = make_task_env("fetch-push", disable_env_checker=True, privileged_state=True,
                        randomization=str(noisy))  # fmt: skip
    clean = make_task_env("fetch-push", disable_env_checker=True)
    try:
        seen, _ = env.reset(seed=3)
        true, _ = clean.reset(seed=3)
        for _ in range(3):
            seen, *_ = env.step(np.zeros(4, np.float32))
            true, *_ = clean.step(np.zeros(4, np.float32))
    finally:
        env.close()
        clean.close()
    np.testing.assert_allclose(seen["true_observation"], true["observation"], atol=1e-9)
    assert np.abs(seen["observation"] - true["observation"]).max() > 0.005
