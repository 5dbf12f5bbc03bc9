"""Visual randomizers on every twin: each parameter changes exactly the model arrays it
claims, by the amount it says; nominal values change nothing and draw nothing; restore is
bit-exact; seeded draws repeat; and rendered images change and come back, through renderers
made before and after the change."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator

import mujoco
import numpy as np
import pytest

from sim.randomization.base import Randomizer
from sim.randomization.parameters import Parameter, RandomizationError
from sim.randomization.visual import (
    VISUAL_RANDOMIZERS,
    CameraRandomizer,
    ColorRandomizer,
    LightRandomizer,
    TextureRandomizer,
)
from sim.twin import Twin

TWINS = [("fetch", "push"), ("shadow_hand", "block")]
# A camera of each twin that sees textured surfaces (the Fetch's only visible one is the sky).
CAMERA = {"fetch/push": "video", "shadow_hand/block": "camera_0"}

# The value each parameter is tested at, and the model arrays it alone changes.
TEST_VALUE = {
    "visual.color:jitter": 0.2,
    "visual.texture:noise": 0.2,
    "visual.light_position:m": 0.5,
    "visual.light_intensity:scale": 1.7,
    "visual.camera_position:m": 0.05,
    "visual.camera_rotation:rad": 0.1,
    "visual.camera_fovy:deg": -7.5,
}
CHANGED_BY = {
    "visual.color:jitter": {"geom_rgba", "mat_rgba"},
    "visual.texture:noise": {"tex_data"},
    "visual.light_position:m": {"light_pos", "light_pos0", "light_poscom0"},
    "visual.light_intensity:scale": {"light_diffuse"},
    "visual.camera_position:m": {"cam_pos", "cam_pos0", "cam_poscom0"},
    "visual.camera_rotation:rad": {"cam_quat", "cam_mat0"},
    "visual.camera_fovy:deg": {"cam_fovy"},
}
CASES = [(cls, p.path) for cls in VISUAL_RANDOMIZERS for p in cls.parameters]

# A model with what the twins lack: tracking camera and light on a body turned at qpos0,
# a normal map, and fields of view near MuJoCo's limits.
TINY_XML = """
<mujoco>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="1 1 1" rgb2="0 0 0"
             width="8" height="8"/>
    <texture name="paint" type="2d" builtin="checker" rgb1="1 0 0" rgb2="0 1 0"
             width="8" height="8"/>
    <texture name="bumps" type="2d" builtin="flat" rgb1="0.5 0.5 1" width="8" height="8"/>
    <material name="painted" texture="paint"/>
    <material name="bumpy"><layer role="normal" texture="bumps"/></material>
  </asset>
  <worldbody>
    <body name="arm" pos="0 0 1" euler="0 0 90">
      <joint name="hinge" axis="1 0 0"/>
      <geom size="0.1" material="painted"/>
      <geom size="0.05" pos="0 0 0.2" material="bumpy"/>
      <light name="lamp" mode="track" pos="0.1 0.2 0.3" type="spot"/>
      <camera name="tracker" mode="trackcom" pos="0.3 0 0" euler="10 20 30" fovy="5"/>
      <camera name="fixed" pos="0 0.2 0" fovy="178"/>
    </body>
  </worldbody>
