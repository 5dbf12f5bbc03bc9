"""Domain randomization: every randomizer changes exactly what it claims and restores nominal;
the action and observation pipelines do what their parameters say; configs and values
outside their legal ranges are refused by name; randomized envs stay deterministic."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim.envs import make_task_env
from sim.randomization import PARAMETERS, RandomizationConfig, RandomizationError
from sim.randomization.config import load_randomization
from sim.randomization.engine import EpisodeRandomizer
from sim.randomization.physics import PHYSICS_RANDOMIZERS, object_bodies, robot_dofs
from sim.robots import ROBOT_FOLDERS, get_robot
from sim.robots.models import build_spec

TWINS = [("fetch-push", "fetch"), ("hand-block-rotate-z", "shadow_hand")]  # with objects
EVERY_ROBOT = [(get_robot(r).default_task, r) for r in ROBOT_FOLDERS]  # each on its own task
# Every model array a physics randomizer may touch.
ARRAYS = (
    "geom_friction", "body_mass", "body_inertia", "body_ipos", "dof_damping", "dof_armature",
    "actuator_gainprm", "actuator_biasprm", "actuator_forcerange", "wrap_prm", "geom_size",
    "geom_rbound", "geom_aabb", "geom_pos",  # not site_pos: tasks move goal sites
)  # fmt: skip


def _env(task: str, ranges: dict | None = None, **adr):
    config = RandomizationConfig(ranges=ranges or {}, **adr)
    return make_task_env(task, disable_env_checker=True, randomization=config).unwrapped


def _snapshot(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    out = {name: getattr(model, name).copy() for name in ARRAYS}
    out["opt.gravity"] = model.opt.gravity.copy()
    out["opt.timestep"] = np.array(model.opt.timestep)
    return out


def _expected_changes(model, nominal, path: str, v: float) -> dict[str, np.ndarray]:
    """What `path` = v must do to the nominal arrays (all others stay bit-identical)."""
    objects = object_bodies(model)
    dofs = robot_dofs(model)
    out: dict[str, np.ndarray] = {}
    if path == "physics.friction:scale":
        out["geom_friction"] = nominal["geom_friction"].copy()
        out["geom_friction"][:, 0] *= v
    elif path == "physics.joint_damping:scale":
        out["dof_damping"] = nominal["dof_damping"].copy()
        out["dof_damping"][dofs] *= v
    elif path == "physics.armature:scale":
        out["dof_armature"] = nominal["dof_armature"].copy()
        out["dof_armature"][dofs] *= v
    elif path == "physics.actuator_force_limit:scale":
        out["actuator_forcerange"] = nominal["actuator_forcerange"].copy()
        out["actuator_forcerange"][model.actuator_forcelimited.astype(bool)] *= v
    elif path == "physics.timestep:scale":
        out["opt.timestep"] = nominal["opt.timestep"] * v
    elif path == "physics.object_mass:scale":
        out["body_mass"] = nominal["body_mass"].copy()
        out["body_mass"][objects] *= v
        out["body_inertia"] = nominal["body_inertia"].copy()
        out["body_inertia"][objects] *= v
    elif path == "physics.link_mass:scale":
        links = [b for b in range(1, model.nbody) if b not in objects and model.body_mass[b] > 0]
        out["body_mass"] = nominal["body_mass"].copy()
        out["body_mass"][links] *= v
        out["body_inertia"] = nominal["body_inertia"].copy()
        out["body_inertia"][links] *= v
    return out


SIMPLE = (
    "physics.friction:scale", "physics.joint_damping:scale", "physics.armature:scale",
    "physics.actuator_force_limit:scale", "physics.timestep:scale",
    "physics.object_mass:scale", "physics.link_mass:scale",
)  # fmt: skip


@pytest.mark.parametrize(("task", "robot"), TWINS)
@pytest.mark.parametrize("path", SIMPLE)
def test_physics_randomizer_changes_exactly_its_arrays_and_restores(task, robot, path):
    env = _env(task, {path: [1.3, 1.3]})
    model = env.model
    nominal = _snapshot(model)
    env.reset(seed=0)
    after = _snapshot(model)
    expected = _expected_changes(model, nominal, path, 1.3)
    assert expected, path
    for name, array in after.items():
        want = expected.get(name, nominal[name])
        np.testing.assert_allclose(array, want, rtol=1e-12, atol=0, err_msg=f"{path}: {name}")
    env.randomizer.restore()
    for name, array in _snapshot(model).items():
        np.testing.assert_array_equal(array, nominal[name], err_msg=f"restore {path}: {name}")


@pytest.mark.parametrize(("task", "robot"), EVERY_ROBOT)
def test_actuator_gain_keeps_position_servos_servos(task, robot):
    env = _env(task, {"physics.actuator_gain:scale": [0.7, 0.7]})
    kp = env.model.actuator_gainprm[:, 0].copy()
    bias = env.model.actuator_biasprm[:, 1].copy()
    env.reset(seed=0)
    np.testing.assert_allclose(env.model.actuator_gainprm[:, 0], 0.7 * kp, rtol=1e-12)
    servo = np.isclose(bias, -kp)
    assert servo.any()
    np.testing.assert_allclose(env.model.actuator_biasprm[servo, 1], 0.7 * bias[servo])
    np.testing.assert_array_equal(env.model.actuator_biasprm[~servo, 1], bias[~servo])


def test_tendon_coupling_scales_the_first_coefficient_of_coupling_tendons():
    env = _env("hand-block-rotate-z", {"physics.tendon_coupling:scale": [1.5, 1.5]})
    model = env.model
    nominal = model.wrap_prm.copy()
    env.reset(seed=0)
    coupled = [model.tendon_adr[t] for t in range(model.ntendon)
               if model.tendon(t).name.endswith("J1c")]  # fmt: skip
    assert len(coupled) == 4  # FF, MF, RF, LF
    changed = np.flatnonzero(model.wrap_prm != nominal)
    assert sorted(changed.tolist()) == sorted(int(a) for a in coupled)
    np.testing.assert_allclose(model.wrap_prm[coupled], 1.5 * nominal[coupled])


def test_tendon_coupling_is_refused_on_the_fetch_by_name():
    with pytest.raises(
        RandomizationError, match=r"tendon_coupling:scale cannot be randomized on fetch"
    ):
        _env("fetch-push", {"physics.tendon_coupling:scale": [0.9, 1.1]})


def test_gravity_tilt_keeps_magnitude_and_tilts_by_the_angle():
    env = _env("fetch-push", {"physics.gravity_tilt:rad": [0.2, 0.2]})
    nominal = env.model.opt.gravity.copy()
    env.reset(seed=5)
    g = env.model.opt.gravity
    assert np.linalg.norm(g) == pytest.approx(np.linalg.norm(nominal))
    angle = np.arccos(g @ nominal / (np.linalg.norm(g) * np.linalg.norm(nominal)))
    assert angle == pytest.approx(0.2, abs=1e-12)


@pytest.mark.parametrize("size", [0.8, 1.25])
def test_object_size_matches_what_mjspec_compiles_at_that_size(size):
    """Direct model edits give the sizes and bounding volumes MjSpec compiles, and the mass
    and inertia of the same object at constant density."""
    env = _env("fetch-push", {"physics.object_size:scale": [size, size]})
    model = env.model
    body = int(object_bodies(model)[0])
    mass, inertia = model.body_mass[body], model.body_inertia[body].copy()
    env.reset(seed=0)
    spec = build_spec("fetch", "push")
    name = model.body(body).name
    for geom in spec.body(name).geoms:
        geom.size = geom.size * size
    compiled = spec.compile()
    geom = compiled.body(name).geomadr[0]
    ours = model.body(name).geomadr[0]
    for array in ("geom_size", "geom_rbound", "geom_aabb"):
        np.testing.assert_allclose(getattr(model, array)[ours], getattr(compiled, array)[geom],
                                   rtol=1e-9, err_msg=array)  # fmt: skip
    assert model.body_mass[body] == pytest.approx(mass * size**3)
    np.testing.assert_allclose(model.body_inertia[body], inertia * size**5)


# -- action pipeline -----------------------------------------------------------------------
def _ctrl_trace(env, actions, seed=0):
    env.reset(seed=seed)
    trace = []
    for action in actions:
        env.step(action)
        trace.append(env.data.ctrl.copy())
    return np.array(trace)


def test_everything_at_nominal_is_the_plain_env_bit_for_bit():
    nominal = {p: [PARAMETERS[p].nominal] * 2 for p in PARAMETERS if p.split(".")[0] in
               ("action", "observation") or p == "physics.friction:scale"}  # fmt: skip
    randomized = _env("fetch-push", nominal)
    plain = make_task_env("fetch-push", disable_env_checker=True).unwrapped
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 4))
    for env in (randomized, plain):
        env.reset(seed=4)
    for action in actions:
        a, b = randomized.step(action)[0], plain.step(action)[0]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("latency", [1, 2])
def test_latency_delays_the_command_by_whole_steps(latency):
    """Hand targets are absolute, so the command of step k is a function of action k alone."""
    actions = np.random.default_rng(1).uniform(-1, 1, (8, 20))
    plain = _ctrl_trace(_env("hand-block-rotate-z"), actions)
    delayed_env = _env("hand-block-rotate-z", {"action.latency:steps": [latency, latency]})
    delayed_env.reset(seed=0)
    initial = delayed_env.data.ctrl.copy()
    delayed = _ctrl_trace(delayed_env, actions)
    for k in range(latency):
        np.testing.assert_array_equal(delayed[k], initial)
    np.testing.assert_array_equal(delayed[latency:], plain[: len(actions) - latency])


def test_actuator_delay_switches_each_actuator_after_its_own_substeps(monkeypatch):
    env = _env("hand-block-rotate-z", {"action.actuator_delay:substeps": [6, 6]})
    env.reset(seed=2)
    delays = env.randomizer.action._delays
    assert delays is not None and delays.min() >= 0 and delays.max() <= 6
    assert len(set(delays.tolist())) > 1
    before = env.data.ctrl.copy()
    seen: list[np.ndarray] = []
    original = env.twin.step

    def recording_step(ctrl=None, nstep=1):
        original(ctrl, nstep)
        seen.extend([env.data.ctrl.copy()] * nstep)

    monkeypatch.setattr(env.twin, "step", recording_step)
    env.step(np.full(20, 0.5))
    assert len(seen) == env.task.frame_skip
    after = seen[-1]
    for j, delay in enumerate(delays.tolist()):
        column = np.array([s[j] for s in seen])
        np.testing.assert_array_equal(column[:delay], before[j])
        np.testing.assert_array_equal(column[delay:], after[j])


def test_backlash_ignores_command_changes_inside_the_deadband():
    fraction = 0.05
    env = _env("hand-block-rotate-z", {"action.backlash:ctrl_fraction": [fraction, fraction]})
    env.reset(seed=0)
    width = np.ptp(env.model.actuator_ctrlrange, axis=1)
    start = env.data.ctrl.copy()
    env.step(np.zeros(20))  # the action 0 target: centre of each range
    centre = env.model.actuator_ctrlrange.mean(axis=1)
    moved = env.data.ctrl.copy()
    np.testing.assert_allclose(np.abs(moved - centre), np.minimum(
        np.abs(start - centre), fraction * width), atol=1e-12)  # fmt: skip
    small = 0.5 * fraction * 2  # an action change of half the deadband: 0.5*f*width/half-range
    env.step(np.full(20, small / 2))
    np.testing.assert_array_equal(env.data.ctrl, moved)


def test_action_noise_has_the_configured_std():
    env = _env("hand-block-rotate-z", {"action.noise:std": [0.1, 0.1]})
    env.reset(seed=0)
    pipeline = env.randomizer.action
    noisy = np.array([pipeline._perturbed(np.zeros(20)) for _ in range(2000)])
    assert noisy.std() == pytest.approx(0.1, rel=0.05)
    assert abs(noisy.mean()) < 0.01


# -- observation pipeline ------------------------------------------------------------------
def _observations(env, actions, seed=0):
    obs = [env.reset(seed=seed)[0]["observation"]]
    obs += [env.step(a)[0]["observation"] for a in actions]
    return np.array(obs)


def test_observation_delay_shows_the_observation_of_k_steps_ago():
    actions = np.random.default_rng(2).uniform(-1, 1, (10, 4))
    true = _observations(_env("fetch-push"), actions)
    seen = _observations(_env("fetch-push", {"observation.delay:steps": [2, 2]}), actions)
    np.testing.assert_array_equal(seen[:3], np.repeat(true[:1], 3, axis=0))
    np.testing.assert_array_equal(seen[3:], true[1:-2])


def test_observation_bias_is_constant_in_an_episode_and_noise_fresh_each_step():
    actions = np.zeros((30, 4))
    true = _observations(_env("fetch-push"), actions)
    biased = _observations(_env("fetch-push", {"observation.bias:std": [0.01, 0.01]}), actions)
    offset = biased - true
    np.testing.assert_allclose(offset, np.repeat(offset[:1], len(offset), axis=0), atol=1e-12)
    assert 0.003 < offset[0].std() < 0.03
    noisy = _observations(_env("fetch-push", {"observation.noise:std": [0.01, 0.01]}), actions)
    assert (noisy - true).std() == pytest.approx(0.01, rel=0.15)
    assert np.abs(np.diff(noisy - true, axis=0)).min() > 0


def test_observation_dropout_repeats_the_last_observation_at_its_rate():
    env = _env("fetch-push", {"observation.dropout:probability": [0.3, 0.3]})
    repeats, steps = 0, 0
    for seed in range(6):
        obs = env.reset(seed=seed)[0]["observation"]
        for _ in range(50):
            new = env.step(np.random.default_rng(seed).uniform(-1, 1, 4))[0]["observation"]
            repeats += int(np.array_equal(new, obs))
            steps += 1
            obs = new
    assert repeats / steps == pytest.approx(0.3, abs=0.07)


# -- sensor pipeline -----------------------------------------------------------------------
SENSORS = ("sensor.joint_position_noise:std", "sensor.joint_velocity_noise:std",
           "sensor.object_position_noise:std")  # fmt: skip
GRIP, OBJ, FINGERS, FINGER_VEL = slice(0, 3), slice(3, 6), slice(9, 11), slice(23, 25)


def _sensed(stds, actions, seed=0):
    """(seen, true) observations of fetch-push with these sensor noise levels."""
    ranges = {path: [std, std] for path, std in zip(SENSORS, stds, strict=True)}
    env = make_task_env(
        "fetch-push", disable_env_checker=True, privileged_state=True,
        randomization=RandomizationConfig(ranges=ranges),
    ).unwrapped  # fmt: skip
    obs = [env.reset(seed=seed)[0]] + [env.step(a)[0] for a in actions]
    seen = np.array([o["observation"] for o in obs])
    return seen, np.array([o["true_observation"] for o in obs])


def test_sensor_noise_never_reaches_the_physics():
    actions = np.random.default_rng(4).uniform(-1, 1, (25, 4))
    true = _observations(_env("fetch-push"), actions)
    seen, true_too = _sensed((0.003, 0.03, 0.008), actions)
    np.testing.assert_array_equal(true_too, true)  # the twin's trajectory is the plain one
    assert np.abs(seen - true).max() > 0.003


def test_joint_noise_moves_the_gripper_by_the_arm_and_leaves_the_object():
    seen, true = _sensed((0.002, 0.0, 0.0), np.zeros((40, 4)))
    error = seen - true
    assert error[:, FINGERS].std() == pytest.approx(0.002, rel=0.25)  # measured joints
    assert 0.001 < error[:, GRIP].std() < 0.01  # seven joints' noise through the arm's lever
    np.testing.assert_allclose(error[:, OBJ], 0.0, atol=1e-6)  # at rest, measured exactly


def test_velocity_noise_shows_in_the_velocities_only():
    seen, true = _sensed((0.0, 0.02, 0.0), np.zeros((40, 4)))
    error = seen - true
    dt = 0.04
    assert error[:, FINGER_VEL].std() == pytest.approx(0.02 * dt, rel=0.25)
    # positions untouched (1e-6: the plain observation's kinematics are the last substep's)
    np.testing.assert_allclose(error[:, :11], 0.0, atol=1e-6)


def test_object_noise_is_filtered_by_the_robot_sides_estimate():
    seen, true = _sensed((0.0, 0.0, 0.005), np.zeros((60, 4)))
    error = seen - true
    # four measurements a step through the policy node's Kalman filter: less than one's 5 mm
    assert 0.0005 < error[10:, OBJ].std() < 0.004
    np.testing.assert_allclose(error[:, GRIP], 0.0, atol=1e-6)


def test_sensor_noise_runs_on_the_hand_and_leaves_its_physics_alone():
    ranges = {path: [0.01, 0.01] for path in SENSORS}
    noisy = make_task_env(
        "hand-block-rotate-z", disable_env_checker=True, privileged_state=True,
        randomization=RandomizationConfig(ranges=ranges),
    )  # fmt: skip
    plain = make_task_env("hand-block-rotate-z", disable_env_checker=True)
    (seen, _), (true, _) = noisy.reset(seed=5), plain.reset(seed=5)
    for action in np.random.default_rng(5).uniform(-1, 1, (5, *noisy.action_space.shape)):
        seen, true = noisy.step(action)[0], plain.step(action)[0]
    np.testing.assert_array_equal(seen["true_observation"], true["observation"])
    assert np.abs(seen["observation"] - true["observation"]).max() > 0.005


# -- values, configs, determinism ----------------------------------------------------------
def test_a_seed_gives_the_same_values_state_and_goal_and_the_goal_of_the_plain_env():
    ranges = {"physics.friction:scale": [0.5, 2.0], "action.latency:steps": [0, 2]}
    a, b = _env("fetch-push", ranges), _env("fetch-push", ranges)
    plain = make_task_env("fetch-push", disable_env_checker=True)
    (obs_a, info_a), (_, info_b) = a.reset(seed=11), b.reset(seed=11)
    assert info_a["randomization"] == info_b["randomization"]
    np.testing.assert_array_equal(obs_a["desired_goal"], plain.reset(seed=11)[0]["desired_goal"])
    actions = np.random.default_rng(3).uniform(-1, 1, (15, 4))
    for action in actions:
        np.testing.assert_array_equal(a.step(action)[0]["observation"],
                                      b.step(action)[0]["observation"])  # fmt: skip
    assert a.reset(seed=12)[1]["randomization"] != info_a["randomization"]


def test_values_given_as_reset_options_are_used_and_checked():
    env = _env("fetch-push", {"physics.friction:scale": [0.5, 2.0]})
    info = env.reset(seed=0, options={"randomization": {"physics.friction:scale": 1.7}})[1]
    assert info["randomization"]["physics.friction:scale"] == 1.7
    with pytest.raises(RandomizationError, match=r"physics.object_mass:scale.*-0.5.*legal"):
        env.reset(seed=0, options={"randomization": {"physics.object_mass:scale": -0.5}})
    with pytest.raises(RandomizationError, match=r"nan"):
        env.reset(seed=0, options={"randomization": {"physics.friction:scale": float("nan")}})


@pytest.mark.parametrize(("task", "robot"), EVERY_ROBOT)
def test_every_parameter_at_its_legal_extremes_gives_a_model_mujoco_steps(task, robot):
    env = make_task_env(task, disable_env_checker=True).unwrapped
    tried = 0
    for path, parameter in sorted(PARAMETERS.items()):
        config = RandomizationConfig(ranges={path: (parameter.nominal, parameter.nominal)})
        try:
            randomizer = EpisodeRandomizer(env.twin, env.task, config)
        except RandomizationError as e:
            assert "cannot be randomized" in str(e)
            continue
        for value in (parameter.legal_low, parameter.legal_high):
            randomizer.apply({path: value}, np.random.default_rng(0))
            env.task.reset(env.twin, np.random.default_rng(0))
            env.twin.step(nstep=10)  # raises PhysicsError on MuJoCo warnings
            assert np.isfinite(env.data.qpos).all(), (path, value)
            assert (env.model.body_mass >= 0).all() and (env.model.geom_friction >= 0).all()
        randomizer.restore()
        tried += 1
    assert tried >= 20


def test_values_for_parameters_the_env_does_not_randomize_are_refused():
    env = _env("fetch-push", {"physics.friction:scale": [0.5, 2.0]})
    with pytest.raises(RandomizationError, match=r"object_mass:scale.*does not randomize"):
        env.reset(seed=0, options={"randomization": {"physics.object_mass:scale": 1.5}})


def test_configs_with_unknown_paths_or_illegal_ranges_are_refused_by_name(tmp_path):
    cases = {
        "parameters:\n  physics.fricton:scale: [0.5, 2]\n": r"fricton.*did you mean "
        r"'physics.friction:scale'\?",
        "parameters:\n  physics.object_mass:scale: [-1, 2]\n": r"object_mass:scale.*-1.*legal",
        "parameters:\n  action.latency:steps: [2, 1]\n": r"latency:steps.*low > high",
        "parameters:\n  action.latency:steps: 3\n": r"latency:steps must be a range",
        "parameterz: {}\n": r"unknown key",
        "adr:\n  buffer_size: 0\n  parameters: {physics.friction:scale: 0.1}\n": r"buffer_size",
        "parameters:\n  physics.friction:scale: [1, 2]\nadr:\n  parameters:\n"
        "    physics.friction:scale: 0.1\n": r"both fixed and ADR",
        "adr:\n  parameters:\n    physics.friction:scale: -0.1\n": r"step of physics.fric",
    }
    for i, (text, pattern) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(RandomizationError, match=pattern) as error:
            load_randomization(path)
        assert str(path) in str(error.value)


def test_the_shipped_configs_load_and_apply():
    from pathlib import Path

    for path in sorted(Path("sim/randomization/configs").glob("*.yaml")):
        config = load_randomization(path)
        task = "fetch-push" if path.name.startswith("fetch") else "hand-reach"
        env = make_task_env(task, disable_env_checker=True, randomization=config)
        env.reset(seed=0)
        env.step(np.zeros(env.action_space.shape))


def test_physics_randomizers_are_all_registered():
    paths = {p.path for cls in PHYSICS_RANDOMIZERS for p in cls.parameters}
    assert paths <= set(PARAMETERS)
    families = {p.split(".")[0] for p in PARAMETERS}
    assert families == {"physics", "actuation", "action", "sensor", "observation", "visual"}


def test_the_parameter_table_lists_every_path() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "sim.randomization", "--markdown"],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    for path in PARAMETERS:
        assert f"| `{path}` |" in done.stdout
