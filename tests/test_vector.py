"""`sim.vector.SubprocVectorEnv`: same results as single envs, autoreset, errors, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from sim.envs import make_task_env
from sim.vector import SubprocVectorEnv, VectorEnvConfig, WorkerError

TASK = "fetch-push"  # 50-step episodes, so 55 steps cross an autoreset
REPO = Path(__file__).resolve().parents[1]


def _limit(env: SubprocVectorEnv) -> int:
    assert env.spec is not None and env.spec.max_episode_steps is not None
    return env.spec.max_episode_steps


def _zero(env: SubprocVectorEnv) -> np.ndarray:
    space = env.action_space
    return np.zeros(space.shape or (), space.dtype)


def _actions(env: SubprocVectorEnv, steps: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = env.single_action_space
    shape = (steps, env.num_envs, *space.shape)  # type: ignore[misc]
    return rng.uniform(space.low, space.high, shape).astype(space.dtype)  # type: ignore[attr-defined]


def _single_rollout(n: int, seed: int, actions: np.ndarray) -> list[list[Any]]:
    """The reference: n separate envs stepped one after another, autoreset on the next step."""
    envs = [make_task_env(TASK, disable_env_checker=True) for _ in range(n)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    done = [False] * n
    out: list[list[Any]] = [obs]
    for step_actions in actions:
        results: list[Any] = []
        for i, env in enumerate(envs):
            if done[i]:
                o, info = env.reset()
                r, te, tr = 0.0, False, False
            else:
                o, reward, te, tr, info = env.step(step_actions[i])
                r = float(reward)
            done[i] = te or tr
            results.append((o, r, te, tr, info["is_success"]))
        out.append(results)
    for env in envs:
        env.close()
    return out


def _children() -> set[int]:
    """Live child processes of this one, from /proc."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            kids.add(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_matches_single_envs_across_processes():
    """4 envs in 2 workers give bit-identical results to 4 envs stepped in this process."""
    steps, seed = 55, 7
    with SubprocVectorEnv(TASK, num_envs=4, num_workers=2, seed=seed) as venv:
        actions = _actions(venv, steps)
        first, _ = venv.reset()
        got = [venv.step(a) for a in actions]
    want = _single_rollout(4, seed, actions)
    for i in range(4):
        for key in first:
            np.testing.assert_array_equal(first[key][i], want[0][i][key])
    for t, (obs, rew, term, trunc, info) in enumerate(got):
        for i in range(4):
            o, r, te, tr, success = want[t + 1][i]
            for key in obs:
                np.testing.assert_array_equal(obs[key][i], o[key], err_msg=f"step {t} env {i}")
            assert (rew[i], term[i], trunc[i], info["is_success"][i]) == (r, te, tr, success)


def test_next_step_autoreset_and_spaces():
    """The step after truncation resets (reward 0, flags False) and batches into the spaces."""
    with SubprocVectorEnv(TASK, num_envs=3, num_workers=2, seed=0) as venv:
        assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
        obs, _ = venv.reset()
        assert venv.observation_space.contains(obs)
        limit, zero = _limit(venv), _zero(venv)
        for _ in range(limit):
            obs, rew, term, trunc, _ = venv.step(zero)
        assert trunc.all() and not term.any()
        obs, rew, term, trunc, _ = venv.step(zero)
        assert not trunc.any() and (rew == 0).all()
        fresh = make_task_env(TASK, disable_env_checker=True)
        fresh.reset(seed=0)
        for _ in range(limit):
            fresh.step(zero[0])
        # after its own truncation the sub-env 0 reset from its RNG stream, like a single env
        np.testing.assert_array_equal(obs["desired_goal"][0], fresh.reset()[0]["desired_goal"])


