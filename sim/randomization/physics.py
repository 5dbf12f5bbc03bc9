"""Physics randomizers: friction, masses and inertias, damping, armature, actuators, tendon
coupling, gravity direction, object size and the physics timestep.

Each is a global factor (or angle) applied to the twin's nominal model values, so a sampled
value has one meaning on every robot: `physics.friction:scale` = 1.5 is 1.5x every geom's
nominal sliding friction. "Objects" are the bodies with a free joint (the block, egg, pen);
everything else with mass is the robot. Randomizers that change masses or inertias say so
(`changes_inertia`), and the engine then runs `mj_setConst` once (16-60 us) to recompute the
constants MuJoCo derives from them.
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from sim.randomization.base import Randomizer
from sim.randomization.parameters import Parameter, RandomizationError
from sim.twin import Twin

_FREE = mujoco.mjtJoint.mjJNT_FREE
# Geom types whose size MuJoCo's collision uses directly (a mesh needs a recompile).
_PRIMITIVES = {
    int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE),
    int(mujoco.mjtGeom.mjGEOM_ELLIPSOID), int(mujoco.mjtGeom.mjGEOM_CYLINDER),
    int(mujoco.mjtGeom.mjGEOM_BOX),
}  # fmt: skip


def object_bodies(model: mujoco.MjModel) -> np.ndarray:
    """Ids of bodies carrying a free joint: the manipulated objects."""
    return np.unique(model.jnt_bodyid[model.jnt_type == _FREE])


def robot_dofs(model: mujoco.MjModel) -> np.ndarray:
    """Dof addresses of every joint that is not a free joint."""
    return np.flatnonzero(model.jnt_type[model.dof_jntid] != _FREE)


def scale(path: str, description: str, low: float, high: float) -> Parameter:
    """A multiplicative parameter: nominal 1, ADR step 0.02 (of its scale, 1)."""
    return Parameter(path, 1.0, low, high, 0.02, description)


class FrictionRandomizer(Randomizer):
    """Every geom's sliding friction x `physics.friction:scale`."""

    parameters = (scale("physics.friction:scale", "sliding friction of every geom", 0.05, 10),)

    def bind(self, twin: Twin) -> None:
        self._nominal = twin.model.geom_friction[:, 0].copy()

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        twin.model.geom_friction[:, 0] = self._nominal * values["physics.friction:scale"]

    def restore(self, twin: Twin) -> None:
        twin.model.geom_friction[:, 0] = self._nominal


class _ScaledArrays(Randomizer):
    """Shared shape: one parameter scales some rows of some model arrays."""

    path: str

    def _rows(self, model: mujoco.MjModel) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def applies_to(self, twin: Twin) -> bool:
        return any(rows.size for rows in self._rows(twin.model).values())

    def bind(self, twin: Twin) -> None:
        self._rows_of = self._rows(twin.model)
        self._nominal = {
            name: getattr(twin.model, name)[rows].copy() for name, rows in self._rows_of.items()
        }

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        factor = values[self.path]
        for name, rows in self._rows_of.items():
            getattr(twin.model, name)[rows] = self._nominal[name] * factor

    def restore(self, twin: Twin) -> None:
        for name, rows in self._rows_of.items():
            getattr(twin.model, name)[rows] = self._nominal[name]


class LinkMassRandomizer(_ScaledArrays):
    """The robot's link masses and inertias x `physics.link_mass:scale` (objects excluded)."""

    path = "physics.link_mass:scale"
    changes_inertia = True
    parameters = (scale(path, "mass and inertia of every robot link", 0.1, 10),)

    def _rows(self, model: mujoco.MjModel) -> dict[str, np.ndarray]:
        objects = set(object_bodies(model).tolist())
        links = np.array(
            [b for b in range(1, model.nbody) if model.body_mass[b] > 0 and b not in objects],
            dtype=np.intp,
        )
        return {"body_mass": links, "body_inertia": links}


class JointDampingRandomizer(_ScaledArrays):
    """Every robot joint's damping x `physics.joint_damping:scale`."""

    path = "physics.joint_damping:scale"
    parameters = (scale(path, "damping of every robot joint", 0.0, 20),)

    def _rows(self, model: mujoco.MjModel) -> dict[str, np.ndarray]:
        return {"dof_damping": robot_dofs(model)}