</mujoco>
"""


@pytest.fixture(scope="module", params=TWINS, ids=["/".join(t) for t in TWINS])
def twin(request: pytest.FixtureRequest) -> Iterator[Twin]:
    twin = Twin.load(*request.param)
    yield twin
    twin.close()


@pytest.fixture
def tiny() -> Twin:
    return Twin(mujoco.MjModel.from_xml_string(TINY_XML), name="tiny")


@pytest.fixture
def bind() -> Iterator[Callable[[type[Randomizer], Twin], Randomizer]]:
    """Binds randomizers to twins and restores every one after the test."""
    bound: list[tuple[Randomizer, Twin]] = []

    def _bind(cls: type[Randomizer], twin: Twin) -> Randomizer:
        randomizer = cls()
        assert randomizer.applies_to(twin)
        randomizer.bind(twin)
        bound.append((randomizer, twin))
        return randomizer

    yield _bind
    for randomizer, twin in bound:
        randomizer.restore(twin)


def _values(cls: type[Randomizer], **overrides: float) -> dict[str, float]:
    values = {p.path: p.nominal for p in cls.parameters}
    values.update(overrides)
    return values


def _with(cls: type[Randomizer], path: str, value: float | None = None) -> dict[str, float]:
    return _values(cls) | {path: TEST_VALUE[path] if value is None else value}


def _arrays(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    """A copy of every array of the model."""
    names = [n for n in dir(model) if not n.startswith("_")]
    return {
        n: getattr(model, n).copy() for n in names if isinstance(getattr(model, n), np.ndarray)
    }


def _changed(before: dict[str, np.ndarray], model: mujoco.MjModel) -> set[str]:
    """Names of the arrays that are not bit-identical to `before`."""
    return {n for n, a in before.items() if a.tobytes() != getattr(model, n).tobytes()}


def _rotation_angle(q0: np.ndarray, q1: np.ndarray) -> float:
    relative = np.empty(4)
    conjugate = np.empty(4)
    mujoco.mju_negQuat(conjugate, q0)
    mujoco.mju_mulQuat(relative, conjugate, q1)
    return 2.0 * float(np.arctan2(np.linalg.norm(relative[1:]), abs(relative[0])))


# -- what changes, and by how much ---------------------------------------------------------
@pytest.mark.parametrize("cls", VISUAL_RANDOMIZERS, ids=lambda c: c.__name__)
def test_nominal_values_change_nothing_and_draw_nothing(twin, bind, cls) -> None:
    randomizer = bind(cls, twin)
    before = _arrays(twin.model)
    rng = np.random.default_rng(0)
    state = copy.deepcopy(rng.bit_generator.state)
    randomizer.apply(twin, _values(cls), rng)
    assert not _changed(before, twin.model)
    assert rng.bit_generator.state == state


@pytest.mark.parametrize(("cls", "path"), CASES, ids=[path for _, path in CASES])
def test_parameter_changes_exactly_its_arrays_and_restore_is_exact(twin, bind, cls, path):
    randomizer = bind(cls, twin)
    before = _arrays(twin.model)
    randomizer.apply(twin, _with(cls, path), np.random.default_rng(1))
    assert _changed(before, twin.model) == CHANGED_BY[path]
    assert CHANGED_BY[path] <= set(cls.changes)
    randomizer.restore(twin)
    assert not _changed(before, twin.model)


def test_color_jitter_is_bounded_keeps_alpha_and_material_colours(twin, bind) -> None:
    model, jitter = twin.model, TEST_VALUE["visual.color:jitter"]
    geom_rgba, mat_rgba = model.geom_rgba.copy(), model.mat_rgba.copy()
    values = {"visual.color:jitter": jitter}
    bind(ColorRandomizer, twin).apply(twin, values, np.random.default_rng(2))
    for new, old in ((model.geom_rgba, geom_rgba), (model.mat_rgba, mat_rgba)):
        assert np.abs(new[:, :3] - old[:, :3]).max() <= jitter + 1e-6
        assert np.array_equal(new[:, 3], old[:, 3])
        assert ((new >= 0) & (new <= 1)).all()
    # A geom at the default rgba shows its material's colour; writing it would hide that.
    defers = (model.geom_matid >= 0) & np.all(geom_rgba == [0.5, 0.5, 0.5, 1], axis=1)
    assert defers.any()
    assert np.array_equal(model.geom_rgba[defers], geom_rgba[defers])
    assert (model.geom_rgba[~defers] != geom_rgba[~defers]).any()
    assert (model.mat_rgba != mat_rgba).any()


def test_texture_noise_is_bounded_and_skips_hidden_or_unused_textures(twin, bind) -> None:
    model, noise = twin.model, TEST_VALUE["visual.texture:noise"]
    nominal = model.tex_data.astype(np.int16)
    randomizer = bind(TextureRandomizer, twin)
    randomizer.apply(twin, {"visual.texture:noise": noise}, np.random.default_rng(3))
    for texid in range(model.ntex):
        start = model.tex_adr[texid]
        stop = start + model.tex_width[texid] * model.tex_height[texid] * model.tex_nchannel[texid]
        delta = np.abs(model.tex_data[start:stop].astype(np.int16) - nominal[start:stop])
        name = model.tex(texid).name or f"<unnamed texture {texid}>"
        if name in randomizer.textures:
            assert 0 < delta.max() <= round(255 * noise)
        else:
            assert delta.max() == 0, name
    skipped = {"fetch/push": "texture_block", "shadow_hand/block": "texture:hidden"}
    assert skipped[twin.name] not in randomizer.textures


def test_light_moves_within_the_ball_and_scales_diffuse(twin, bind) -> None:
    model = twin.model
    radius, factor = TEST_VALUE["visual.light_position:m"], 1.7
    pos, diffuse = model.light_pos.copy(), model.light_diffuse.copy()
    values = {"visual.light_position:m": radius, "visual.light_intensity:scale": factor}
    bind(LightRandomizer, twin).apply(twin, values, np.random.default_rng(4))
    distance = np.linalg.norm(model.light_pos - pos, axis=1)
    assert ((distance > 0) & (distance <= radius + 1e-12)).all()
    np.testing.assert_allclose(model.light_diffuse, diffuse * factor, rtol=1e-6)
    world = model.light_bodyid == 0  # the data's light poses are refreshed too
    np.testing.assert_allclose(twin.data.light_xpos[world], model.light_pos[world])


def test_camera_offsets_have_the_exact_length_angle_and_fovy(twin, bind) -> None:
    model = twin.model
    length, angle = (
        TEST_VALUE["visual.camera_position:m"],
        TEST_VALUE["visual.camera_rotation:rad"],
    )
    fovy_offset = TEST_VALUE["visual.camera_fovy:deg"]
    pos, quat, fovy = model.cam_pos.copy(), model.cam_quat.copy(), model.cam_fovy.copy()
    values = {
        "visual.camera_position:m": length,
        "visual.camera_rotation:rad": angle,
        "visual.camera_fovy:deg": fovy_offset,
    }
    bind(CameraRandomizer, twin).apply(twin, values, np.random.default_rng(5))
    np.testing.assert_allclose(np.linalg.norm(model.cam_pos - pos, axis=1), length, atol=1e-12)
    for cam in range(model.ncam):
        assert _rotation_angle(quat[cam], model.cam_quat[cam]) == pytest.approx(angle, abs=1e-9)
    np.testing.assert_array_equal(model.cam_fovy, fovy + fovy_offset)
    # The data's camera poses are refreshed, so a render needs no physics step.
    camera = twin.camera_names[0]
    xmat = twin.data.cam_xmat[model.camera(camera).id].copy()
    mujoco.mj_forward(model, twin.data)
    np.testing.assert_allclose(twin.data.cam_xmat[model.camera(camera).id], xmat, atol=1e-12)


def test_reference_poses_match_recompiling_the_model(twin, tiny, bind) -> None:
    """cam_pos0, cam_mat0, light_pos0... (used by tracking modes) equal mj_setConst's."""
    for model_twin in (twin, tiny):
        _check_reference_poses(model_twin, bind)


