"""Fetch twin: model edits, IK, Gymnasium-Robotics semantics and the scripted controller.

Run: `python -m pytest -q tests/test_fetch.py`
"""

from __future__ import annotations

from types import SimpleNamespace

import mujoco
import numpy as np
import pytest

from sim.envs import make_task_env
from sim.errors import UnknownNameError
from sim.ik import DlsIK
from sim.robots.fetch.builder import ARM_ACTUATORS, ARM_JOINTS, GRIP_SITE, SCENES
from sim.robots.models import load_model
from sim.scripted import ScriptedFetchPolicy, success_rate
from sim.tasks.fetch import DOWN_QUAT, IK_SEED
from sim.twin import Twin

FETCH_TASKS = ("fetch-reach", "fetch-push", "fetch-slide", "fetch-pick-and-place")


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_arm_is_position_servoed_without_mocap(scene: str) -> None:
    model = load_model("fetch", scene)
    assert model.nmocap == 0
    welds = [i for i in range(model.neq) if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD]
    assert welds == []
    for actuator, joint in zip(ARM_ACTUATORS, ARM_JOINTS, strict=True):
        view = model.actuator(actuator)
        assert view.trntype[0] == mujoco.mjtTrn.mjTRN_JOINT
        assert model.joint(int(view.trnid[0])).name == joint
        assert view.biastype[0] == mujoco.mjtBias.mjBIAS_AFFINE  # position servo
        assert view.gainprm[0] == -view.biasprm[1] > 0
        assert view.forcelimited[0] and view.ctrllimited[0]
    assert model.actuator("shoulder_lift").forcerange[1] == pytest.approx(131.76)
    joint_names = {model.joint(i).name for i in range(model.njnt)}
    assert not joint_names & {"slide0", "slide1", "slide2", "torso_lift_joint"}


def test_ik_reaches_random_reachable_targets() -> None:
    ik = DlsIK(load_model("fetch", "push"), GRIP_SITE, ARM_JOINTS)
    rng = np.random.default_rng(0)
    home = np.array(IK_SEED)
    errors = []
    for _ in range(100):
        position, _ = ik.forward(rng.uniform(ik.lower, ik.upper))
        result = ik.solve(position, q_init=home, rng=rng)
        errors.append(result.position_error_m)
    assert max(errors) < 0.005


def test_ik_solve_leaves_the_twin_untouched() -> None:
    twin = Twin.load("fetch", "reach")
    before = twin.get_state()
    ik = DlsIK(twin.model, GRIP_SITE, ARM_JOINTS)
    result = ik.solve(np.array([1.3, 0.75, 0.6]), DOWN_QUAT, q_init=np.array(IK_SEED))
    assert result.converged and result.rotation_error_rad < 0.01
    np.testing.assert_array_equal(twin.get_state(), before)


@pytest.mark.parametrize(("orientation", "clamp"), [(DOWN_QUAT, False), (None, True)])
def test_the_compiled_ik_step_computes_the_python_steps_bits(orientation, clamp: bool) -> None:
    """The servo's compiled step (numba over MuJoCo's C functions, run every control step)
    against the same step through the Python bindings, from states of a moving arm."""
    twin = Twin.load("fetch", "reach")
    servo = DlsIK(twin.model, GRIP_SITE, ARM_JOINTS).servo(twin.data, orientation, clamp=clamp)
    assert servo._kernel is not None  # MuJoCo's library is found here
    rng = np.random.default_rng(0)
    compiled, python = np.zeros(len(ARM_JOINTS)), np.zeros(len(ARM_JOINTS))
    for _ in range(40):
        twin.step(nstep=5)
        target = twin.data.site(GRIP_SITE).xpos + rng.normal(0.0, 0.1, 3)
        servo.targets(target, compiled)
        servo._python_targets(target, python)
        np.testing.assert_array_equal(compiled, python)
        twin.data.ctrl[: len(ARM_JOINTS)] = compiled
    assert np.ptp(compiled) > 0


@pytest.mark.parametrize("task", FETCH_TASKS + tuple(f"{task}-v0" for task in FETCH_TASKS))
def test_observation_layout_matches_gymnasium_robotics(task: str) -> None:
    """Gymnasium-Robotics' values first; fetch-reach (v1) appends target_lead and the arm's
    joint state."""
    env = make_task_env(task, disable_env_checker=True)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, *_ = env.step(rng.uniform(-1, 1, 4))
    o, data = obs["observation"], env.unwrapped.data
    grip = data.site(GRIP_SITE).xpos
    np.testing.assert_allclose(o[:3], grip)
    config = env.unwrapped.task.config
    lead = 3 if config.action_moves == "target" else 0
    arm = 14 if config.observe_arm_joints else 0
    assert lead + arm == (17 if task == "fetch-reach" else 0)  # sim/tasks/__init__.py
    base = 10 if task.startswith("fetch-reach") else 25
    assert o.shape == (base + lead + arm,)
    if lead:
        np.testing.assert_allclose(o[base : base + 3], env.unwrapped.task._target - grip)
    if arm:
        joints = [data.joint(j) for j in ARM_JOINTS]
        np.testing.assert_allclose(o[base + 3 : base + 10], [j.qpos[0] for j in joints])
        dt = env.unwrapped.dt
        np.testing.assert_allclose(o[base + 10 :], [j.qvel[0] * dt for j in joints])
    if task.startswith("fetch-reach"):
        np.testing.assert_allclose(obs["achieved_goal"], grip)
        return
    np.testing.assert_allclose(o[3:6], data.site("object0").xpos)
    np.testing.assert_allclose(o[6:9], o[3:6] - o[:3])
    np.testing.assert_allclose(obs["achieved_goal"], o[3:6])
    fingers = [data.joint(j).qpos[0] for j in ("r_gripper_finger_joint", "l_gripper_finger_joint")]
    np.testing.assert_allclose(o[9:11], fingers)
    # rotation as gymnasium-robotics' mat2euler; velocities times dt, object's relative
    rotations = pytest.importorskip("gymnasium_robotics.utils.rotations")
    object_mat = data.site("object0").xmat.reshape(3, 3)
    np.testing.assert_allclose(o[11:14], rotations.mat2euler(object_mat))
    dt = env.unwrapped.dt
    grip_vel = np.zeros(6)
    mujoco.mj_objectVelocity(
        env.unwrapped.model, data, mujoco.mjtObj.mjOBJ_SITE, data.site(GRIP_SITE).id, grip_vel, 0
    )
    np.testing.assert_allclose(o[20:23], grip_vel[3:] * dt, atol=1e-12)
    object_vel = np.zeros(6)
    mujoco.mj_objectVelocity(
        env.unwrapped.model, data, mujoco.mjtObj.mjOBJ_SITE, data.site("object0").id, object_vel, 0
    )
    np.testing.assert_allclose(o[14:17], (object_vel[3:] - grip_vel[3:]) * dt, atol=1e-6)
    np.testing.assert_allclose(o[17:20], object_vel[:3] * dt, atol=1e-6)