class ArmatureRandomizer(_ScaledArrays):
    """Every robot joint's armature (reflected rotor inertia) x `physics.armature:scale`."""

    path = "physics.armature:scale"
    parameters = (scale(path, "armature of every robot joint", 0.0, 20),)

    def _rows(self, model: mujoco.MjModel) -> dict[str, np.ndarray]:
        return {"dof_armature": robot_dofs(model)}


class ActuatorForceLimitRandomizer(_ScaledArrays):
    """Force-limited actuators' force range x `physics.actuator_force_limit:scale`."""

    path = "physics.actuator_force_limit:scale"
    parameters = (scale(path, "force range of every force-limited actuator", 0.1, 10),)

    def _rows(self, model: mujoco.MjModel) -> dict[str, np.ndarray]:
        return {"actuator_forcerange": np.flatnonzero(model.actuator_forcelimited)}


class ActuatorGainRandomizer(Randomizer):
    """Actuator gains x `physics.actuator_gain:scale`.

    A position servo is gain kp and bias -kp*q (affine bias with biasprm[1] = -gainprm[0]);
    both are scaled, so it stays a servo to the same target with a stiffer or softer spring.
    Velocity gains (biasprm[2]) are left alone.
    """

    path = "physics.actuator_gain:scale"
    parameters = (scale(path, "proportional gain of every actuator", 0.1, 10),)

    def bind(self, twin: Twin) -> None:
        model = twin.model
        self._gain = model.actuator_gainprm[:, 0].copy()
        self._bias = model.actuator_biasprm[:, 1].copy()
        affine = model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE
        self._servo = affine & np.isclose(self._bias, -self._gain)

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        factor = values[self.path]
        twin.model.actuator_gainprm[:, 0] = self._gain * factor
        twin.model.actuator_biasprm[:, 1] = np.where(self._servo, self._bias * factor, self._bias)

    def restore(self, twin: Twin) -> None:
        twin.model.actuator_gainprm[:, 0] = self._gain
        twin.model.actuator_biasprm[:, 1] = self._bias


class TendonCouplingRandomizer(Randomizer):
    """The coupling ratio of tendon-coupled joints x `physics.tendon_coupling:scale`.

    The Shadow hand couples each finger's two distal joints with a fixed tendon over both
    joints kept near zero length (range +-1 mm): J0 * c0 + J1 * c1 ~ 0. Scaling c0 changes
    how far the last joint follows the middle one, as a stretched real tendon does.
    """

    path = "physics.tendon_coupling:scale"
    parameters = (scale(path, "coupling ratio of joints coupled by a fixed tendon", 0.5, 2.0),)

    def _couplings(self, model: mujoco.MjModel) -> np.ndarray:
        """Wrap addresses of the first coefficient of every two-joint, opposed-sign tendon."""
        rows = []
        for t in range(model.ntendon):
            adr, num = model.tendon_adr[t], model.tendon_num[t]
            joints = model.wrap_type[adr : adr + num] == mujoco.mjtWrap.mjWRAP_JOINT
            opposed = num == 2 and model.wrap_prm[adr] * model.wrap_prm[adr + 1] < 0
            if joints.all() and opposed and model.tendon_limited[t]:
                rows.append(adr)
        return np.array(rows, dtype=np.intp)

    def applies_to(self, twin: Twin) -> bool:
        return bool(self._couplings(twin.model).size)

    def bind(self, twin: Twin) -> None:
        self._rows = self._couplings(twin.model)
        self._nominal = twin.model.wrap_prm[self._rows].copy()

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        twin.model.wrap_prm[self._rows] = self._nominal * values[self.path]

    def restore(self, twin: Twin) -> None:
        twin.model.wrap_prm[self._rows] = self._nominal


class GravityRandomizer(Randomizer):
    """Gravity tilted by `physics.gravity_tilt:rad` towards a uniformly random azimuth
    (a base that is not level, or an unmodelled constant force), magnitude unchanged."""

    path = "physics.gravity_tilt:rad"
    parameters = (
        Parameter(path, 0.0, 0.0, 0.5, 0.005, "angle between gravity and its nominal direction"),
    )

    def bind(self, twin: Twin) -> None:
        self._nominal = twin.model.opt.gravity.copy()

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        tilt, azimuth = values[self.path], rng.uniform(0.0, 2.0 * np.pi)
        twin.model.opt.gravity[:] = _tilted(self._nominal, tilt, azimuth)

    def restore(self, twin: Twin) -> None:
        twin.model.opt.gravity[:] = self._nominal


