"""Learning from demonstrations: the dataset format and its refusals, the demo buffer's HER
relabelling, the Q-filter and BC loss, bit-identical resume with demos, and the bench."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from resume_runs import straight_and_resumed

from hardware.recording.dataset import META_FILE, DemonstrationError, load_dataset, write_dataset
from policies.training.errors import CheckpointMismatchError, TrainingConfigError
from policies.training.her.config import HerSacConfig
from policies.training.her.demonstrations import (
    DemoBuffer,
    behaviour_cloning_loss,
    demo_actor_term,
    q_filter_mask,
)
from policies.training.her.sac import Batch, SacAgent
from policies.training.her.td3 import Td3Agent
from policies.training.her.trainer import HerSacTrainer
from policies.training.loop import run_training
from sim.envs import make_task_env
from sim.tasks import get_task_spec

BENCH = Path(__file__).resolve().parents[1] / "bench" / "demonstrations.py"
TASK = "fetch-pick-and-place"
META = {"robot": "fetch", "task": TASK, "control_rate_hz": 25.0, "source": "test"}
TINY: dict[str, Any] = {
    "task": TASK,
    "algo": "her-td3",
    "hidden_sizes": (16, 16),
    "num_envs": 2,
    "warmup_env_steps": 100,
    "epoch_env_steps": 200,
    "eval_episodes": 2,
    "batch_size": 32,
    "demo_batch_size": 16,
    "progress": False,
}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_demonstrations", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demos_dir(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four scripted pick-and-place demonstrations, written with the bench's generator."""
    out = tmp_path_factory.mktemp("demos") / "pnp"
    bench.generate_demos(4, out)
    return out


