"""Visual domain randomization: colours, textures, lights and cameras of the rendered twin.

A pose estimator trained only on simulated images transfers to real cameras when the
simulated appearance varies more than reality does (Tobin et al. 2017; OpenAI's in-hand
manipulation): it then has to use shape, not a colour, a texture, a shading or an exact
viewpoint that only the simulator has. Each randomizer here changes the appearance relative
to the nominal model it cached in `bind`, and nothing else: no dynamics array is touched,
so visual randomization can be switched on without changing what the policy experiences.

Camera and light edits also move the reference poses MuJoCo compiled for tracking modes
(`cam_pos0`, `cam_mat0`, `light_pos0`, ...), exactly as recompiling the edited model would,
and refresh the data's camera/light poses, so the next render shows them without a step.
Texture edits are uploaded to every renderer the twin already has (renderers made later
read the model's current textures when they are created).

A quantity at its nominal value draws nothing from the generator and leaves its arrays
bit-identical, so a configured range that includes nominal (as every ADR range starts) does
not shift the random streams drawn after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mujoco
import numpy as np

from sim.errors import RenderError
from sim.randomization.base import Randomizer
from sim.randomization.parameters import Parameter, RandomizationError
from sim.twin import Twin

COLOR_PARAMETERS = (
    Parameter(
        "visual.color:jitter",
        nominal=0.0,
        legal_low=0.0,
        legal_high=1.0,
        adr_step=0.02,
        description="half-width of the uniform noise added to each geom's and material's RGB "
        "(components in [0, 1], clipped; 1 reaches every colour); alpha is never changed",
    ),
)
TEXTURE_PARAMETERS = (
    Parameter(
        "visual.texture:noise",
        nominal=0.0,
        legal_low=0.0,
        legal_high=1.0,
        adr_step=0.02,
        description="half-width of the uniform per-texel, per-channel noise on colour "
        "textures, as a fraction of full intensity (1 = 255 levels); alpha untouched",
    ),
)
LIGHT_PARAMETERS = (
    Parameter(
        "visual.light_position:m",
        nominal=0.0,
        legal_low=0.0,
        legal_high=2.0,
        adr_step=0.02,
        description="radius of the ball each light's position is moved uniformly within "
        "(m; step = 0.02 of a 1 m workspace); no effect on directional lights' shading",
    ),
    Parameter(
        "visual.light_intensity:scale",
        nominal=1.0,
        legal_low=0.0,
        legal_high=4.0,
        adr_step=0.02,
        description="factor on every light's diffuse colour (1 = nominal, 0 = ambient only)",
    ),
)
CAMERA_PARAMETERS = (
    Parameter(
        "visual.camera_position:m",
        nominal=0.0,
        legal_low=0.0,
        legal_high=0.3,
        adr_step=0.002,
        description="length of each camera's position offset, in a random direction "
        "(m; step = 0.02 of 0.1 m, a coarse extrinsic calibration error)",
    ),
    Parameter(
        "visual.camera_rotation:rad",
        nominal=0.0,
        legal_low=0.0,
        legal_high=0.5,
        adr_step=0.002,
        description="angle each camera is rotated by about a random axis "
        "(rad; step = 0.02 of 0.1 rad, a coarse extrinsic calibration error)",
    ),
    Parameter(
        "visual.camera_fovy:deg",
        nominal=0.0,
        legal_low=-20.0,
        legal_high=20.0,
        adr_step=0.2,
        description="offset added to every camera's vertical field of view, the result kept "
        "in [1, 179] deg (step = 0.02 of 10 deg, a coarse intrinsic error); ignored by "
        "cameras defined by sensor size and intrinsics",
    ),
)

# A geom whose rgba is exactly MuJoCo's default takes its colour from its material.
_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0], dtype=np.float32)
_ROLE = mujoco.mjtTextureRole
_COLOUR_ROLES = tuple(
    int(role)
    for role in (
        _ROLE.mjTEXROLE_USER,
        _ROLE.mjTEXROLE_RGB,
        _ROLE.mjTEXROLE_EMISSIVE,
        _ROLE.mjTEXROLE_RGBA,
    )
)
_SKYBOX = int(mujoco.mjtTexture.mjTEXTURE_SKYBOX)
_DEFAULT_MAX_TEXTURE_BYTES = 4 * 1024 * 1024  # a 1024 x 1024 RGBA image
_FOVY_LIMITS_DEG = (1.0, 179.0)


class _VisualRandomizer(Randomizer):
    """Bookkeeping shared by the visual randomizers: which model is bound, checked values."""

    # Model arrays the randomizer may change; every other model array stays as it is.
    changes: tuple[str, ...] = ()
    _model: mujoco.MjModel | None = None

    def _bound_model(self, twin: Twin) -> mujoco.MjModel:
        if self._model is None or self._model is not twin.model:
            raise RandomizationError(
                f"{type(self).__name__} is not bound to twin {twin.name!r}; "
                "call bind(twin) once before apply/restore"
            )
        return self._model

    def _values(self, values: Mapping[str, float]) -> dict[str, float]:
        missing = [p.path for p in self.parameters if p.path not in values]
        if missing:
            raise RandomizationError(
                f"{type(self).__name__} needs a value for {', '.join(missing)}; "
                "pass each parameter's nominal to leave it unrandomized"
            )
        return {p.path: p.applied(p.check_value(values[p.path])) for p in self.parameters}


class ColorRandomizer(_VisualRandomizer):
    """Jitters every geom's and every material's RGB by uniform noise of half-width `v`.

    Robot and object geoms are treated alike: an estimator of the object's pose must not
    find the object by a colour the simulator happens to give it, and the real robot's
    paint, the real object and the camera's white balance all differ from the model. Each
    geom with its own rgba, and each material, draws its own noise per channel; a geom whose
    rgba is MuJoCo's default (0.5, 0.5, 0.5, 1) shows its material's colour, so its rgba is
    left alone (writing it would replace the material colour with grey) and it takes its
    material's jitter, shared by every geom painted with that material, like real paint.
    """

    parameters = COLOR_PARAMETERS
    changes = ("geom_rgba", "mat_rgba")

    def applies_to(self, twin: Twin) -> bool:
        return twin.model.ngeom + twin.model.nmat > 0

    def bind(self, twin: Twin) -> None:
        model = twin.model
        self._geom_rgba = model.geom_rgba.copy()
        self._mat_rgba = model.mat_rgba.copy()
        defers = (model.geom_matid >= 0) & np.all(model.geom_rgba == _DEFAULT_RGBA, axis=1)
        self._own_colour = np.flatnonzero(~defers)
        self._model = model

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        model = self._bound_model(twin)
        jitter = self._values(values)["visual.color:jitter"]
        self.restore(twin)
        if jitter == 0.0:
            return
        own = self._own_colour
        geom_noise = jitter * rng.uniform(-1.0, 1.0, (own.size, 3))
        mat_noise = jitter * rng.uniform(-1.0, 1.0, (model.nmat, 3))
        model.geom_rgba[own, :3] = np.clip(self._geom_rgba[own, :3] + geom_noise, 0.0, 1.0)
        model.mat_rgba[:, :3] = np.clip(self._mat_rgba[:, :3] + mat_noise, 0.0, 1.0)

    def restore(self, twin: Twin) -> None:
        model = self._bound_model(twin)
        model.geom_rgba[:] = self._geom_rgba
        model.mat_rgba[:] = self._mat_rgba


class TextureRandomizer(_VisualRandomizer):
    """Adds uniform per-texel, per-channel noise of half-width `v` x 255 to colour textures.

    Only textures a renderer can show as colour are touched: the skybox and textures that
    some material uses as its colour (RGB, RGBA, emissive or untyped role); normal, ORM and
    other data maps, and textures nothing uses, are skipped. Textures larger than
    `max_texture_bytes` (default 4 MiB, a 1024 x 1024 RGBA image) are skipped too: noising
    and re-uploading them costs tens of milliseconds per episode. On the Shadow-hand block
    scene that skips only `texture:hidden`, the cube map of the block hidden inside the
    visible one. A `v` below half a level (0.5 / 255) is nominal; alpha is never changed.
    """

    parameters = TEXTURE_PARAMETERS
    changes = ("tex_data",)

    def __init__(self, max_texture_bytes: int = _DEFAULT_MAX_TEXTURE_BYTES):
        if max_texture_bytes <= 0:
            raise RandomizationError(
                f"max_texture_bytes must be > 0, got {max_texture_bytes}; "
                "pass the size in bytes of the largest texture to randomize"
            )
        self.max_texture_bytes = max_texture_bytes
        self._dirty = False

    def applies_to(self, twin: Twin) -> bool:
        return bool(_colour_textures(twin.model, self.max_texture_bytes))

    @property
    def textures(self) -> tuple[str, ...]:
        """Names of the textures this randomizer noises on its bound model."""
        model = self._model
        if model is None:
            return ()
        return tuple(model.tex(t).name or f"<unnamed texture {t}>" for t in self._texids)

    def bind(self, twin: Twin) -> None:
        model = twin.model
        self._texids = _colour_textures(model, self.max_texture_bytes)
        self._nominal = model.tex_data.copy()
        self._nominal_rgb = [
            _rgb_texels(self._nominal, model, t).astype(np.int16) for t in self._texids
        ]
        self._dirty = False
        self._model = model

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        model = self._bound_model(twin)
        levels = round(255 * self._values(values)["visual.texture:noise"])
        if levels == 0:
            self.restore(twin)
            return
        for texid, nominal in zip(self._texids, self._nominal_rgb, strict=True):
            noisy = nominal + rng.integers(-levels, levels + 1, nominal.shape, dtype=np.int16)
            np.clip(noisy, 0, 255, out=noisy)
            _rgb_texels(model.tex_data, model, texid)[...] = noisy
        self._dirty = True
        upload_textures(twin, self._texids)

    def restore(self, twin: Twin) -> None:
        model = self._bound_model(twin)
        if self._dirty:
            model.tex_data[:] = self._nominal
            upload_textures(twin, self._texids)
            self._dirty = False


class LightRandomizer(_VisualRandomizer):
    """Moves each light uniformly within a ball of radius `visual.light_position:m` (in its
    body's frame) and scales every light's diffuse colour by `visual.light_intensity:scale`.

    Position changes shading only for spot and point lights (and shadows); both twins' scene
    light is directional, whose shading depends on its direction alone. The diffuse colour
    is not clipped: OpenGL saturates the lit colour, not the light.
    """

    parameters = LIGHT_PARAMETERS
    changes = ("light_pos", "light_pos0", "light_poscom0", "light_diffuse")

    def applies_to(self, twin: Twin) -> bool:
        return twin.model.nlight > 0

    def bind(self, twin: Twin) -> None:
        model = twin.model
        self._pos = model.light_pos.copy()
        self._pos0 = model.light_pos0.copy()
        self._poscom0 = model.light_poscom0.copy()
        self._diffuse = model.light_diffuse.copy()
        self._body_rotation = _body_rotations_at_qpos0(model)[model.light_bodyid]
        self._model = model

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        model = self._bound_model(twin)
        checked = self._values(values)
        offset = _uniform_in_ball(rng, model.nlight, checked["visual.light_position:m"])
        self._move(model, offset)
        model.light_diffuse[:] = self._diffuse * checked["visual.light_intensity:scale"]
        mujoco.mj_camlight(model, twin.data)

    def restore(self, twin: Twin) -> None:
        model = self._bound_model(twin)
        self._move(model, np.zeros_like(self._pos))
        model.light_diffuse[:] = self._diffuse
        mujoco.mj_camlight(model, twin.data)

    def _move(self, model: mujoco.MjModel, offset: np.ndarray) -> None:
        world_offset = np.einsum("nij,nj->ni", self._body_rotation, offset)
        model.light_pos[:] = _shifted(self._pos, offset)
        model.light_pos0[:] = _shifted(self._pos0, world_offset)
        model.light_poscom0[:] = _shifted(self._poscom0, world_offset)


class CameraRandomizer(_VisualRandomizer):
    """Moves each camera by `visual.camera_position:m` in a random direction, turns it by
    `visual.camera_rotation:rad` about a random axis and widens every field of view by
    `visual.camera_fovy:deg`: the extrinsic and intrinsic calibration errors of real cameras.

    Directions and axes are uniform on the sphere. The rotation axis is taken in the
    camera's own frame (`quat <- quat * dq`), which keeps `cam_mat0` a right product.
    """

    parameters = CAMERA_PARAMETERS
    changes = ("cam_pos", "cam_pos0", "cam_poscom0", "cam_quat", "cam_mat0", "cam_fovy")

    def applies_to(self, twin: Twin) -> bool:
        return twin.model.ncam > 0

    def bind(self, twin: Twin) -> None:
        model = twin.model
        self._pos = model.cam_pos.copy()
        self._pos0 = model.cam_pos0.copy()
        self._poscom0 = model.cam_poscom0.copy()
        self._quat = model.cam_quat.copy()
        self._mat0 = model.cam_mat0.copy()
        self._fovy = model.cam_fovy.copy()
        self._body_rotation = _body_rotations_at_qpos0(model)[model.cam_bodyid]
        self._model = model

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        model = self._bound_model(twin)
        checked = self._values(values)
        self._move(model, _random_directions(rng, model.ncam, checked["visual.camera_position:m"]))
        self._turn(model, rng, checked["visual.camera_rotation:rad"])
        offset_deg = checked["visual.camera_fovy:deg"]
        fovy = np.clip(self._fovy + offset_deg, *_FOVY_LIMITS_DEG)
        model.cam_fovy[:] = fovy if offset_deg else self._fovy
        mujoco.mj_camlight(model, twin.data)

    def restore(self, twin: Twin) -> None:
        model = self._bound_model(twin)
        self._move(model, np.zeros_like(self._pos))
        model.cam_quat[:] = self._quat
        model.cam_mat0[:] = self._mat0
        model.cam_fovy[:] = self._fovy
        mujoco.mj_camlight(model, twin.data)

    def _move(self, model: mujoco.MjModel, offset: np.ndarray) -> None:
        world_offset = np.einsum("nij,nj->ni", self._body_rotation, offset)
        model.cam_pos[:] = _shifted(self._pos, offset)
        model.cam_pos0[:] = _shifted(self._pos0, world_offset)
        model.cam_poscom0[:] = _shifted(self._poscom0, world_offset)

    def _turn(self, model: mujoco.MjModel, rng: np.random.Generator, angle: float) -> None:
        if angle == 0.0:
            model.cam_quat[:] = self._quat
            model.cam_mat0[:] = self._mat0
            return
        axes = _unit_vectors(rng, model.ncam)
        half = 0.5 * angle
        turn = np.concatenate([np.full((len(axes), 1), np.cos(half)), np.sin(half) * axes], 1)
        quat = _quat_multiply(self._quat, turn)
        model.cam_quat[:] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
        mat0 = self._mat0.reshape(-1, 3, 3) @ _rotation_matrices(axes, angle)
        model.cam_mat0[:] = mat0.reshape(-1, 9)


VISUAL_RANDOMIZERS: tuple[type[Randomizer], ...] = (
    ColorRandomizer,
    TextureRandomizer,
    LightRandomizer,
    CameraRandomizer,
)


def upload_textures(twin: Twin, texids: Sequence[int]) -> None:
    """Send the model's current `texids` to every open renderer of `twin` (each GL context
    made current first), so the next render shows them."""
    for renderer in twin._renderers.values():
        if not hasattr(renderer, "_mjr_context"):
            raise RenderError(
                f"mujoco {mujoco.__version__}: mujoco.Renderer has no `_mjr_context`, so "
                "changed textures cannot reach it; update sim.randomization.visual."
                "upload_textures for this MuJoCo version"
            )
        context = renderer._mjr_context
        if context is None:  # closed
            continue
        gl_context = getattr(renderer, "_gl_context", None)
        if gl_context is not None:
            gl_context.make_current()
        for texid in texids:
            mujoco.mjr_uploadTexture(twin.model, context, texid)


def _colour_textures(model: mujoco.MjModel, max_bytes: int) -> list[int]:
    """Textures shown as colour (skybox, or a material's colour role), at most `max_bytes`."""
    colour_ids = set(model.mat_texid[:, list(_COLOUR_ROLES)].ravel().tolist())
    data_columns = [r for r in range(model.mat_texid.shape[1]) if r not in _COLOUR_ROLES]
    data_ids = set(model.mat_texid[:, data_columns].ravel().tolist())
    return [
        texid
        for texid in range(model.ntex)
        if (texid in colour_ids or model.tex_type[texid] == _SKYBOX)
        and texid not in data_ids
        and _texture_bytes(model, texid) <= max_bytes
    ]


def _texture_bytes(model: mujoco.MjModel, texid: int) -> int:
    return int(model.tex_width[texid] * model.tex_height[texid] * model.tex_nchannel[texid])


def _rgb_texels(tex_data: np.ndarray, model: mujoco.MjModel, texid: int) -> np.ndarray:
    """A (texels, colour channels) view of texture `texid` in `tex_data`, alpha excluded."""
    start = int(model.tex_adr[texid])
    channels = int(model.tex_nchannel[texid])
    texels = tex_data[start : start + _texture_bytes(model, texid)].reshape(-1, channels)
    return texels[:, : min(channels, 3)]


def _shifted(nominal: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """`nominal + offset`, exactly `nominal` (sign of zero included) where the offset is 0."""
    return np.where(offset == 0, nominal, nominal + offset)


def _unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` directions uniform on the unit sphere."""
    vectors = rng.standard_normal((count, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _uniform_in_ball(rng: np.random.Generator, count: int, radius: float) -> np.ndarray:
    """`count` points uniform in the ball of `radius`; zeros, and no draws, if it is 0."""
    if radius == 0.0:
        return np.zeros((count, 3))
    radii = radius * np.cbrt(rng.random(count))
    return _unit_vectors(rng, count) * radii[:, None]


def _random_directions(rng: np.random.Generator, count: int, length: float) -> np.ndarray:
    """`count` vectors of norm `length`, directions uniform; zeros, and no draws, if 0."""
    if length == 0.0:
        return np.zeros((count, 3))
    return length * _unit_vectors(rng, count)


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamilton products a * b of (n, 4) quaternions (w, x, y, z)."""
    aw, av = a[:, :1], a[:, 1:]
    bw, bv = b[:, :1], b[:, 1:]
    w = aw * bw - np.sum(av * bv, axis=1, keepdims=True)
    return np.concatenate([w, aw * bv + bw * av + np.cross(av, bv)], axis=1)


def _rotation_matrices(axes: np.ndarray, angle: float) -> np.ndarray:
    """(n, 3, 3) rotations by `angle` about unit `axes` (Rodrigues' formula)."""
    cross = np.zeros((len(axes), 3, 3))
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
    cross = cross - cross.transpose(0, 2, 1)
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def _body_rotations_at_qpos0(model: mujoco.MjModel) -> np.ndarray:
    """World orientation (nbody, 3, 3) of every body at `qpos0`, the configuration in which
    MuJoCo computes the tracking cameras' and lights' reference poses."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    return data.xmat.reshape(-1, 3, 3).copy()
