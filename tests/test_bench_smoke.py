"""Smoke test of `bench/env_speed.py`: a few steps of each measurement, no peer venv, no network.

Checks the shape and sanity of the results, never the speed (machines are noisy).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import gymnasium as gym
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
TASK = "fetch-push"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def env_speed() -> ModuleType:
    return _load("env_speed")


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_raw_limit_replays_recorded_states(env_speed: ModuleType):
    env = env_speed.make_env(TASK)
    actions = env_speed.random_actions(env, 12, seed=0)
    trace = env_speed.record_trace(
        env, actions, seed=0, limit=env_speed.get_task_spec(TASK).max_episode_steps
    )
    frame_skip = env.unwrapped.frame_skip
    # one mj_step call per run of equal servo setpoints (the robot's actuation), each recorded
    assert trace.env_steps == 12 and trace.states.shape[0] == len(trace.nsteps) >= 12
    assert trace.nsteps.sum() == 12 * frame_skip and (trace.nsteps >= 1).all()
    raw = env_speed.measure_raw(env.unwrapped.model, trace)
    assert _positive(raw["env_steps_per_s"])
    assert raw["mj_steps_per_s"] == pytest.approx(raw["env_steps_per_s"] * frame_skip)
    env.step(actions[0])  # the recorder is gone: stepping works as before


def test_ours_counts_steps_and_resets(env_speed: ModuleType):
    env = env_speed.make_env(TASK)
    limit = env_speed.get_task_spec(TASK).max_episode_steps
    assert env_speed.episode_steps(TASK, 1) == limit
    actions = env_speed.random_actions(env, limit + 3, seed=1)
    ours = env_speed.measure_ours(env, actions, seed=1)
    assert ours["resets"] == 2 and _positive(ours["env_steps_per_s"])


def test_paired_measurement_covers_every_episode_once(env_speed: ModuleType):
    env = env_speed.make_env(TASK)
    limit = env_speed.get_task_spec(TASK).max_episode_steps
    actions = env_speed.random_actions(env, 2 * limit, seed=2)
    trace = env_speed.record_trace(env, actions, seed=0, limit=limit)
    assert sorted(set(trace.episodes.tolist())) == [0, 1]
    ours, raw = env_speed.measure_pair(env, actions, trace, seed=3, limit=limit, raw_first=True)
    assert ours["resets"] == 2 and _positive(ours["env_steps_per_s"])
    assert raw["mj_steps_per_s"] == pytest.approx(
        raw["env_steps_per_s"] * env.unwrapped.frame_skip
    )


def test_full_run_report_shape(env_speed: ModuleType):
    config = env_speed.BenchConfig(
        tasks=[TASK], rounds=1, steps=1, peer=False, vector_envs=2, vector_steps=3
    )
    report = env_speed.run(config)
    task = report["tasks"][TASK]
    for key in ("ours_env_steps_per_s", "raw_env_steps_per_s", "raw_mj_steps_per_s"):
        assert _positive(task[key])
    assert task["peer_env_steps_per_s"] is None and "no-peer" in task["peer_error"]
    assert task["ours_over_raw"] > 0 and isinstance(task["meets_target"], bool)
    assert set(report["vector"]["env_steps_per_s"]) == {"1", "2"}
    assert isinstance(report["failures"], list)
    table = env_speed.format_table(report)
    assert TASK in table and "vector" in table


def test_peer_measure_on_a_plain_gymnasium_env():
    peer = _load("peer_gymrobotics")
    result = peer.measure(gym, {}, "Pendulum-v1", steps=20, seed=0)
    assert result["steps"] == 20 and _positive(result["env_steps_per_s"])
