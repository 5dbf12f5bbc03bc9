"""Training with domain randomization and ADR: plans reach the envs (in-process or worker
processes), pinned episodes' results reach ADR, ADR state is checkpointed and resumes
bit-identically, and its ranges are logged as CSV and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from resume_runs import straight_and_resumed

from policies.training.errors import TrainingConfigError
from policies.training.her.config import HerSacConfig
from policies.training.her.trainer import HerSacTrainer
from policies.training.loop import run_training
from policies.training.ppo.config import PpoLstmConfig
from policies.training.ppo.trainer import PpoLstmTrainer
from policies.training.randomization import TrainingRandomization
from sim.randomization import load_randomization
from sim.vector import SubprocVectorEnv

ADR_YAML = """
parameters:
  observation.noise:std: [0.0, 0.002]
adr:
  buffer_size: 1
  boundary_probability: 0.5
  low_threshold: 0.0
  high_threshold: 0.5
  parameters:
    physics.friction:scale: 0.1
    action.latency:steps: 0.5
"""


@pytest.fixture
def adr_file(tmp_path: Path) -> Path:
    path = tmp_path / "adr.yaml"
    path.write_text(ADR_YAML)
    return path


def her_config(total: int, randomization: Path | None, **overrides) -> HerSacConfig:
    return HerSacConfig(
        task="fetch-reach", hidden_sizes=(16, 16), batch_size=32, num_envs=2,
        warmup_env_steps=100, epoch_env_steps=200, eval_episodes=2, total_env_steps=total,
        seed=3, progress=False, randomization=str(randomization or ""), **overrides,
    )  # fmt: skip


def test_plans_go_out_per_env_and_pinned_results_move_bounds(adr_file: Path) -> None:
    training = TrainingRandomization(load_randomization(adr_file))
    adr = training.adr
    assert adr is not None
    rng = np.random.default_rng(0)
    for _ in range(50):
        options = training.plan(4, rng)
        assert options is not None and len(options) == 4
        assert all(set(o["randomization"]) == set(adr.bounds) for o in options if o)
        training.report(np.ones(4, dtype=bool))  # every pinned bound succeeds: moves out
    low, high = adr.bounds["physics.friction:scale"]
    assert low < 1.0 < high
    assert adr.bounds["action.latency:steps"][1] > 0.0
    assert training.plan(3, rng) is not None
    with pytest.raises(ValueError):
        training.report(np.ones(2, dtype=bool))  # results of another batch size


def test_fixed_ranges_alone_plan_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fixed.yaml"
    path.write_text("parameters:\n  physics.friction:scale: [0.8, 1.2]\n")
    training = TrainingRandomization(load_randomization(path))
    assert training.adr is None and training.plan(4, np.random.default_rng(0)) is None
    assert set(training.counters()) == {"randomization_history"}  # no ADR state


def test_her_with_adr_resumes_bit_identically_and_logs_ranges(
    tmp_path: Path, adr_file: Path
) -> None:
    a, b = straight_and_resumed(
        lambda total: HerSacTrainer(her_config(total, adr_file)), 400, 200, tmp_path
    )
    for name in a.tensors:
        assert torch.equal(a.tensors[name], b.tensors[name]), name
    state = json.loads(a.counters["randomization_state"])
    assert state == json.loads(b.counters["randomization_state"])
    assert state["counters"]["boundary_episodes"] > 0
    rows = (tmp_path / "split" / "adr.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 and rows[0].startswith("env_steps,entropy_nats_per_dim")
    assert (tmp_path / "split" / "adr.png").stat().st_size > 1000


def test_worker_processes_train_exactly_like_in_process_envs_with_adr(adr_file: Path) -> None:
    """The per-env plans reach the right sub-env in worker processes."""
    states = []
    for workers in (0, 2):
        trainer = HerSacTrainer(her_config(200, adr_file, num_workers=workers))
        for _ in range(200 // (2 * trainer.steps)):
            trainer.iterate()
        states.append((trainer.state().tensors, trainer.randomization.counters()))
        trainer.close()
    (a, adr_a), (b, adr_b) = states
    assert adr_a == adr_b
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_vector_env_gives_each_sub_env_its_own_reset_options(adr_file: Path) -> None:
    config = load_randomization(adr_file)
    values = [1.0 + 0.1 * i for i in range(4)]
    with SubprocVectorEnv("fetch-reach", 4, 2, env_kwargs={"randomization": config}) as vector:
        per_env = [{"randomization": {"physics.friction:scale": v}} for v in values]
        _, infos = vector.reset(seed=0, options={"per_env": per_env})
        used = infos["randomization"]["physics.friction:scale"]
        np.testing.assert_allclose(used, values)
        with pytest.raises(ValueError, match="per_env"):
            vector.reset(seed=0, options={"per_env": per_env[:3]})


def test_ppo_with_adr_resumes_bit_identically(tmp_path: Path) -> None:
    path = tmp_path / "hand-adr.yaml"
    path.write_text(
        "adr:\n  buffer_size: 1\n  low_threshold: 0.0\n  high_threshold: 0.5\n"
        "  parameters:\n    physics.tendon_coupling:scale: 0.05\n"
        "    physics.object_mass:scale: 0.1\n"
    )
    tiny = {
        "task": "hand-block-rotate-z", "dense_size": 32, "lstm_size": 16,
        "value_hidden_sizes": (32, 32), "num_envs": 2, "max_episode_steps": 20, "bptt_steps": 8,
        "epochs_per_rollout": 1, "num_minibatches": 2, "epoch_env_steps": 40,
        "eval_episodes": 2, "progress": False, "seed": 1, "randomization": str(path),
    }  # fmt: skip
    a, b = straight_and_resumed(
        lambda total: PpoLstmTrainer(PpoLstmConfig(**{**tiny, "total_env_steps": total})),
        120, 80, tmp_path,
    )  # fmt: skip
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert a.counters["randomization_state"] == b.counters["randomization_state"]
    state = json.loads(a.counters["randomization_state"])
    assert state["counters"]["boundary_episodes"] > 0


def test_a_bad_randomization_option_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match=r"option randomization.*missing.yaml"):
        her_config(200, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  physics.friction:scale: [0, 2]\n")
    with pytest.raises(TrainingConfigError, match=r"bad.yaml.*friction:scale.*0.0"):
        her_config(200, bad)


def test_a_run_resumed_with_adr_says_so_in_its_reproduce_command(
    tmp_path: Path, adr_file: Path
) -> None:
    """Fine-tuning with ADR from a run without randomization: the card's command replays
    the first part, then the resume with ADR, not an ADR run from scratch."""
    from policies.training.cli import reproduce_command

    first = HerSacTrainer(her_config(200, None))
    run_training(first, tmp_path / "run")
    first.close()
    resumed = HerSacTrainer.resume(
        tmp_path / "run" / "checkpoint", total_env_steps=400, randomization=str(adr_file)
    )
    run_training(resumed, tmp_path / "run")
    resumed.close()
    assert resumed.randomization.history == [(0, ""), (200, str(adr_file))]
    command = reproduce_command(resumed.config, tmp_path / "run", tmp_path / "p.onnx",
                                history=resumed.randomization.history)  # fmt: skip
    first_part, second_part = command.split(" && ")
    assert "--total-env-steps 200" in first_part and "--randomization" not in first_part
    assert f"--resume {tmp_path / 'run'}" in second_part
    assert f"--randomization {adr_file}" in second_part and "--total-env-steps 400" in second_part
    assert second_part.endswith(f"--export {tmp_path / 'p.onnx'}")
    again = HerSacTrainer.resume(tmp_path / "run" / "checkpoint", total_env_steps=400)
    assert again.randomization.history == resumed.randomization.history
    again.close()