@pytest.mark.parametrize("task", FETCH_TASKS)
def test_reward_and_success_agree_with_gymnasium_robotics(task: str) -> None:
    fetch_env = pytest.importorskip("gymnasium_robotics.envs.fetch.fetch_env")
    env = make_task_env(task, disable_env_checker=True)
    ours = env.unwrapped
    rng = np.random.default_rng(0)
    desired = rng.uniform(0.3, 1.5, (200, 3))
    achieved = desired + rng.normal(0.0, 0.04, (200, 3))
    theirs = SimpleNamespace(distance_threshold=0.05, reward_type="sparse")
    expected = fetch_env.get_base_fetch_env(object).compute_reward(theirs, achieved, desired, {})
    np.testing.assert_array_equal(ours.compute_reward(achieved, desired, {}), expected)
    for a, d, e in zip(achieved[:20], desired[:20], expected[:20], strict=True):
        assert ours.compute_reward(a, d, {}) == e
        assert bool(ours.task.is_success(a, d)) == (fetch_env.goal_distance(a, d) < 0.05)


@pytest.mark.parametrize("task", FETCH_TASKS)
def test_seeded_resets_are_deterministic_and_cheap(task: str) -> None:
    env = make_task_env(task, disable_env_checker=True)
    first, _ = env.reset(seed=7)
    env.step(env.action_space.sample())
    second, _ = env.reset(seed=7)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    goal_marker = env.unwrapped.data.site("target0").xpos
    mujoco.mj_forward(env.unwrapped.model, env.unwrapped.data)
    np.testing.assert_allclose(goal_marker, second["desired_goal"], atol=1e-12)
    if task != "fetch-reach":
        distance = np.linalg.norm(second["observation"][6:8])
        assert distance >= 0.1  # object at least 0.1 m from the gripper, as gymnasium's


@pytest.mark.parametrize(
    ("task", "threshold"),
    [("fetch-reach", 0.8), ("fetch-push", 0.8), ("fetch-pick-and-place", 0.8)],
)
def test_scripted_policy_solves_the_task(task: str, threshold: float) -> None:
    assert success_rate(task, episodes=20, seed=0) >= threshold


def test_scripted_policy_rejects_unknown_task() -> None:
    with pytest.raises(UnknownNameError):
        ScriptedFetchPolicy("fetch-juggle")


def test_on_the_lagging_arm_an_action_moves_the_target_and_zero_holds_it() -> None:
    """fetch-reach (robot actuation): the gripper lags its target, so an action moves the
    previous target (at most max_lead_m ahead of the gripper per axis) and the observation
    carries that lead and the arm's joint state; a zero action then holds the target and the
    gripper settles on it."""
    env = make_task_env("fetch-reach", disable_env_checker=True)
    task = env.unwrapped.task
    fields = task.observation_fields()
    assert fields[-3:] == [("target_lead", 3, "m"), ("arm_qpos", 7, "rad"),
                           ("arm_qvel", 7, "rad/step")]  # fmt: skip
    lead = slice(10, 13)
    obs, _ = env.reset(seed=3)
    assert len(obs["observation"]) == sum(size for _, size, _ in fields)
    np.testing.assert_allclose(obs["observation"][lead], 0.0, atol=1e-9)
    leads = []
    for _ in range(6):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
        leads.append(obs["observation"][lead].copy())
    # bounded when the action is taken; a rate-limited joint path can then bend the gripper
    # a few millimetres away from its target during the step
    assert np.abs(leads).max() <= task.config.max_lead_m + 0.01
    assert leads[-1][0] > 0.02  # the arm's speed limit leaves it behind a 1.25 m/s target
    target = obs["observation"][:3] + obs["observation"][lead]
    for _ in range(25):
        obs, *_ = env.step(np.zeros(4, dtype=np.float32))
    held = obs["observation"][:3] + obs["observation"][lead]
    np.testing.assert_allclose(held, target, atol=1e-9)
    assert np.linalg.norm(obs["observation"][lead]) < 0.01  # the gripper reached the target


def test_an_ideal_task_keeps_gymnasiums_layout_and_action() -> None:
    """fetch-reach-v0 keeps Gymnasium-Robotics' 10 values: its action moves the gripper."""
    env = make_task_env("fetch-reach-v0", disable_env_checker=True)
    obs, _ = env.reset(seed=3)
    assert len(obs["observation"]) == 10
    assert env.unwrapped.task.config.action_moves == "gripper"
