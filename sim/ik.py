"""Damped-least-squares inverse kinematics on the twin's own Jacobian (`mj_jacSite`).

Two entry points, for two budgets:

* `DlsIK.solve` iterates to convergence on a private scratch `MjData`, so the twin's state is
  never disturbed (homing, teleop goals, tests).
* `DlsIK.servo(data)` gives an `IKServo`: one DLS iteration per call from the twin's
  *current* kinematics, in preallocated buffers; what a task runs every control step to turn
  a Cartesian target into joint position targets, for a few microseconds.

Run: `python -c "import sim, sim.ik as k; print(k.demo())"`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from sim.errors import ConfigError, UnknownNameError
from sim.mujoco_c import functions


@dataclass(frozen=True)
class IKConfig:
    """How hard and how carefully `DlsIK` iterates.

    `damping_m` is the DLS lambda (a length: below it, singular directions are not chased);
    `orientation_weight_m_per_rad` trades orientation error against position error (0.1 m
    per rad: 1 deg of wrist error costs as much as 1.7 mm of position error).
    """

    damping_m: float = 0.02
    max_iterations: int = 200
    tolerance_m: float = 5e-4
    tolerance_rad: float = 5e-3
    max_joint_step_rad: float = 0.3  # per iteration, keeps the linearization honest
    orientation_weight_m_per_rad: float = 0.1
    restarts: int = 4  # random restarts if the home seed ends in a local minimum

    def __post_init__(self) -> None:
        if self.damping_m < 0 or self.max_joint_step_rad <= 0:
            raise ConfigError(
                f"IKConfig: damping_m must be >= 0 and max_joint_step_rad > 0, got "
                f"{self.damping_m} and {self.max_joint_step_rad}"
            )
        if self.max_iterations < 1 or self.tolerance_m <= 0 or self.tolerance_rad <= 0:
            raise ConfigError(
                "IKConfig: max_iterations must be >= 1 and tolerances positive; got "
                f"{self.max_iterations}, {self.tolerance_m} m, {self.tolerance_rad} rad"
            )


@dataclass(frozen=True)
class IKResult:
    """A solution: joint positions in `DlsIK.joints` order and the errors it leaves."""

    qpos: np.ndarray
    position_error_m: float
    rotation_error_rad: float
    iterations: int
    converged: bool


class DlsIK:
    """DLS IK for one site driven by named 1-DoF joints of a model.

    Names are resolved here, once.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        joints: Sequence[str],
        config: IKConfig | None = None,
    ):
        self.model = model
        self.config = config or IKConfig()
        self.joints = tuple(joints)
        self._site = _object_id(model, mujoco.mjtObj.mjOBJ_SITE, site, "site")
        ids = [_object_id(model, mujoco.mjtObj.mjOBJ_JOINT, j, "joint") for j in self.joints]
        self._qadr = model.jnt_qposadr[ids].copy()
        self._dofs = model.jnt_dofadr[ids].copy()
        self.lower = model.jnt_range[ids, 0].copy()
        self.upper = model.jnt_range[ids, 1].copy()
        self._scratch = mujoco.MjData(model)
        n = len(self.joints)
        self._qpos_slice = _as_slice(self._qadr)
        self._dof_slice = _as_slice(self._dofs)
        self._jac = np.zeros((6, model.nv))  # rows: 3 translational, 3 rotational
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]
        self._jn = np.zeros((6, n))
        self._jn3, self._jnr = self._jn[:3], self._jn[3:]
        self._a = np.zeros((6, 6))
        self._a3 = np.zeros((3, 3))
        self._err = np.zeros(6)
        self._err_pos, self._err_rot = self._err[:3], self._err[3:]
        self._y = np.zeros(6)
        self._y3 = np.zeros(3)
        self._dq = np.zeros(n)
        self._quat = np.zeros(4)
        self._quat_err = np.zeros(4)
        self._target_conj = np.zeros(4)
        self._damp6 = np.eye(6) * self.config.damping_m**2
        self._damp3 = np.eye(3) * self.config.damping_m**2
        self._weight = self.config.orientation_weight_m_per_rad

    def servo(
        self, data: mujoco.MjData, target_quat: np.ndarray | None = None, clamp: bool = True
    ) -> IKServo:
        """A one-iteration-per-call servo bound to `data` (e.g. the twin's live data)."""
        return IKServo(self, data, target_quat, clamp)

    # -- full solve on scratch data ------------------------------------------------------
    def solve(
        self,
        target_pos: np.ndarray,
        target_quat: np.ndarray | None = None,
        q_init: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> IKResult:
        """Iterate to the target pose from `q_init` (default: the model's qpos0).

        If the seed ends in a local minimum, restarts from random configurations within the
        joint limits (`IKConfig.restarts`, seeded by `rng`). Returns the best result found.
        """
        seed = self.model.qpos0[self._qadr] if q_init is None else np.asarray(q_init, float)
        best = self._solve_from(seed, target_pos, target_quat)
        rng = rng or np.random.default_rng(0)
        for _ in range(self.config.restarts if not best.converged else 0):
            candidate = self._solve_from(
                rng.uniform(self.lower, self.upper), target_pos, target_quat
            )
            if _better(candidate, best):
                best = candidate
            if best.converged:
                break
        return best

    def forward(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site position and quaternion for joint positions `qpos` (scratch data)."""
        data = self._scratch
        data.qpos[self._qadr] = qpos
        mujoco.mj_kinematics(self.model, data)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, data.site_xmat[self._site])
        return data.site_xpos[self._site].copy(), quat

    def _solve_from(
        self, seed: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray | None
    ) -> IKResult:
        data, cfg = self._scratch, self.config
        data.qpos[:] = self.model.qpos0
        data.qpos[self._qadr] = np.clip(seed, self.lower, self.upper)
        for iteration in range(1, cfg.max_iterations + 1):
            mujoco.mj_kinematics(self.model, data)
            mujoco.mj_comPos(self.model, data)
            pos_err, rot_err = self._pose_error(data, target_pos, target_quat)
            if pos_err < cfg.tolerance_m and rot_err < cfg.tolerance_rad:
                return self._result(data, pos_err, rot_err, iteration, converged=True)
            self._dls_step(data, 6 if target_quat is not None else 3)
            largest = float(np.max(np.abs(self._dq)))
            if largest > cfg.max_joint_step_rad:
                self._dq *= cfg.max_joint_step_rad / largest
            q = data.qpos[self._qadr] + self._dq
            data.qpos[self._qadr] = np.clip(q, self.lower, self.upper)
        mujoco.mj_kinematics(self.model, data)
        pos_err, rot_err = self._pose_error(data, target_pos, target_quat)
        converged = pos_err < cfg.tolerance_m and rot_err < cfg.tolerance_rad
        return self._result(data, pos_err, rot_err, cfg.max_iterations, converged)

    def _result(
        self, data: mujoco.MjData, pos_err: float, rot_err: float, iterations: int, converged: bool
    ) -> IKResult:
        return IKResult(data.qpos[self._qadr].copy(), pos_err, rot_err, iterations, converged)

    # -- shared kernels ------------------------------------------------------------------
    def _pose_error(
        self, data: mujoco.MjData, target_pos: np.ndarray, target_quat: np.ndarray | None
    ) -> tuple[float, float]:
        """Fill `_err` (position; weighted world-frame rotation vector); return the norms."""
        err = self._err
        np.subtract(target_pos, data.site_xpos[self._site], out=self._err_pos)
        position_error = float(np.sqrt(err[:3] @ err[:3]))
        if target_quat is None:
            err[3:] = 0.0
            return position_error, 0.0
        self._rotation_error(data, target_quat, 1.0)
        rotation_error = float(np.sqrt(err[3:] @ err[3:]))
        self._err_rot *= self._weight
        return position_error, rotation_error

    def _rotation_error(self, data: mujoco.MjData, target_quat: np.ndarray, scale: float) -> None:
        """`scale` x the world-frame rotation vector taking the site to `target_quat`.

        Computed as minus the rotation vector of current * target^-1.
        """
        mujoco.mju_negQuat(self._target_conj, target_quat)
        quat, quat_err = self._quat, self._quat_err
        mujoco.mju_mat2Quat(quat, data.site_xmat[self._site])
        mujoco.mju_mulQuat(quat_err, quat, self._target_conj)
        mujoco.mju_quat2Vel(self._err_rot, quat_err, -1.0 / scale)

    def _dls_step(self, data: mujoco.MjData, rows: int) -> None:
        """`_dq = J^T (J J^T + lambda^2 I)^-1 err` with J the site Jacobian on the joints.

        The first `rows` rows are used: 3 (position only) or 6 (rotation rows weighted).
        The 6x6 system is solved with MuJoCo's Cholesky, much cheaper than numpy's on
        arrays this small.
        """
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self._site)
        jn = self._jn
        jn[:] = self._jac[:, self._dof_slice]
        if rows == 6:
            self._jnr *= self._weight
            j, a, y, damp, err = jn, self._a, self._y, self._damp6, self._err
        else:
            j, a, y, damp, err = self._jn3, self._a3, self._y3, self._damp3, self._err_pos
        mujoco.mju_mulMatMatT(a, j, j)
        a += damp
        mujoco.mju_cholFactor(a, 0.0)
        mujoco.mju_cholSolve(y, a, err)
        mujoco.mju_mulMatTVec(self._dq, j, y)


class IKServo:
    """One DLS iteration per call from live kinematics: a task's per-control-step IK.

    Bound once to one `MjData` (views of its arrays are kept, so a call does no lookups and
    no allocation) and to a fixed orientation target (or none). Each call reads the
    kinematics the last physics step left in `data`, writes nothing to it, and returns joint
    position targets. It costs a few microseconds, which matters: it runs every step.

    The damping enters through an augmented Jacobian [J, D], so J J^T + D^2 is one MuJoCo
    call. Weighting the rotation rows by w is the same as damping them by lambda / w
    (J^T W (W J J^T W + lambda^2)^-1 W e = J^T (J J^T + lambda^2 W^-2)^-1 e), which spares a
    per-step multiply. The small systems are solved with MuJoCo's Cholesky (numpy's linalg
    costs more in call overhead than in arithmetic at this size).
    """

    def __init__(
        self, ik: DlsIK, data: mujoco.MjData, target_quat: np.ndarray | None, clamp: bool
    ):
        self._ik, self._data, self._model = ik, data, ik.model
        self._site = ik._site
        self._site_xpos = data.site_xpos[self._site]
        self._site_xmat = data.site_xmat[self._site]
        self._qpos = data.qpos[ik._qpos_slice]
        self._dofs = ik._dof_slice
        self._dof_ids = np.asarray(ik._dofs, dtype=np.int64)
        self._bounds = np.array([ik.lower, ik.upper], dtype=np.float64)
        self._clamp = clamp
        self._kernel = _compiled_targets()
        self._addresses = (self._model._address, data._address)  # each lookup costs ~0.1 us
        self._weight = ik.config.orientation_weight_m_per_rad
        self._nv = ik.model.nv
        self.set_orientation(target_quat)
        if self._kernel is not None:  # compile now, not at an episode's first step
            self.targets(self._site_xpos.copy(), np.zeros(len(ik.joints)))

    def set_orientation(self, target_quat: np.ndarray | None) -> None:
        """Hold the site at `target_quat` (w, x, y, z), or leave orientation free (None)."""
        n, lam, nv = len(self._ik.joints), self._ik.config.damping_m, self._nv
        rows = 3 if target_quat is None else 6
        self._rotation = target_quat is not None
        # One workspace (`_workspace_views` lays it out) so the kernel takes one array.
        self._work = np.zeros(_workspace_size(nv, n, rows))
        (self._jac, self._aug, self._a, self._err, self._y, self._dq_aug, self._quat,
         self._quat_err, self._conj) = _workspace_views(self._work, nv, n, rows)  # fmt: skip
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]
        if target_quat is not None:
            mujoco.mju_negQuat(self._conj, np.asarray(target_quat, dtype=np.float64))
        damping = np.full(rows, lam)
        damping[3:] /= self._weight
        self._aug[:, n:] = np.diag(damping)
        self._j = self._aug[:, :n]
        self._err_pos, self._err_rot = self._err[:3], self._err[3:]
        self._dq = self._dq_aug[:n]

    def targets(self, target_pos: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Joint targets (written into `out`) one DLS step toward `target_pos` [m, world]:
        compiled where MuJoCo's C library is at hand (the same C calls, so the same bits).
        `target_pos` is a float64 array of 3."""
        if self._kernel is not None and out.flags.c_contiguous:
            model, data = self._addresses
            self._kernel(
                model, data, self._site, target_pos, self._site_xpos, self._site_xmat,
                self._dof_ids, self._work, self._nv, self._rotation, self._qpos, self._clamp,
                self._bounds, out,
            )  # fmt: skip
            return out
        return self._python_targets(target_pos, out)

    def _python_targets(self, target_pos: np.ndarray, out: np.ndarray) -> np.ndarray:
        """`targets` through the Python bindings (and the reference for the kernel)."""
        np.subtract(target_pos, self._site_xpos, out=self._err_pos)
        mujoco.mj_jacSite(self._model, self._data, self._jacp, self._jacr, self._site)
        rows = 3
        if self._rotation:
            rows = 6
            mujoco.mju_mat2Quat(self._quat, self._site_xmat)
            mujoco.mju_mulQuat(self._quat_err, self._quat, self._conj)
            # the error is minus the rotation of current * target^-1
            mujoco.mju_quat2Vel(self._err_rot, self._quat_err, -1.0)
        self._j[:] = self._jac[:rows, self._dofs]
        mujoco.mju_mulMatMatT(self._a, self._aug, self._aug)
        mujoco.mju_cholFactor(self._a, 0.0)
        mujoco.mju_cholSolve(self._y, self._a, self._err)
        mujoco.mju_mulMatTVec(self._dq_aug, self._aug, self._y)
        np.add(self._qpos, self._dq, out=out)
        if self._clamp:
            np.maximum(out, self._ik.lower, out=out)
            np.minimum(out, self._ik.upper, out=out)
        return out


def _workspace_size(nv: int, n: int, rows: int) -> int:
    """Floats in an `IKServo` workspace (`_workspace_views`)."""
    return 6 * nv + rows * (n + rows) + rows * rows + 2 * rows + (n + rows) + 12


def _workspace_views(work: np.ndarray, nv: int, n: int, rows: int) -> tuple[np.ndarray, ...]:
    """The workspace's parts, in order: the site Jacobian (6 x nv), the augmented Jacobian
    [J, D] (rows x n+rows), J J^T + D^2 (rows x rows), the error, the Cholesky solution, the
    step [dq, -] (n+rows), the site's quaternion, its error quaternion and the target's
    conjugate. Compiled too: the kernel takes the one array and views it the same way."""
    jac_end = 6 * nv
    aug_end = jac_end + rows * (n + rows)
    a_end = aug_end + rows * rows
    err_end = a_end + rows
    y_end = err_end + rows
    dq_end = y_end + n + rows
    return (
        work[:jac_end].reshape((6, nv)),
        work[jac_end:aug_end].reshape((rows, n + rows)),
        work[aug_end:a_end].reshape((rows, rows)),
        work[a_end:err_end],
        work[err_end:y_end],
        work[y_end:dq_end],
        work[dq_end : dq_end + 4],
        work[dq_end + 4 : dq_end + 8],
        work[dq_end + 8 : dq_end + 12],
    )


_KERNEL: list[Any] = []


def _compiled_targets() -> Any:
    """`IKServo._python_targets` compiled (numba) over MuJoCo's C functions, or None."""
    if not _KERNEL:
        _KERNEL.append(_build_targets())
    return _KERNEL[0]


def _build_targets() -> Any:
    c = functions()
    if c is None:
        return None
    import numba

    jac_site, mat2quat, mul_quat = c["mj_jacSite"], c["mju_mat2Quat"], c["mju_mulQuat"]
    quat2vel, mul_mat_mat_t = c["mju_quat2Vel"], c["mju_mulMatMatT"]
    views = numba.njit(_workspace_views)
    chol_factor, chol_solve, mul_mat_t_vec = (
        c["mju_cholFactor"], c["mju_cholSolve"], c["mju_mulMatTVec"]
    )  # fmt: skip

    @numba.njit  # not cached: the C functions are bound at run time
    def targets(model, data, site, target, site_xpos, site_xmat, dofs, work, nv, rotation,
                qpos, clamp, bounds, out):  # pragma: no cover - compiled  # fmt: skip
        n, rows = dofs.shape[0], 6 if rotation else 3
        jac, aug, a, err, y, dq_aug, quat, quat_err, conj = views(work, nv, n, rows)
        for i in range(3):
            err[i] = target[i] - site_xpos[i]
        jac_site(model, data, jac.ctypes.data, jac.ctypes.data + 3 * nv * 8, site)
        if rotation:
            mat2quat(quat.ctypes.data, site_xmat.ctypes.data)
            mul_quat(quat_err.ctypes.data, quat.ctypes.data, conj.ctypes.data)
            quat2vel(err.ctypes.data + 3 * 8, quat_err.ctypes.data, -1.0)
        for r in range(rows):
            for j in range(n):
                aug[r, j] = jac[r, dofs[j]]
        width = aug.shape[1]
        mul_mat_mat_t(a.ctypes.data, aug.ctypes.data, aug.ctypes.data, rows, width, rows)
        chol_factor(a.ctypes.data, rows, 0.0)
        chol_solve(y.ctypes.data, a.ctypes.data, err.ctypes.data, rows)
        mul_mat_t_vec(dq_aug.ctypes.data, aug.ctypes.data, y.ctypes.data, rows, width)
        for j in range(n):
            value = qpos[j] + dq_aug[j]
            if clamp:
                value = min(max(value, bounds[0, j]), bounds[1, j])
            out[j] = value

    return targets


def _better(a: IKResult, b: IKResult) -> bool:
    """Prefer converged results, then smaller position error."""
    if a.converged != b.converged:
        return a.converged
    return a.position_error_m + a.rotation_error_rad * 0.1 < (
        b.position_error_m + b.rotation_error_rad * 0.1
    )


def _as_slice(indices: np.ndarray) -> slice | np.ndarray:
    """A slice for consecutive indices (views are cheaper than fancy indexing)."""
    start = int(indices[0])
    if np.array_equal(indices, np.arange(start, start + len(indices))):
        return slice(start, start + len(indices))
    return indices


def _object_id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str, label: str) -> int:
    index = mujoco.mj_name2id(model, kind, name)
    if index < 0:
        count = {"site": model.nsite, "joint": model.njnt}[label]
        valid = [mujoco.mj_id2name(model, kind, i) or "" for i in range(count)]
        raise UnknownNameError(label, name, valid)
    return index


def demo() -> IKResult:
    """Solve one Fetch gripper target from the model's default pose."""
    from sim.robots.fetch.builder import ARM_JOINTS, GRIP_SITE
    from sim.robots.models import load_model

    ik = DlsIK(load_model("fetch", "reach"), GRIP_SITE, ARM_JOINTS)
    return ik.solve(np.array([1.3, 0.75, 0.6]), np.array([0.7071068, 0.0, 0.7071068, 0.0]))
