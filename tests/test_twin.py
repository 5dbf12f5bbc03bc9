"""The Twin API: loading, named access, guarded stepping, full state, mirror mode, rendering."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim.errors import (
    ControlError,
    ModelCompileError,
    PhysicsError,
    StateError,
    UnknownNameError,
)
from sim.render import write_mp4, write_png
from sim.robots import robots
from sim.robots.models import build_spec, compile_spec, load_model, scenes, spec_from_file
from sim.twin import Twin

SCENES = [(robot, scene) for robot in robots() for scene in scenes(robot)]

PENDULUM = """
<mujoco>
  <option gravity="0 0 0"/>
  <worldbody>
    <body name="link">
      <joint name="hinge" type="hinge" axis="0 1 0" range="-100 100" damping="2"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.05" mass="1"/>
    </body>
  </worldbody>
  <actuator><position name="servo" joint="hinge" kp="20" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


def pendulum() -> Twin:
    return Twin(mujoco.MjModel.from_xml_string(PENDULUM), name="pendulum")


def test_both_robots_are_registered() -> None:
    assert {"fetch", "shadow_hand"} <= set(robots())


@pytest.mark.parametrize(("robot", "scene"), SCENES)
def test_every_scene_compiles_and_steps_from_rest(robot: str, scene: str) -> None:
    twin = Twin.load(robot, scene)
    twin.step(twin.ctrl, nstep=50)
    assert twin.time == pytest.approx(50 * twin.model.opt.timestep)


@pytest.mark.parametrize(("robot", "scene"), SCENES)
def test_state_round_trip_continues_bit_exactly(robot: str, scene: str) -> None:
    twin = Twin.load(robot, scene)
    rng = np.random.default_rng(0)
    low, high = twin.model.actuator_ctrlrange.T
    twin.step(rng.uniform(low, high), nstep=30)
    saved = twin.get_state()
    ctrl = rng.uniform(low, high)
    twin.step(ctrl, nstep=40)
    expected = twin.data.qpos.copy()
    twin.step(rng.uniform(low, high), nstep=7)  # wander off, then come back
    twin.set_state(saved)
    twin.step(ctrl, nstep=40)
    np.testing.assert_array_equal(twin.data.qpos, expected)


def test_load_returns_private_models() -> None:
    first, second = load_model("fetch", "push"), load_model("fetch", "push")
    first.opt.gravity[2] = 0.0
    assert second.opt.gravity[2] == pytest.approx(-9.81)


def test_named_access_and_index_resolution() -> None:
    twin = pendulum()
    twin.set_ctrl({"servo": 0.5})
    assert twin.actuator("servo").ctrl[0] == 0.5
    twin.step(nstep=500)
    assert twin.joint("hinge").qpos[0] == pytest.approx(0.5, abs=0.05)
    assert twin.qpos_indices(["hinge"]).tolist() == [0]


@pytest.mark.parametrize("kind", ["joint", "actuator", "sensor", "camera"])
def test_unknown_names_list_the_valid_ones(kind: str) -> None:
    twin = Twin.load("fetch", "push")
    lookup = {
        "joint": twin.joint,
        "actuator": twin.actuator,
        "sensor": twin.sensor,
        "camera": lambda n: twin.render(n, 32, 32),
    }[kind]
    with pytest.raises(UnknownNameError, match=f"unknown {kind} 'nope'"):
        lookup("nope")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_control_is_refused_before_stepping(bad: float) -> None:
    twin = pendulum()
    with pytest.raises(ControlError, match="servo"):
        twin.step(np.array([bad]))
    assert twin.time == 0.0


def test_wrong_control_shape_names_the_actuators() -> None:
    with pytest.raises(ControlError, match="servo"):
        pendulum().set_ctrl(np.zeros(3))


def test_out_of_range_controls_are_counted_not_silently_clipped() -> None:
    twin = pendulum()
    twin.set_ctrl(np.array([5.0]))
    twin.set_ctrl(np.array([0.2]))
    assert twin.clipped_controls == 1


def test_divergence_raises_physics_error_naming_step_and_joint(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo appends warnings to ./MUJOCO_LOG.TXT
    twin = pendulum()
    twin.step(nstep=3)
    twin.data.qvel[0] = 1e12  # MuJoCo flags |qvel| > 1e10 and resets the data
    with pytest.raises(PhysicsError, match=r"step 4 .*'hinge'.*BADQVEL"):
        twin.step()


def test_set_state_refuses_a_state_from_another_model() -> None:
    twin = pendulum()
    with pytest.raises(StateError, match="another robot or scene"):
        twin.set_state(np.zeros(3))
    state = twin.get_state()
    state[1] = np.nan
    with pytest.raises(StateError, match="non-finite"):
        twin.set_state(state)


def test_mirror_sets_measured_positions_without_advancing_time() -> None:
    twin = Twin.load("fetch", "push")
    arm = next(n for n in twin.joint_names if "shoulder_lift" in n)
    twin.mirror({arm: 0.3})
    assert twin.joint(arm).qpos[0] == 0.3
    assert twin.time == 0.0 and not twin.data.qvel.any()
    with pytest.raises(ControlError, match="non-finite"):
        twin.mirror({arm: float("nan")})


def test_mjcf_that_fails_to_load_names_the_file(tmp_path) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text("<mujoco><worldbody><body><geom type='sphere'/></body></worldbody>")
    with pytest.raises(ModelCompileError, match=r"broken\.xml"):
        spec_from_file(bad)


def test_spec_that_fails_to_compile_names_the_model_and_mujocos_message() -> None:
    spec = build_spec("fetch", "push")
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="no-such-mesh")
    with pytest.raises(ModelCompileError, match=r"fetch/push.*no-such-mesh"):
        compile_spec(spec, "fetch/push")


@pytest.mark.parametrize("robot", ["fetch", "shadow_hand"])
def test_named_cameras_render_a_real_image(robot: str, tmp_path) -> None:
    twin = Twin.load(robot, scenes(robot)[-1])
    assert twin.camera_names, f"{robot} has no named camera"
    image = twin.render(twin.camera_names[0], 96, 64)
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.std() > 5.0  # not a blank frame
    assert write_png(tmp_path / "frame.png", image).stat().st_size > 1000
    twin.close()


def test_mp4_is_written_and_readable(tmp_path) -> None:
    import imageio.v3 as iio

    twin = pendulum()
    frames = []
    for _ in range(10):
        twin.step(np.array([0.8]), nstep=10)
        frames.append(twin.render(-1, 64, 64))
    path = write_mp4(tmp_path / "swing.mp4", frames, fps=25)
    video = iio.imread(path)
    assert video.shape[0] == 10 and video.shape[1:3] == (64, 64)