def _check_reference_poses(twin: Twin, bind) -> None:
    bind(LightRandomizer, twin).apply(
        twin, _with(LightRandomizer, "visual.light_position:m"), np.random.default_rng(6)
    )
    moved = {"visual.camera_position:m": 0.1, "visual.camera_rotation:rad": 0.3}
    camera_values = _values(CameraRandomizer, **moved)
    bind(CameraRandomizer, twin).apply(twin, camera_values, np.random.default_rng(7))
    recompiled = copy.copy(twin.model)
    mujoco.mj_setConst(recompiled, mujoco.MjData(recompiled))
    for name in ("cam_pos0", "cam_poscom0", "cam_mat0", "light_pos0", "light_poscom0"):
        expected = getattr(recompiled, name)
        np.testing.assert_allclose(getattr(twin.model, name), expected, atol=1e-12, err_msg=name)


def test_fovy_stays_within_mujoco_limits(tiny, bind) -> None:
    randomizer = bind(CameraRandomizer, tiny)
    rng = np.random.default_rng(8)
    randomizer.apply(tiny, _with(CameraRandomizer, "visual.camera_fovy:deg", -20.0), rng)
    assert tiny.model.cam_fovy.tolist() == [1.0, 158.0]
    randomizer.apply(tiny, _with(CameraRandomizer, "visual.camera_fovy:deg", 20.0), rng)
    assert tiny.model.cam_fovy.tolist() == [25.0, 179.0]