def _tilted(vector: np.ndarray, angle: float, azimuth: float) -> np.ndarray:
    """`vector` rotated by `angle` about an axis perpendicular to it, chosen by `azimuth`."""
    norm = float(np.linalg.norm(vector))
    if norm == 0.0 or angle == 0.0:
        return vector.copy()
    unit = vector / norm
    helper = np.array([1.0, 0.0, 0.0]) if abs(unit[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    first = np.cross(unit, helper)
    first /= np.linalg.norm(first)
    second = np.cross(unit, first)
    sideways = np.cos(azimuth) * first + np.sin(azimuth) * second
    return norm * (np.cos(angle) * unit + np.sin(angle) * sideways)


class ObjectRandomizer(Randomizer):
    """The manipulated objects' mass and size.

    `physics.object_mass:scale` scales mass and inertia; `physics.object_size:scale` scales
    the objects' primitive geoms (size, bounding radius and box, offsets, sites) at constant
    density, so mass grows as s^3 and inertia as s^5, which is what MjSpec computes when the
    object is compiled at the scaled size (tests/test_randomization.py checks it). Mesh geoms
    cannot be resized without a recompile, so a scene with a mesh object refuses size values
    other than 1.
    """

    mass_path, size_path = "physics.object_mass:scale", "physics.object_size:scale"
    changes_inertia = True
    parameters = (
        scale(mass_path, "mass and inertia of the manipulated objects", 0.05, 20),
        scale(size_path, "size of the manipulated objects at constant density", 0.5, 2.0),
    )
    _GEOM_ARRAYS = ("geom_size", "geom_rbound", "geom_aabb", "geom_pos")

    def applies_to(self, twin: Twin) -> bool:
        return bool(object_bodies(twin.model).size)

    def bind(self, twin: Twin) -> None:
        model = twin.model
        self._bodies = object_bodies(model)
        self._geoms = np.flatnonzero(np.isin(model.geom_bodyid, self._bodies))
        self._sites = np.flatnonzero(np.isin(model.site_bodyid, self._bodies))
        self._resizable = bool(np.isin(model.geom_type[self._geoms], list(_PRIMITIVES)).all())
        self._nominal = {
            "body_mass": model.body_mass[self._bodies].copy(),
            "body_inertia": model.body_inertia[self._bodies].copy(),
            "body_ipos": model.body_ipos[self._bodies].copy(),
            "site_pos": model.site_pos[self._sites].copy(),
            **{name: getattr(model, name)[self._geoms].copy() for name in self._GEOM_ARRAYS},
        }

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        mass, size = values[self.mass_path], values[self.size_path]
        if size != 1.0 and not self._resizable:
            raise RandomizationError(
                f"{self.size_path}: {twin.name}'s object has mesh geoms, which cannot be "
                f"resized without recompiling; keep {self.size_path} at 1"
            )
        self._set(twin, mass * size**3, mass * size**5, size)

    def restore(self, twin: Twin) -> None:
        self._set(twin, 1.0, 1.0, 1.0)

    def _set(self, twin: Twin, mass: float, inertia: float, size: float) -> None:
        model, nominal = twin.model, self._nominal
        model.body_mass[self._bodies] = nominal["body_mass"] * mass
        model.body_inertia[self._bodies] = nominal["body_inertia"] * inertia
        model.body_ipos[self._bodies] = nominal["body_ipos"] * size
        model.site_pos[self._sites] = nominal["site_pos"] * size
        for name in self._GEOM_ARRAYS:
            getattr(model, name)[self._geoms] = nominal[name] * size


class TimestepRandomizer(Randomizer):
    """The physics timestep x `physics.timestep:scale`: the control period varies with it
    (frame_skip substeps per action), as a real loop's period jitters from run to run."""

    path = "physics.timestep:scale"
    parameters = (scale(path, "physics timestep, and with it the control period", 0.5, 1.5),)

    def bind(self, twin: Twin) -> None:
        self._nominal = float(twin.model.opt.timestep)

    def apply(self, twin: Twin, values: Mapping[str, float], rng: np.random.Generator) -> None:
        twin.model.opt.timestep = self._nominal * values[self.path]

    def restore(self, twin: Twin) -> None:
        twin.model.opt.timestep = self._nominal


PHYSICS_RANDOMIZERS: tuple[type[Randomizer], ...] = (
    FrictionRandomizer, ObjectRandomizer, LinkMassRandomizer, JointDampingRandomizer,
    ArmatureRandomizer, ActuatorGainRandomizer, ActuatorForceLimitRandomizer,
    TendonCouplingRandomizer, GravityRandomizer, TimestepRandomizer,
)  # fmt: skip