def synthetic_episode(steps: int = 5, success: bool = True, seed: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(steps + seed)
    return {
        "observation": rng.normal(size=(steps + 1, 25)),
        "achieved_goal": rng.normal(size=(steps + 1, 3)),
        "desired_goal": np.repeat(rng.normal(size=(1, 3)), steps + 1, axis=0),
        "action": rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
        "stamp_ns": np.arange(steps + 1) * 40_000_000,
        "joint_position": rng.normal(size=(steps + 1, 9)),
        "joint_velocity": rng.normal(size=(steps + 1, 9)),
        "command": rng.normal(size=(steps, 8)),
        "command_applied": rng.normal(size=(steps, 8)),
        "success": success,
        "seed": seed,
        "operator": np.array([1, 2, 3]),  # an extra key: kept as given
    }


# -- the format ---------------------------------------------------------------------------
def test_dataset_round_trip_keeps_every_array_and_lists_episodes(tmp_path: Path) -> None:
    episodes = [synthetic_episode(5), synthetic_episode(7, success=False, seed=-1)]
    write_dataset(tmp_path / "d", episodes, META)
    data = load_dataset(tmp_path / "d", task=TASK, robot="fetch", control_rate_hz=25.0,
                        dims={"obs": 25, "goal": 3, "action": 4})  # fmt: skip
    meta = json.loads((tmp_path / "d" / META_FILE).read_text())
    assert meta["format"] == "twinbridge-demonstrations" and meta["version"] == 1
    assert [(e["steps"], e["success"], e["seed"]) for e in meta["episodes"]] == [
        (5, True, 3), (7, False, -1)
    ]  # fmt: skip
    for written, read in zip(episodes, data.episodes, strict=True):
        for key, value in written.items():
            np.testing.assert_array_equal(read[key], np.asarray(value))
    assert read["stamp_ns"].dtype == np.int64 and read["seed"].dtype == np.int64
    assert len(data.successful) == 1 and data.dims == {"obs": 25, "goal": 3, "action": 4}
    assert load_dataset(tmp_path / "d").sha256 == data.sha256  # identity is stable


def _break(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A valid one-episode dataset, then its episode file rewritten after `change`."""
    write_dataset(tmp_path / "d", [synthetic_episode()], META)
    path = tmp_path / "d" / "episode_000000.npz"
    with np.load(path) as npz:
        arrays = dict(npz)
    change(arrays)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("action"), r"missing key\(s\) \['action'\]"),
        (lambda a: a.update(observation=a["observation"][:-1]), "observation has shape"),
        (lambda a: a.update(achieved_goal=a["achieved_goal"][:, :2]), "widths differ"),
        (lambda a: a.update(action=a["action"] * 3), r"outside \[-1, 1\]"),
        (lambda a: a.update(action=np.full((5, 4), np.nan)), "non-finite"),
        (lambda a: a.update(success=np.array(False)), "none of the 1 episodes succeeded"),
        (lambda a: a.update(observation=np.array([None] * 6)), "without pickles"),
    ],
    ids=["missing-key", "rows", "goal-width", "action-range", "nan", "no-success", "pickle"],
)
def test_bad_episode_files_are_refused_naming_file_and_fault(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = _break(tmp_path, change)
    with pytest.raises(DemonstrationError, match=message) as info:
        load_dataset(tmp_path / "d")
    assert info.value.path.name in (path.name, META_FILE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "fetch-push"}, "field 'task' is 'fetch-pick-and-place', but 'fetch-push'"),
        ({"robot": "shadow_hand"}, "field 'robot' is 'fetch'"),
        ({"control_rate_hz": 50.0}, "control_rate_hz' is 25"),
        ({"dims": {"obs": 31, "goal": 3, "action": 4}}, "observation width 25 does not match"),
    ],
)
def test_datasets_of_another_robot_task_rate_or_size_are_refused(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    write_dataset(tmp_path / "d", [synthetic_episode()], META)
    with pytest.raises(DemonstrationError, match=message):
        load_dataset(tmp_path / "d", **kwargs)


def test_missing_or_foreign_meta_and_rewrites_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DemonstrationError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DemonstrationError, match=r"meta\.json missing"):
        load_dataset(tmp_path / "empty")
    write_dataset(tmp_path / "d", [synthetic_episode(), synthetic_episode(6)], META)
    with pytest.raises(DemonstrationError, match="already exists"):
        write_dataset(tmp_path / "d", [synthetic_episode()], META)
    unsourced = {k: v for k, v in META.items() if k != "source"}
    with pytest.raises(DemonstrationError, match=r"meta is missing \['source'\]"):
        write_dataset(tmp_path / "e", [synthetic_episode()], unsourced)
    (tmp_path / "d" / "episode_000001.npz").unlink()
    with pytest.raises(DemonstrationError, match=r"episode 1 listed in meta\.json is missing"):
        load_dataset(tmp_path / "d")
    meta_path = tmp_path / "d" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 2}))
    with pytest.raises(DemonstrationError, match="field 'version' is 2"):
        load_dataset(tmp_path / "d")
    meta_path.write_text(json.dumps(meta)[:40])
    with pytest.raises(DemonstrationError, match="not valid JSON"):
        load_dataset(tmp_path / "d")


def test_writer_refuses_an_episode_before_writing_it(tmp_path: Path) -> None:
    bad = synthetic_episode()
    bad["desired_goal"] = bad["desired_goal"][:-1]
    with pytest.raises(DemonstrationError, match="desired_goal has shape") as info:
        write_dataset(tmp_path / "d", [synthetic_episode(), bad], META)
    assert info.value.path.name == "episode_000001.npz"
    assert not (tmp_path / "d" / META_FILE).exists()


# -- the demo buffer ----------------------------------------------------------------------
@pytest.mark.parametrize("relabel_p", [0.0, 0.8])
def test_demo_buffer_relabels_with_future_achieved_goals_of_the_same_demo(
    relabel_p: float,
) -> None:
    env = make_task_env(TASK, disable_env_checker=True)
    reward_fn = env.unwrapped.compute_reward  # type: ignore[attr-defined]
    episodes = [synthetic_episode(steps, seed=steps) for steps in (3, 8, 5)]  # unequal lengths
    buffer = DemoBuffer(episodes)
    t = buffer.sample(np.random.default_rng(0), 4096, relabel_p, reward_fn)
    env.close()
    np.testing.assert_array_equal(t.reward, reward_fn(t.achieved_next, t.goal, None))
    assert abs(t.relabelled.mean() - relabel_p) < 0.03 and len(buffer) == 16
    for i in range(len(t.action)):  # locate each sample: episode e, step s
        e, s = next((e, s) for e, ep in enumerate(episodes)
                    for s in range(len(ep["action"])) if np.array_equal(ep["action"][s],
                                                                        t.action[i]))  # fmt: skip
        ep = episodes[e]
        np.testing.assert_array_equal(t.obs[i], ep["observation"][s].astype(np.float32))
        np.testing.assert_array_equal(t.next_obs[i], ep["observation"][s + 1].astype(np.float32))
        np.testing.assert_array_equal(t.achieved_next[i], ep["achieved_goal"][s + 1])
        if t.relabelled[i]:
            future = [np.array_equal(t.goal[i], g) for g in ep["achieved_goal"][s + 1 :]]
            assert any(future), "relabelled goal is not a later achieved goal of its demo"
        else:
            np.testing.assert_array_equal(t.goal[i], ep["desired_goal"][s])


# -- Q-filter and behaviour cloning -------------------------------------------------------
def test_q_filter_masks_exactly_where_the_demo_action_is_not_better() -> None:
    target = torch.tensor([0.5, -0.5])

    def q(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # best action: target * x[:, :1]
        return -(a - target * x[:, :1]).square().sum(-1)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 3, generator=generator)
    demo = torch.rand(512, 2, generator=generator) * 2 - 1
    policy = (torch.rand(512, 2, generator=generator) * 2 - 1).requires_grad_(True)
    demo[:4] = policy[:4].detach()  # ties: Q(s, a) == Q(s, pi(s)) must be masked out
    mask = q_filter_mask(q, x, demo, policy.detach())
    expected = (q(x, demo) > q(x, policy.detach())).float()
    assert torch.equal(mask, expected) and mask[:4].sum() == 0 and 0.2 < mask.mean() < 0.8
    loss, stats = demo_actor_term(q, x, policy, demo, weight=2.0, q_filter=True)
    loss.backward()
    assert policy.grad is not None
    assert torch.all(policy.grad[mask == 0] == 0)
    assert torch.all(policy.grad[mask == 1].abs().sum(-1) > 0)
    manual = ((policy - demo).square().sum(-1) * expected).mean() * 2.0
    assert torch.allclose(loss, manual) and stats["q_filter_pass"] == float(expected.mean())
    unfiltered, stats = demo_actor_term(q, x, policy, demo, weight=1.0, q_filter=False)
    assert stats["q_filter_pass"] == 1.0
    assert torch.allclose(unfiltered, behaviour_cloning_loss(policy, demo, torch.ones(512)))


@pytest.mark.parametrize("agent_class", [SacAgent, Td3Agent], ids=["sac", "td3"])
def test_behaviour_cloning_pulls_the_actor_toward_demo_actions(agent_class: type) -> None:
    torch.manual_seed(0)
    config = HerSacConfig(hidden_sizes=(32, 32), bc_loss_weight=10.0, q_filter=False)
    agent = agent_class(6, 2, config)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 6, generator=generator)
    demo = torch.tanh(x[:, :2] - x[:, 2:4])  # a smooth demonstrator
    batch = Batch(x, demo, torch.full((64,), -1.0), x.clone(), demo_rows=32)

    def error() -> float:
        with torch.no_grad():
            return float((agent.deterministic_actor()(x[32:]) - demo[32:]).square().mean())

    before = error()
    for _ in range(300):
        stats = agent.update(batch, generator)
    assert error() < 0.1 * before, (before, error())
    assert "bc_loss" in stats or agent_class is Td3Agent


# -- trainer: smoke run, resume, refusals -------------------------------------------------
def test_training_with_demos_logs_bc_and_q_filter(demos_dir: Path, tmp_path: Path) -> None:
    config = HerSacConfig(**TINY, total_env_steps=400, demonstrations_dir=str(demos_dir))
    trainer = HerSacTrainer(config)
    steps = get_task_spec(TASK).max_episode_steps
    assert trainer.demos is not None and len(trainer.demos) == 4 * steps
    assert float(trainer.normalizer.count[0]) == 4 * steps  # demo inputs are in the statistics
    try:
        row = run_training(trainer, tmp_path / "run")
    finally:
        trainer.close()
    assert row["updates"] > 0 and 0.0 <= row["q_filter_pass"] <= 1.0 and row["bc_loss"] >= 0
    header = (tmp_path / "run" / "progress.csv").read_text().splitlines()[0]
    assert header.endswith("bc_loss,q_filter_pass")


def test_resume_with_demonstrations_is_bit_identical(demos_dir: Path, tmp_path: Path) -> None:
    def make(total: int) -> HerSacTrainer:
        config = HerSacConfig(**TINY, total_env_steps=total, demonstrations_dir=str(demos_dir))
        return HerSacTrainer(config)

    straight, resumed = straight_and_resumed(make, 600, 400, tmp_path)
    assert straight.tensors.keys() == resumed.tensors.keys()
    for name, tensor in straight.tensors.items():
        assert torch.equal(tensor, resumed.tensors[name]), name
    timings = ("wall_time_s", "collect_s", "update_s")
    same = {k: v for k, v in straight.counters.items() if k not in timings}
    assert same == {k: v for k, v in resumed.counters.items() if k not in timings}
    assert straight.counters["updates"] > 0
    identity = json.loads(straight.counters["demonstrations"])
    assert identity["sha256"] == load_dataset(demos_dir).sha256


def test_resume_on_other_demonstrations_is_refused(demos_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in demos_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    config = HerSacConfig(**TINY, total_env_steps=200, demonstrations_dir=str(copy))
    trainer = HerSacTrainer(config)
    run_training(trainer, tmp_path / "run")
    trainer.close()
    HerSacTrainer.resume(tmp_path / "run" / "checkpoint", total_env_steps=400).close()
    episode = np.load(copy / "episode_000003.npz")
    arrays = {**episode, "action": episode["action"] * 0.5}
    np.savez(copy / "episode_000003.npz", **arrays)  # same meta.json, other demonstrations
    with pytest.raises(CheckpointMismatchError, match="resume with the original dataset"):
        HerSacTrainer.resume(tmp_path / "run" / "checkpoint", total_env_steps=400)


def test_config_refuses_a_directory_without_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match=r"option demonstrations_dir: .*meta\.json"):
        HerSacConfig(task=TASK, demonstrations_dir=str(tmp_path))
    with pytest.raises(TrainingConfigError, match="demo_batch_size must be > 0"):
        HerSacConfig(task=TASK, demo_batch_size=0)


def test_trainer_refuses_demonstrations_of_another_task(demos_dir: Path) -> None:
    config = dataclasses.replace(HerSacConfig(**{**TINY, "task": "fetch-push"}),
                                 demonstrations_dir=str(demos_dir))  # fmt: skip
    with pytest.raises(TrainingConfigError, match="field 'task' is 'fetch-pick-and-place'"):
        HerSacTrainer(config)


# -- the bench ----------------------------------------------------------------------------
def test_bench_runs_both_sides_and_reports(
    bench: ModuleType, demos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.json"
    batch = bench.SETTINGS["num_envs"] * get_task_spec(TASK).max_episode_steps
    argv = ["--demos", str(demos_dir), "--runs", str(tmp_path / "runs"), "--total-env-steps",
            str(2 * batch), "--eval-every", str(batch), "--eval-episodes", "2",
            "--warmup-env-steps", "200",
            "--results", str(out), "--png", str(tmp_path / "c.png"), "--no-progress"]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report["sides"]) == {"baseline", "demos"}
    demos = report["sides"]["demos"]
    assert demos["demonstrations"]["generated_in_process"] is True
    assert [p["env_steps"] for p in demos["curve"]] == [batch, 2 * batch]
    assert (tmp_path / "c.png").stat().st_size > 0
    table = capsys.readouterr().out
    assert "| baseline | none |" in table and "4 generated" in table
    assert (
        f"not reached within {2 * batch}" in table
        or f"| {batch} |" in table
        or (f"| {2 * batch} |" in table)
    )
    assert bench.main([*argv, "--report-only"]) == 0  # finished runs are reused, not retrained
    assert bench.main([*argv[2:], "--demos", str(tmp_path)]) == 2  # not a dataset
    assert "meta.json missing" in capsys.readouterr().err
