"""`twinbridge rollout` end to end: the installed command, JSON summary, MP4, ONNX policies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import linear_model, task_dims, write_policy

from policies.errors import (
    ModelCardError,
    ModelContractError,
    ModelFileError,
    ModelIntegrityError,
    PolicyOutputError,
)
from policies.random_policy import write_random_policy
from policies.rollout import RolloutConfig, make_policy, rollout
from policies.runtime import PolicyRunner
from sim.envs import make_task_env
from sim.robots import ROBOT_FOLDERS, get_robot

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
    assert frames.shape == (50 + 1, 128, 128, 3)  # each step, then the final state
    assert frames.std() > 5.0
    assert not np.array_equal(frames[0], frames[-1])  # the arm moved


def test_unknown_task_exits_2_and_lists_valid_tasks() -> None:
    done = run_cli("rollout", "--task", "fetch-fly", "--episodes", "1")
    assert done.returncode == 2
    assert "unknown task 'fetch-fly'" in done.stderr and "fetch-push" in done.stderr


def test_unknown_policy_lists_the_valid_ones() -> None:
    done = run_cli("rollout", "--task", "fetch-reach", "--episodes", "1", "--policy", "smart")
    assert done.returncode == 2 and "random" in done.stderr and ".onnx" in done.stderr


def test_onnx_policy_runs_in_rollout(tmp_path: Path) -> None:
    obs_width, action_width = task_dims("fetch-reach")
    path = write_policy(
        tmp_path / "reach.onnx", linear_model(obs_width, action_width), "fetch-reach"
    )
    done = run_cli(
        "rollout", "--task", "fetch-reach", "--episodes", "1", "--policy", str(path), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["episodes"] == 1


def test_onnx_policy_for_another_task_exits_2_naming_the_card_field(tmp_path: Path) -> None:
    obs_width, action_width = task_dims("fetch-reach")
    path = write_policy(
        tmp_path / "reach.onnx", linear_model(obs_width, action_width), "fetch-reach"
    )
    done = run_cli("rollout", "--task", "fetch-push", "--episodes", "1", "--policy", str(path))
    assert done.returncode == 2
    expected = "reach.onnx: trained for task 'fetch-reach' (its card reach.json), not 'fetch-push'"
    assert expected in done.stderr


def test_onnx_policy_of_the_wrong_shape_is_refused_at_load(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "wrong.onnx", linear_model(13, 4), "fetch-push")
    with pytest.raises(ModelContractError, match=r"inputs\[0\] 'obs'.shape: graph has \[1, 13\]"):
        make_policy(str(path), "fetch-push", make_task_env("fetch-push"), 0)


def test_garbage_or_missing_onnx_file_is_refused(tmp_path: Path) -> None:
    garbage = write_policy(tmp_path / "garbage.onnx", b"\x00not a model", "fetch-push")
    with pytest.raises(ModelIntegrityError, match=r"garbage\.onnx"):
        PolicyRunner.load(garbage, expected_task="fetch-push")
    (tmp_path / "garbage.onnx").unlink()
    with pytest.raises(ModelFileError, match="does not exist"):
        PolicyRunner.load(garbage, expected_task="fetch-push")
    with pytest.raises(ModelFileError, match=r"missing\.onnx: does not exist; give a policy"):
        PolicyRunner.load(tmp_path / "missing.onnx")
    (tmp_path / "cardless.onnx").write_bytes(b"")
    with pytest.raises(ModelCardError, match=r"cardless\.onnx: its model card cardless\.json"):
        PolicyRunner.load(tmp_path / "cardless.onnx")


def test_nan_action_raises_instead_of_reaching_the_env(tmp_path: Path) -> None:
    env = make_task_env("fetch-push")
    path = write_policy(
        tmp_path / "nan.onnx", linear_model(*task_dims("fetch-push"), nan=True), "fetch-push"
    )
    policy = PolicyRunner.load(path, expected_task="fetch-push")
    obs, _ = env.reset(seed=0)
    with pytest.raises(PolicyOutputError, match="non-finite action"):
        policy(obs)


def test_rollout_on_a_perturbed_twin_and_a_bad_randomization_file(tmp_path: Path) -> None:
    """The zoo policy on the held-out perturbed set: it runs, reproducibly, and loses some
    of its nominal success; a bad file exits 2 naming the file and the parameter."""
    args = ["rollout", "--task", "fetch-push", "--policy", "policies/zoo/fetch-push.onnx",
            "--episodes", "12", "--json"]  # fmt: skip
    perturbed = "sim/randomization/configs/fetch-perturbed-eval.yaml"
    runs = [run_cli(*args, "--randomization", perturbed) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    rates = [json.loads(r.stdout.strip().splitlines()[-1])["success_rate"] for r in runs]
    assert rates[0] == rates[1]
    nominal = json.loads(run_cli(*args).stdout.strip().splitlines()[-1])["success_rate"]
    assert rates[0] < nominal
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  physics.object_mass:scale: [-1.0, 2.0]\n")
    done = run_cli(*args, "--randomization", str(bad))
    assert done.returncode == 2
    assert str(bad) in done.stderr and "physics.object_mass:scale" in done.stderr


@pytest.mark.parametrize("robot", ROBOT_FOLDERS)
def test_every_robot_rolls_out_its_task_on_the_random_onnx_policy(robot: str, tmp_path: Path):
    """A robot nobody trained a policy for yet: its default task, through the checked ONNX
    path (`--policy random` of `twinbridge sim` writes the same file)."""
    task = get_robot(robot).default_task
    policy = write_random_policy(task, tmp_path, seed=1)
    done = run_cli("rollout", "--task", task, "--policy", str(policy), "--episodes", "5", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["task"], summary["episodes"]) == (task, 5)
    assert 0.0 <= summary["success_rate"] <= 1.0
