"""Suite-wide checks run over every registered task (house style rule 5)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.envs import make_task_env
from sim.errors import ConfigError, ControlError, UnknownNameError
from sim.tasks import TASK_KINDS, TASKS, declared_task, task_class

TASK_NAMES = list(TASKS)


def _make(name: str) -> gym.Env:
    return make_task_env(name, disable_env_checker=True)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_gymnasium_env_checker_passes(name: str) -> None:
    env = make_task_env(name)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seed_and_actions_give_identical_trajectories(name: str) -> None:
    trajectories = []
    for _ in range(2):
        env = _make(name)
        actions = np.random.default_rng(7).uniform(-1, 1, (40, *env.action_space.shape))
        obs, _ = env.reset(seed=123)
        steps = [obs]
        for action in actions:
            steps.append(env.step(action)[0])
        trajectories.append(steps)
        env.close()
    for first, second in zip(*trajectories, strict=True):
        for key in first:
            np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.parametrize("name", TASK_NAMES)
def test_different_seeds_give_different_goals(name: str) -> None:
    env = _make(name)
    goals = {tuple(np.round(env.reset(seed=s)[0]["desired_goal"], 9)) for s in range(5)}
    env.close()
    assert len(goals) == 5


@pytest.mark.parametrize("name", TASK_NAMES)
def test_thousand_random_steps_raise_no_mujoco_warning(name: str) -> None:
    env = _make(name)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(1000):  # Twin.step raises PhysicsError on any MuJoCo warning
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    counts = env.unwrapped.data.warning.number
    env.close()
    assert counts.sum() == 0, counts


@pytest.mark.parametrize("name", TASK_NAMES)
def test_batch_compute_reward_equals_per_sample(name: str) -> None:
    env = _make(name)
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=1)
    base = obs["achieved_goal"]
    # Goals near the achieved one, so both rewards (0 and -1) occur in the batch.
    achieved = base + rng.normal(0, 0.01, (64, base.size))
    desired = base + rng.normal(0, 0.01, (64, base.size))
    unwrapped = env.unwrapped
    batch = unwrapped.compute_reward(achieved, desired, [{}] * 64)
    single = [unwrapped.compute_reward(a, d, {}) for a, d in zip(achieved, desired, strict=True)]
    np.testing.assert_array_equal(batch, single)
    assert batch.shape == (64,)
    grid = unwrapped.compute_reward(achieved.reshape(8, 8, -1), desired.reshape(8, 8, -1), None)
    np.testing.assert_array_equal(grid.reshape(-1), batch)
    env.close()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_reward_is_zero_exactly_on_success(name: str) -> None:
    env = _make(name)
    env.reset(seed=2)
    for _ in range(5):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        assert reward == (0.0 if info["is_success"] else -1.0)
        assert reward == env.unwrapped.compute_reward(
            obs["achieved_goal"], obs["desired_goal"], info
        )
    env.close()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_unwrapped_env_exposes_mujoco_like_mujocoenv(name: str) -> None:
    env = _make(name)
    unwrapped = env.unwrapped
    assert unwrapped.frame_skip == 20
    assert unwrapped.model.opt.timestep == pytest.approx(0.002)
    assert unwrapped.dt == pytest.approx(0.04)  # 25 Hz, as Gymnasium-Robotics
    assert unwrapped.data.qpos.shape == (unwrapped.model.nq,)
    assert env.spec.max_episode_steps == TASKS[name].max_episode_steps
    env.close()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_non_finite_action_is_refused_before_stepping(name: str) -> None:
    env = _make(name)
    env.reset(seed=0)
    before = env.unwrapped.twin.get_state()
    action = np.zeros(env.action_space.shape)
    action[0] = np.nan
    with pytest.raises(ControlError, match="non-finite"):
        env.step(action)
    np.testing.assert_array_equal(env.unwrapped.twin.get_state(), before)
    env.close()


def test_every_gym_id_is_registered_by_importing_sim() -> None:
    ids = {spec.gym_id for spec in TASKS.values()}
    assert ids <= set(gym.registry)
    assert {
        "twinbridge/FetchReach-v0",
        "twinbridge/FetchPush-v0",
        "twinbridge/FetchSlide-v0",
        "twinbridge/FetchPickAndPlace-v0",
        "twinbridge/HandReach-v0",
        "twinbridge/HandBlock-v0",
        "twinbridge/HandEgg-v0",
        "twinbridge/HandPen-v0",
    } <= ids


def test_hand_block_variants_are_selectable_through_gym_make() -> None:
    for variant in ("rotate-z", "rotate-parallel", "rotate-xyz", "full"):
        env = gym.make("twinbridge/HandBlock-v0", variant=variant, disable_env_checker=True)
        assert env.unwrapped.task.variant == variant
        env.close()


def test_unknown_task_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="fetch-push") as error:
        make_task_env("fetch-pushh")
    assert "valid tasks" in str(error.value)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_the_registered_control_rate_is_the_envs(name: str) -> None:
    """The table's rate is what the robot side and recordings use without building the env."""
    env = make_task_env(name, disable_env_checker=True)
    try:
        assert env.unwrapped.dt == pytest.approx(1.0 / TASKS[name].control_rate_hz)
    finally:
        env.close()


@pytest.mark.parametrize("gym_id", sorted({spec.gym_id for spec in TASKS.values()}))
def test_every_gym_id_makes_its_robots_task_without_arguments(gym_id: str) -> None:
    """An id carries the arguments its tasks share (a robot's declared task: all of them)."""
    robots = {spec.robot for spec in TASKS.values() if spec.gym_id == gym_id}
    env = gym.make(gym_id, disable_env_checker=True)
    try:
        assert {env.unwrapped.task.robot} == robots
    finally:
        env.close()


def test_a_robot_folder_declares_its_tasks_as_data() -> None:
    """robot.yaml `tasks:` entries are registered like built-in tasks, by kind."""
    spec = declared_task("r", {"name": "r-reach", "kind": "reach", "gym_id": "x/R-v0",
                               "max_episode_steps": 7, "site": "ee"})  # fmt: skip
    assert (spec.robot, spec.max_episode_steps, spec.task_class) == ("r", 7, TASK_KINDS["reach"])
    assert spec.kwargs == {"site": "ee", "robot": "r"}
    with pytest.raises(ConfigError, match=r"sim/robots/r/robot.yaml, tasks: task kind 'x'"):
        declared_task("r", {"name": "r-x", "kind": "x"})
    with pytest.raises(ConfigError, match=r"sim/robots/r/robot.yaml, tasks: .*gym_id"):
        declared_task("r", {"name": "r-reach", "kind": "reach", "max_episode_steps": 7})
    with pytest.raises(ConfigError, match=r"robot.yaml, tasks: .*a reach task takes scene, site"):
        task_class(TASK_KINDS["reach"])("r", scene="reach", sight="ee")