def test_same_step_autoreset_reports_final_obs():
    with SubprocVectorEnv(
        TASK, num_envs=2, num_workers=1, seed=3, autoreset_mode=AutoresetMode.SAME_STEP
    ) as venv:
        venv.reset()
        limit, zero = _limit(venv), _zero(venv)
        for _ in range(limit - 1):
            _, _, _, trunc, info = venv.step(zero)
            assert "final_obs" not in info
        obs, _, _, trunc, info = venv.step(zero)
        assert trunc.all() and info["_final_obs"].all()
        final = info["final_obs"][0]
        assert not np.array_equal(final["achieved_goal"], obs["achieved_goal"][0])


def test_disabled_autoreset_with_reset_mask():
    with SubprocVectorEnv(
        TASK, num_envs=2, num_workers=2, seed=5, autoreset_mode=AutoresetMode.DISABLED
    ) as venv:
        venv.reset()
        venv.step(venv.action_space.sample())
        moved, _, _, _, _ = venv.step(venv.action_space.sample())
        after, info = venv.reset(seed=[11, None], options={"reset_mask": np.array([True, False])})
        np.testing.assert_array_equal(after["observation"][1], moved["observation"][1])
        assert info["_is_success"].tolist() == [True, False]
        single = make_task_env(TASK, disable_env_checker=True)
        np.testing.assert_array_equal(
            after["desired_goal"][0], single.reset(seed=11)[0]["desired_goal"]
        )


def test_worker_exception_surfaces_with_task_and_traceback():
    with SubprocVectorEnv(TASK, num_envs=4, num_workers=2, seed=0) as venv:
        venv.reset()
        actions = venv.action_space.sample()
        actions[3, 0] = np.nan
        with pytest.raises(WorkerError) as caught:
            venv.step(actions)
        message = str(caught.value)
        assert TASK in message and "sub-env 3" in message and "worker 1" in message
        assert "worker traceback" in message and "Traceback" in caught.value.remote_traceback
        assert caught.value.remote_type == "ControlError"
        venv.reset()  # the vector env stays usable after a reset
        venv.step(venv.action_space.sample())


def test_bad_task_fails_fast_with_its_name():
    with pytest.raises(gym.error.Error):
        SubprocVectorEnv("twinbridge/NoSuchTask-v0", num_envs=2, num_workers=1)
    with pytest.raises(ValueError, match="num_workers"):
        VectorEnvConfig(TASK, num_envs=2, num_workers=3)


def test_close_leaves_no_child_processes():
    before = _children()
    venv = SubprocVectorEnv(TASK, num_envs=2, num_workers=2)
    pids = venv.worker_pids
    assert set(pids) <= _children()
    venv.close()
    assert not any(_alive(pid) for pid in pids)
    assert _children() <= before | _helpers()
    with pytest.raises(WorkerError, match="closed"):
        venv.step(venv.action_space.sample())


def _helpers() -> set[int]:
    """multiprocessing's own long-lived helpers (resource tracker), which are not workers."""
    out = set()
    for pid in _children():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"resource_tracker" in cmdline or b"forkserver" in cmdline:
            out.add(pid)
    return out


def test_workers_die_with_their_parent(tmp_path: Path):
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {str(REPO)!r})
            from sim.vector import SubprocVectorEnv
            if __name__ == "__main__":
                venv = SubprocVectorEnv({TASK!r}, num_envs=2, num_workers=2)
                print(*venv.worker_pids, flush=True)
                os.kill(os.getpid(), 9)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def test_compute_reward_batch_passthrough():
    with SubprocVectorEnv(TASK, num_envs=2, num_workers=1, seed=0) as venv:
        obs, _ = venv.reset()
        reward = venv.compute_reward(obs["achieved_goal"], obs["desired_goal"], {})
        assert np.shape(reward) == (2,)


def test_dead_worker_and_misuse_raise_clear_errors():
    with SubprocVectorEnv(TASK, num_envs=2, num_workers=2, seed=0) as venv:
        venv.reset()
        venv.step_async(venv.action_space.sample())
        with pytest.raises(WorkerError, match="in flight"):
            venv.step_async(venv.action_space.sample())
        venv.step_wait()
        os.kill(venv.worker_pids[1], signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(WorkerError, match=r"worker 1 .*(died|gone).*SIGKILL"):
            venv.step(venv.action_space.sample())
