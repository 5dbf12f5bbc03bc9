"""The digital twin: one MuJoCo model and its data, with named access and guarded stepping.

`Twin` is the Physics half of the sim (tasks are the other half). It is the single place
where controls reach MuJoCo, so it is where non-finite controls are refused and where a
diverging simulation becomes a `PhysicsError` instead of silently reset state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import mujoco
import numpy as np

from sim.errors import ControlError, PhysicsError, StateError, UnknownNameError
from sim.robots.models import load_model

# Everything needed to continue a simulation bit-exactly (time, qpos, qvel, act, warmstart,
# ctrl, applied forces, mocap, equality activations, user data, plugin state).
STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


class Twin:
    """A MuJoCo model + data pair for one robot in one scene.

    Run: `python -c "from sim.twin import Twin; Twin.load('fetch', 'push').step(nstep=5)"`
    """

    def __init__(self, model: mujoco.MjModel, name: str = "twin"):
        self.model = model
        self.data = mujoco.MjData(model)
        self.name = name
        self._joint_names = _names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt)
        self._actuator_names = _names(model, mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu)
        self._sensor_names = _names(model, mujoco.mjtObj.mjOBJ_SENSOR, model.nsensor)
        self._camera_names = _names(model, mujoco.mjtObj.mjOBJ_CAMERA, model.ncam)
        self._ctrl_low = np.where(
            model.actuator_ctrllimited, model.actuator_ctrlrange[:, 0], -np.inf
        )
        self._ctrl_high = np.where(
            model.actuator_ctrllimited, model.actuator_ctrlrange[:, 1], np.inf
        )
        self._steps = 0
        self._warnings_seen = 0
        self._warning_counts = self.data.warning  # a live view, read after every step
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.clipped_controls = 0  # count of control values MuJoCo would clamp to ctrlrange
        mujoco.mj_forward(model, self.data)

    @classmethod
    def load(cls, robot: str, scene: str) -> Twin:
        """The twin of `robot` (e.g. "fetch", "shadow_hand") in one of its scenes."""
        return cls(load_model(robot, scene), name=f"{robot}/{scene}")

    # -- names ---------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._joint_names

    @property
    def actuator_names(self) -> tuple[str, ...]:
        return self._actuator_names

    @property
    def sensor_names(self) -> tuple[str, ...]:
        return self._sensor_names

    @property
    def camera_names(self) -> tuple[str, ...]:
        return self._camera_names

    def joint(self, name: str):  # -> mujoco._structs._MjDataJointViews
        """MuJoCo's named view of a joint in `data` (qpos, qvel, ...), with a helpful error."""
        _check_name("joint", name, self._joint_names)
        return self.data.joint(name)

    def actuator(self, name: str):
        """MuJoCo's named view of an actuator in `data` (ctrl, force, ...)."""
        _check_name("actuator", name, self._actuator_names)
        return self.data.actuator(name)

    def sensor(self, name: str) -> np.ndarray:
        """A copy of a sensor's current reading."""
        _check_name("sensor", name, self._sensor_names)
        return self.data.sensor(name).data.copy()

    def qpos_indices(self, joints: Iterable[str]) -> np.ndarray:
        """qpos addresses of 1-DoF joints, resolved once so hot loops can index by array."""
        return np.array([self._joint_model(j).qposadr[0] for j in joints], dtype=np.intp)

    def qvel_indices(self, joints: Iterable[str]) -> np.ndarray:
        """qvel addresses of 1-DoF joints (see `qpos_indices`)."""
        return np.array([self._joint_model(j).dofadr[0] for j in joints], dtype=np.intp)

    def _joint_model(self, name: str):
        _check_name("joint", name, self._joint_names)
        return self.model.joint(name)

    # -- control and stepping ------------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def ctrl(self) -> np.ndarray:
        """A copy of the current control vector, in actuator order."""
        return self.data.ctrl.copy()

    def set_ctrl(self, ctrl: np.ndarray | Mapping[str, float]) -> None:
        """Set controls by vector (actuator order) or by name; refuses non-finite values."""
        if isinstance(ctrl, Mapping):
            vector = self.data.ctrl.copy()
            for name, value in ctrl.items():
                _check_name("actuator", name, self._actuator_names)
                vector[self.model.actuator(name).id] = value
            ctrl = vector
        ctrl = np.asarray(ctrl, dtype=np.float64)
        if ctrl.shape != (self.model.nu,):
            raise ControlError(
                f"{self.name}: control has shape {ctrl.shape}, expected ({self.model.nu},) "
                f"for actuators {list(self._actuator_names)}"
            )
        if not np.isfinite(ctrl).all():
            bad = [self._actuator_names[i] for i in np.flatnonzero(~np.isfinite(ctrl))]
            raise ControlError(f"{self.name}: non-finite control for actuators {bad}; not stepped")
        self.clipped_controls += int(
            np.count_nonzero((ctrl < self._ctrl_low) | (ctrl > self._ctrl_high))
        )
        self.data.ctrl[:] = ctrl

    def step(self, ctrl: np.ndarray | Mapping[str, float] | None = None, nstep: int = 1) -> None:
        """Advance `nstep` physics steps, optionally setting the control first.

        Controls already in `data.ctrl` (tasks write them there directly) are checked too:
        a non-finite one raises `ControlError` before stepping. After stepping, any MuJoCo
        warning (bad qpos/qvel/qacc, which MuJoCo answers by silently resetting the data,
        or full contact buffers) raises `PhysicsError` naming the step and the joint.
        """
        if ctrl is not None:
            self.set_ctrl(ctrl)
        elif not math.isfinite(sum(self.data.ctrl.tolist())):
            self.set_ctrl(self.data.ctrl)  # raises with the actuator names
        mujoco.mj_step(self.model, self.data, nstep)
        self._steps += nstep
        # Summing a list of the few warning counters costs ~0.2 us (array ops cost ~1.4).
        if sum(self._warning_counts.number.tolist()) != self._warnings_seen:
            self._warnings_seen = sum(self._warning_counts.number.tolist())
            raise PhysicsError(self._divergence_message())

    def forward(self) -> None:
        """Recompute derived quantities (positions, sensors) without advancing time."""
        mujoco.mj_forward(self.model, self.data)

    def _divergence_message(self) -> str:
        warning = mujoco.mjtWarning
        fired = [warning(i).name for i, w in enumerate(self.data.warning) if w.number > 0]
        # MuJoCo resets the data on bad qpos/qvel/qacc; the warning keeps the index.
        joint = "unknown"
        for kind, is_dof in (
            (warning.mjWARN_BADQACC, True),
            (warning.mjWARN_BADQVEL, True),
            (warning.mjWARN_BADQPOS, False),
        ):
            if self.data.warning[kind].number:
                joint = self._joint_at(int(self.data.warning[kind].lastinfo), is_dof)
                break
        return (
            f"{self.name}: simulation diverged at physics step {self._steps} "
            f"(t={self.data.time:.4f} s), joint {joint!r}, MuJoCo warnings {fired}"
        )

    def _joint_at(self, index: int, is_dof: bool) -> str:
        """Joint owning a dof index (is_dof) or a qpos address."""
        if is_dof:
            if 0 <= index < self.model.nv:
                return self._joint_names[self.model.dof_jntid[index]]
            return "unknown"
        owners = np.flatnonzero(self.model.jnt_qposadr <= index)
        return self._joint_names[owners[-1]] if owners.size else "unknown"

    # -- full state, for replay and resets -----------------------------------------------
    def get_state(self) -> np.ndarray:
        """The full integration state; `set_state` of it continues bit-exactly."""
        state = np.empty(mujoco.mj_stateSize(self.model, STATE_SPEC))
        mujoco.mj_getState(self.model, self.data, state, STATE_SPEC)
        return state

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state from `get_state` (of this same model) and recompute kinematics."""
        state = np.asarray(state, dtype=np.float64)
        expected = mujoco.mj_stateSize(self.model, STATE_SPEC)
        if state.shape != (expected,):
            raise StateError(
                f"{self.name}: state has shape {state.shape}, this model's is ({expected},); "
                "was it saved from another robot or scene?"
            )
        if not np.isfinite(state).all():
            raise StateError(f"{self.name}: state contains non-finite values")
        mujoco.mj_setState(self.model, self.data, state, STATE_SPEC)
        mujoco.mj_forward(self.model, self.data)

    def reset(self, keyframe: str | None = None) -> None:
        """Back to the model's default state, or to a named keyframe."""
        if keyframe is None:
            mujoco.mj_resetData(self.model, self.data)
        else:
            names = _names(self.model, mujoco.mjtObj.mjOBJ_KEY, self.model.nkey)
            _check_name("keyframe", keyframe, names)
            mujoco.mj_resetDataKeyframe(self.model, self.data, self.model.key(keyframe).id)
        self._warnings_seen = 0
        mujoco.mj_forward(self.model, self.data)

    # -- kinematic mirror ----------------------------------------------------------------
    def mirror(self, joint_positions: Mapping[str, float]) -> None:
        """Show measured joint positions: set them, zero velocities, recompute kinematics.

        Time does not advance and no dynamics run, so the twin mirrors a real robot for
        visualization and IK without fighting it.
        """
        for name, value in joint_positions.items():
            if not np.isfinite(value):
                raise ControlError(f"{self.name}: non-finite measured position for joint {name!r}")
            view = self.joint(name)
            if view.qpos.shape != (1,):
                raise ControlError(f"{self.name}: joint {name!r} is not a 1-DoF joint")
            view.qpos[0] = value
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    # -- rendering ----------------------------------------------------------------------
    def render(self, camera: str | int = -1, width: int = 480, height: int = 480) -> np.ndarray:
        """An RGB image (height, width, 3) uint8 from a named camera (-1: the free camera)."""
        from sim.render import render_rgb

        return render_rgb(self, camera, width, height)

    def close(self) -> None:
        """Release renderer GL contexts; the twin stays usable for physics."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def _names(model: mujoco.MjModel, kind: mujoco.mjtObj, count: int) -> tuple[str, ...]:
    return tuple(mujoco.mj_id2name(model, kind, i) or f"<unnamed {i}>" for i in range(count))


def _check_name(kind: str, name: str, valid: tuple[str, ...]) -> None:
    if name not in valid:
        raise UnknownNameError(kind, name, valid)
