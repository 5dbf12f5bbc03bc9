"""The digital twin: one MuJoCo model and its data, with named access and guarded stepping.

`Twin` is the Physics half of the sim (tasks are the other half). It is the single place
where controls reach MuJoCo, so it is where non-finite controls are refused and where a
diverging simulation becomes a `PhysicsError` instead of silently reset state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import mujoco
import numpy as np

from sim.actuation import COMMANDED_ROW, SETPOINT_ROW, CommandPath
from sim.camera_calibration import RigCalibration, apply_to_model, load_rig
from sim.errors import ControlError, PhysicsError, StateError, UnknownNameError
from sim.mujoco_c import functions
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
        self._path: CommandPath | None = None
        self._path_ids = np.zeros(0, dtype=np.intp)
        self._path_ctrl: np.ndarray | None = None
        self._runs_arguments: tuple[Any, ...] = ()  # `_compile_runs` sets them
        mujoco.mj_forward(model, self.data)

    @classmethod
    def load(cls, robot: str, scene: str, calibration: str | Path | None = None) -> Twin:
        """The twin of `robot` (e.g. "fetch", "shadow_hand") in one of its scenes; with a
        rig `calibration` file (`sim/camera_calibration.py`), its cameras are the rig's:
        calibrated poses and intrinsics, so its renders match the real cameras'."""
        twin = cls(load_model(robot, scene), name=f"{robot}/{scene}")
        if calibration is not None:
            twin.use_calibration(load_rig(calibration), robot)
        return twin

    def use_calibration(self, rig: RigCalibration, robot: str) -> None:
        """Give the cameras `rig` names their calibrated poses and intrinsics (a rig of
        another robot, or naming cameras this model lacks, is refused naming both)."""
        rig.check_for(robot, self._camera_names)
        apply_to_model(self.model, self.data, rig)
        mujoco.mj_forward(self.model, self.data)

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
        if self._path is None:
            mujoco.mj_step(self.model, self.data, nstep)
        else:
            self._step_through_path(nstep)
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
    # -- the robot's command path (sim/actuation.py) -------------------------------------
    @property
    def command_path(self) -> CommandPath | None:
        """The robot's actuation between `data.ctrl` and the servos, or None (ideal)."""
        return self._path

    def use_command_path(self, path: CommandPath | None, actuator_ids: np.ndarray) -> None:
        """From now on the actuators `actuator_ids` (the path's order) follow `path`: ctrl
        holds the commanded targets, and each physics step sets the servo setpoints from
        the path, restoring the targets after the step. None: the ideal servos again."""
        ids = np.asarray(actuator_ids, dtype=np.intp)
        self._path, self._path_ids = path, ids
        contiguous = ids.size and np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size))
        self._path_ctrl = self.data.ctrl[ids[0] : ids[0] + ids.size] if contiguous else None
        if path is not None and self._path_ctrl is not None:
            self._compile_runs(int(ids[0]), ids.size)

    def _compile_runs(self, first: int, count: int) -> None:
        """Compile the path's stepping loop now (zero physics steps, ctrl rewritten with its
        own values), not at an episode's first step: a node's clock must not stall there."""
        runs = _compiled_runs()
        if runs is not None:
            path = cast(CommandPath, self._path)
            ctrl = self.data.ctrl
            # Each of these lookups costs ~0.1 us: `_step_through_path` runs every step.
            self._runs_arguments = (self.model._address, self.data._address, ctrl, first)
            submitted = ctrl[first : first + count].copy()
            ctrl[first : first + count] = path.submitted  # nothing new is queued
            runs(*self._runs_arguments, 0, *path.kernel_arguments(path.submitted))
            ctrl[first : first + count] = submitted

    def reset_command_path(self, seed: int | None = None) -> None:
        """Start the path at rest where the actuators are (a new episode); no-op if ideal."""
        if self._path is not None:
            self._path.reset(self.data.actuator_length[self._path_ids], seed)

    def hold_command_path(self) -> None:
        """Stop the path where the actuators are now (an e-stop's hold); no-op if ideal."""
        if self._path is not None:
            self._path.hold(self.data.actuator_length[self._path_ids])

    def _step_through_path(self, nstep: int) -> None:
        """`nstep` physics steps with the servo setpoints of the command path: one `mj_step`
        call per run of equal setpoints (the ramp changes them while a servo moves)."""
        model, data, ids, view = self.model, self.data, self._path_ids, self._path_ctrl
        path = cast(CommandPath, self._path)  # `step` calls this only with a path
        runs = _compiled_runs()
        if runs is not None and view is not None:  # the same steps, no Python call per step
            runs(*self._runs_arguments, nstep, *path.kernel_arguments(view))
            return
        commanded = data.ctrl[ids]
        rows = path.setpoints(commanded, nstep)
        starts = path.starts
        step = mujoco.mj_step
        for start, end in zip(starts, [*starts[1:], nstep], strict=True):
            if view is not None:
                view[:] = rows[start]
            else:
                data.ctrl[ids] = rows[start]
            step(model, data, end - start)
        data.ctrl[ids] = commanded

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
    def object_joint(self) -> int | None:
        """The task's object: the first free joint (qpos: position, then wxyz quaternion),
        or None in a scene without one."""
        free = np.flatnonzero(self.model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
        return int(free[0]) if len(free) else None

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


_RUNS: list[Any] = []


def _compiled_runs() -> Any:
    """A compiled loop over a control step's physics steps: the command path's kernels
    (sim/actuation.py `CommandPath.kernels`) set the servo setpoints before each step, which
    calls MuJoCo's own `mj_step` (libmujoco, through ctypes): the same steps as
    `mujoco.mj_step` from Python, without the interpreter between them. None where the
    library is not found (the Python loop runs instead)."""
    if not _RUNS:
        _RUNS.append(_build_runs())
    return _RUNS[0]


def _build_runs() -> Any:
    c_functions = functions()
    if c_functions is None:
        return None
    import numba

    step = c_functions["mj_step"]
    submit, advance = CommandPath.kernels()
    setpoint, commanded = SETPOINT_ROW, COMMANDED_ROW

    @numba.njit
    def runs(model, data, ctrl, first, nstep, delay, state, ints, limits, period_s,
             cycle_steps, latency_steps):  # pragma: no cover - compiled  # fmt: skip
        count = state.shape[1]
        for j in range(count):  # the commanded targets: the loop overwrites ctrl with setpoints
            state[commanded, j] = ctrl[first + j]
        submit(state[commanded], delay, state, ints)
        for _ in range(nstep):
            advance(state, ints, limits, period_s, cycle_steps, latency_steps)
            for j in range(count):
                ctrl[first + j] = state[setpoint, j]
            step(model, data)
        for j in range(count):
            ctrl[first + j] = state[commanded, j]

    return runs