def test_texture_noise_leaves_data_maps_alone(tiny, bind) -> None:
    randomizer = bind(TextureRandomizer, tiny)
    assert randomizer.textures == ("sky", "paint")  # not "bumps", a normal map
    assert TextureRandomizer(max_texture_bytes=8 * 8 * 3).applies_to(tiny)
    small = TextureRandomizer(max_texture_bytes=8 * 8 * 3)
    small.bind(tiny)
    assert small.textures == ("paint",)  # the sky's six faces are larger


@pytest.mark.parametrize("cls", VISUAL_RANDOMIZERS, ids=lambda c: c.__name__)
def test_seeded_draws_repeat(twin, bind, cls) -> None:
    values = _values(cls, **{p.path: TEST_VALUE[p.path] for p in cls.parameters})
    results = []
    for seed in (11, 11, 12):
        randomizer = bind(cls, twin)
        randomizer.apply(twin, values, np.random.default_rng(seed))
        results.append([getattr(twin.model, name).copy() for name in cls.changes])
        randomizer.restore(twin)
    same = [np.array_equal(a, b) for a, b in zip(results[0], results[1], strict=True)]
    other = [np.array_equal(a, b) for a, b in zip(results[0], results[2], strict=True)]
    assert all(same)
    assert not all(other)


# -- rendering ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "path"),
    [
        (ColorRandomizer, "visual.color:jitter"),
        (TextureRandomizer, "visual.texture:noise"),
        (CameraRandomizer, "visual.camera_rotation:rad"),
    ],
    ids=["color", "texture", "camera_rotation"],
)
def test_rendered_image_changes_and_comes_back(twin, bind, cls, path) -> None:
    camera = CAMERA[twin.name]
    nominal = twin.render(camera, 64, 64)  # the renderer exists before the change
    randomizer = bind(cls, twin)
    randomizer.apply(twin, _with(cls, path), np.random.default_rng(9))
    assert (twin.render(camera, 64, 64) != nominal).any()
    randomizer.restore(twin)
    np.testing.assert_array_equal(twin.render(camera, 64, 64), nominal)


def test_texture_noise_reaches_renderers_made_after_it(twin, bind) -> None:
    camera = CAMERA[twin.name]
    nominal = twin.render(camera, 64, 64)
    twin._renderers.pop((64, 64)).close()
    randomizer = bind(TextureRandomizer, twin)
    values = _with(TextureRandomizer, "visual.texture:noise")
    randomizer.apply(twin, values, np.random.default_rng(9))
    assert (twin.render(camera, 64, 64) != nominal).any()  # a new renderer: noisy textures
    randomizer.restore(twin)
    np.testing.assert_array_equal(twin.render(camera, 64, 64), nominal)


# -- errors -------------------------------------------------------------------------------
def test_misuse_raises_actionable_errors(twin, tiny, bind) -> None:
    rng = np.random.default_rng(10)
    with pytest.raises(RandomizationError, match="call bind"):
        ColorRandomizer().apply(twin, _values(ColorRandomizer), rng)
    randomizer = bind(CameraRandomizer, twin)
    with pytest.raises(RandomizationError, match="call bind"):
        randomizer.apply(tiny, _values(CameraRandomizer), rng)
    with pytest.raises(RandomizationError, match=re.escape("visual.camera_fovy:deg")):
        randomizer.apply(twin, {"visual.camera_position:m": 0.0}, rng)
    with pytest.raises(RandomizationError, match="legal range"):
        randomizer.apply(twin, _with(CameraRandomizer, "visual.camera_rotation:rad", 2.0), rng)
    with pytest.raises(RandomizationError, match="max_texture_bytes"):
        TextureRandomizer(max_texture_bytes=0)


def test_parameters_are_visual_and_nominal_is_legal() -> None:
    parameters: list[Parameter] = [p for cls in VISUAL_RANDOMIZERS for p in cls.parameters]
    assert sorted(p.path for p in parameters) == sorted(TEST_VALUE)
    for parameter in parameters:
        assert parameter.family == "visual"
        parameter.check_value(TEST_VALUE[parameter.path])
