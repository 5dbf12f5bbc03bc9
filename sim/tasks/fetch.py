"""Fetch tasks (Reach, Push, Slide, PickAndPlace) with Gymnasium-Robotics' Fetch v4 semantics.

Same action ([dx, dy, dz, gripper] in [-1, 1], 5 cm per step, gripper pointing down), same
observation layout and goal sampling as Gymnasium-Robotics, but the arm is the twin's
position-servoed arm: each control step one damped-least-squares IK iteration turns the
Cartesian gripper target into the seven joint position targets. No mocap.

Run: `python -c "from sim.envs import make_task_env as m; print(m('fetch-push').reset(seed=0)[0])"`

Step-time code is written for speed (the env step must cost little more than its 20
physics steps): every name is resolved in `bind`, arrays are preallocated, and the
tiny vectors are handled as Python floats, which is faster than numpy on 3 elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from sim.errors import ConfigError, StateError
from sim.ik import DlsIK, IKConfig
from sim.robots.fetch.builder import (
    ARM_ACTUATORS,
    ARM_JOINTS,
    FINGER_JOINTS,
    FINGER_OPENING_RANGE_M,
    GRIP_SITE,
    GRIPPER_ACTUATOR,
    OBJECT_GEOM,
    OBJECT_JOINT,
    OBJECT_SITE,
    TABLE_BODY,
    TARGET_SITE,
)
from sim.tasks.base import Task
from sim.twin import Twin

# Gripper pointing down: its x axis along world -z (gymnasium-robotics' [1, 0, 1, 0]).
DOWN_QUAT = np.array([math.sqrt(0.5), 0.0, math.sqrt(0.5), 0.0])
# A configuration near gymnasium-robotics' start pose; the IK seed for homing.
IK_SEED = (0.0, -0.66, 0.0, 1.14, 0.0, 1.29, 0.0)
_SITE = mujoco.mjtObj.mjOBJ_SITE
_EPS4 = np.finfo(np.float64).eps * 4.0


@dataclass(frozen=True)
class FetchTaskConfig:
    """One Fetch task's parameters, named as in gymnasium-robotics' `MujocoFetchEnv`.

    `gripper_start_m` is where the gripper site starts (gymnasium-robotics' realized
    `initial_gripper_xpos`; README.md explains push/slide's height). Goals are sampled around
    it: `target_range_m`, plus `target_offset_m`; objects `obj_range_m` around it and at least
    `min_object_distance_m` from it.
    """

    scene: str
    has_object: bool
    block_gripper: bool
    gripper_start_m: tuple[float, float, float]
    target_in_the_air: bool = False
    target_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    obj_range_m: float = 0.15
    target_range_m: float = 0.15
    max_air_height_m: float = 0.45
    distance_threshold_m: float = 0.05
    min_object_distance_m: float = 0.1
    step_m: float = 0.05  # gripper displacement per unit action per control step
    # What an action moves: "gripper" (Gymnasium-Robotics: the target is where the gripper
    # is + step_m x action) or "target" (the previous target + step_m x action, kept within
    # max_lead_m of the gripper): with the robot's speed-limited actuation the gripper lags
    # its target, and a zero action then holds the target instead of chasing the gripper.
    action_moves: str = "gripper"
    max_lead_m: float = 0.1
    # Append the arm's joint positions and velocities (x dt): under the robot's acceleration
    # limits the arm's momentum, not only the gripper's, decides where it goes next.
    observe_arm_joints: bool = False
    gripper_step_m: float = 0.05  # finger opening change per unit gripper action per step
    grip_clearance_m: float = 0.02  # lowest gripper site height above the table top
    workspace_height_m: float = 0.6  # highest gripper site height above the table top
    settle_steps: int = 200  # physics steps the object settles on the table, once, in bind
    ik: IKConfig = field(default_factory=IKConfig)

    def __post_init__(self) -> None:
        if self.distance_threshold_m <= 0 or self.step_m <= 0:
            raise ConfigError("FetchTaskConfig: distance_threshold_m and step_m must be positive")
        if self.action_moves not in ("gripper", "target") or not self.max_lead_m > 0:
            raise ConfigError(
                f"FetchTaskConfig: action_moves {self.action_moves!r} must be 'gripper' or "
                f"'target', and max_lead_m {self.max_lead_m} > 0"
            )
        if self.obj_range_m < 0 or self.target_range_m < 0:
            raise ConfigError("FetchTaskConfig: sampling ranges must be >= 0")
        if self.has_object and self.obj_range_m * math.sqrt(2) < self.min_object_distance_m:
            raise ConfigError(
                f"FetchTaskConfig: obj_range_m={self.obj_range_m} cannot place the object "
                f"{self.min_object_distance_m} m from the gripper; widen obj_range_m"
            )


class FetchTask(Task):
    """Shared machinery of the four Fetch tasks; subclasses only choose a config."""

    robot = "fetch"
    video_camera = "video"
    frame_skip = 20
    max_episode_steps = 50
    goal_unit = "m"
    default_config: FetchTaskConfig

    def __init__(self, config: FetchTaskConfig | None = None, **overrides: Any):
        """`overrides` change fields of the task's default config (a registered version)."""
        self.config = replace(config or self.default_config, **overrides)
        self.scene = self.config.scene
        self._threshold_sq = self.config.distance_threshold_m**2
        self._bound = False

    # -- spaces ------------------------------------------------------------------------
    @property
    def action_space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)

    @property
    def goal_dim(self) -> int:
        return 3

    # -- binding: every name lookup and all one-off computation ------------------------
    def bind(self, twin: Twin) -> None:
        """Resolve names, home the arm by IK and cache the initial state (once)."""
        model, data = twin.model, twin.data
        self._model, self._data = model, data
        self._dt = float(model.opt.timestep) * self.frame_skip
        self._grip_site = model.site(GRIP_SITE).id
        self._grip_xpos = data.site_xpos[self._grip_site]  # live views, never reallocated
        self._finger_qadr = self._contiguous(list(twin.qpos_indices(FINGER_JOINTS)), "fingers")
        self._finger_dofs = self._contiguous(list(twin.qvel_indices(FINGER_JOINTS)), "fingers")
        self._arm_ctrl = self._contiguous([model.actuator(a).id for a in ARM_ACTUATORS], "arm")
        self._gripper_ctrl = model.actuator(GRIPPER_ACTUATOR).id
        self._ctrl = data.ctrl
        self._arm_ctrl_view = data.ctrl[self._arm_ctrl]
        self._finger_qpos = data.qpos[self._finger_qadr]
        self._finger_qvel = data.qvel[self._finger_dofs]
        arm_qadr = self._contiguous(list(twin.qpos_indices(ARM_JOINTS)), "arm joints")
        arm_dofs = self._contiguous(list(twin.qvel_indices(ARM_JOINTS)), "arm joints")
        self._arm_qpos, self._arm_qvel = data.qpos[arm_qadr], data.qvel[arm_dofs]
        self._observe_arm = self.config.observe_arm_joints
        self._step_m = self.config.step_m
        self._moves_target = self.config.action_moves == "target"
        self._max_lead = self.config.max_lead_m
        self._gripper_step_m = self.config.gripper_step_m
        self._finger_max_m = FINGER_OPENING_RANGE_M[1]
        self._gripper_free = not self.config.block_gripper
        self._has_object = self.config.has_object
        self._grip_vel = np.zeros(6)
        self._target = np.zeros(3)
        self._ik = DlsIK(model, GRIP_SITE, ARM_JOINTS, self.config.ik)
        # MuJoCo clamps ctrl to ctrlrange, which the builder set to the joint range.
        self._servo = self._ik.servo(data, DOWN_QUAT, clamp=False)
        self._bind_workspace(model, data)
        self._bind_goal_marker(model, data)
        if self.config.has_object:
            self._bind_object(twin)
        self._initial_state = self._home(twin)
        self._qpos_offset = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_TIME)
        self._bound = True

    def _contiguous(self, ids: list[int], what: str) -> slice:
        """Indices as one slice (a view: the IK writes into ctrl, observations read qpos)."""
        ids = [int(i) for i in ids]
        if ids != list(range(ids[0], ids[0] + len(ids))):
            raise StateError(
                f"{type(self).__name__}: the {what}' indices {ids} are not consecutive; "
                "the Fetch model builder changed its joint or actuator order"
            )
        return slice(ids[0], ids[0] + len(ids))

    def _bind_workspace(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Clamp box for the gripper target: over the table, above its top."""
        mujoco.mj_forward(model, data)
        body = model.body(TABLE_BODY).id
        geom = int(model.body_geomadr[body])
        center, half = data.geom_xpos[geom], model.geom_size[geom]
        self.table_top_m = float(center[2] + half[2])
        low = center[:2] - half[:2]
        high = center[:2] + half[:2]
        self._box = (
            float(low[0]),
            float(low[1]),
            self.table_top_m + self.config.grip_clearance_m,
            float(high[0]),
            float(high[1]),
            self.table_top_m + self.config.workspace_height_m,
        )

    def _bind_goal_marker(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self._target_site = model.site(TARGET_SITE).id
        body = model.site_bodyid[self._target_site]
        self._target_site_origin = data.xpos[body].copy()  # a static body, unrotated

    def _bind_object(self, twin: Twin) -> None:
        model, data = twin.model, twin.data
        joint = model.joint(OBJECT_JOINT)
        self._obj_qadr = int(joint.qposadr[0])
        self._obj_dof = int(joint.dofadr[0])
        self._obj_site = model.site(OBJECT_SITE).id
        self._obj_xpos = data.site_xpos[self._obj_site]
        self._obj_xmat = data.site_xmat[self._obj_site]
        self._obj_qvel = data.qvel[self._obj_dof : self._obj_dof + 6]
        geom = model.geom(OBJECT_GEOM).id
        box = model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_BOX
        self._obj_half_height = float(model.geom_size[geom][2 if box else 1])  # box or puck

    def _home(self, twin: Twin) -> np.ndarray:
        """Arm at the IK solution for the start pose; object settled on the table."""
        model, data = twin.model, twin.data
        start = np.array(self.config.gripper_start_m)
        solution = self._ik.solve(start, DOWN_QUAT, q_init=np.array(IK_SEED))
        if not solution.converged:
            raise StateError(
                f"{type(self).__name__}: no IK solution for gripper start {start} "
                f"(error {solution.position_error_m:.4f} m); is the scene layout right?"
            )
        twin.reset()
        data.qpos[twin.qpos_indices(ARM_JOINTS)] = solution.qpos
        data.ctrl[self._arm_ctrl] = solution.qpos
        data.ctrl[self._gripper_ctrl] = FINGER_OPENING_RANGE_M[0]
        if self.config.has_object:
            far = start[:2] + np.array([0.0, 0.3])  # off to the side while settling
            z = self.table_top_m + self._obj_half_height
            data.qpos[self._obj_qadr : self._obj_qadr + 7] = (*far, z, 1.0, 0.0, 0.0, 0.0)
        mujoco.mj_forward(model, data)
        twin.step(nstep=self.config.settle_steps)
        data.qvel[:] = 0.0
        data.time = 0.0
        mujoco.mj_forward(model, data)
        self.initial_gripper_xpos = self._grip_xpos.copy()
        if self.config.has_object:
            self.height_offset = float(self._obj_xpos[2])
        return twin.get_state()

    # -- episode -----------------------------------------------------------------------
    def reset(self, twin: Twin, rng: np.random.Generator) -> np.ndarray:
        """Restore the cached start, place the object, sample the goal (gymnasium's order)."""
        state = self._initial_state.copy()
        if self.config.has_object:
            adr = self._qpos_offset + self._obj_qadr
            state[adr : adr + 2] = self._sample_object_xy(rng)
        goal = self._sample_goal(rng)
        self._twin_model_site(goal)
        twin.set_state(state)
        self._target[:] = self._grip_xpos
        return goal

    def _sample_object_xy(self, rng: np.random.Generator) -> np.ndarray:
        center = self.initial_gripper_xpos[:2]
        xy = center.copy()
        while np.linalg.norm(xy - center) < self.config.min_object_distance_m:
            xy = center + rng.uniform(-self.config.obj_range_m, self.config.obj_range_m, size=2)
        return xy

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        goal = self.initial_gripper_xpos + rng.uniform(
            -cfg.target_range_m, cfg.target_range_m, size=3
        )
        if not cfg.has_object:
            return goal
        goal += np.asarray(cfg.target_offset_m)
        goal[2] = self.height_offset
        if cfg.target_in_the_air and rng.uniform() < 0.5:
            goal[2] += rng.uniform(0, cfg.max_air_height_m)
        return goal

    def _twin_model_site(self, goal: np.ndarray) -> None:
        """Move the goal marker (a model parameter, as in gymnasium-robotics)."""
        self._model.site_pos[self._target_site] = goal - self._target_site_origin

    # -- control -----------------------------------------------------------------------
    def apply_action(self, twin: Twin, action: np.ndarray) -> None:
        """Gripper target = where the gripper is + 5 cm x action, then one IK step.

        As gymnasium-robotics' mocap (target relative to the current gripper position), so
        the outer loop has no integrator to wind up when the torque-limited arm lags or is
        blocked; the high-gain, gravity-compensated servos keep the sag of a held object at
        millimetres. The target stays inside the workspace box over the table.
        """
        ax, ay, az, grip = action.tolist()
        step = self._step_m
        gx, gy, gz = self._grip_xpos.tolist()
        lx, ly, lz, hx, hy, hz = self._box
        if self._moves_target:  # from the previous target, at most max_lead_m ahead
            tx, ty, tz = self._target.tolist()
            lead = self._max_lead
            bx = min(max(tx + ax * step, gx - lead), gx + lead)
            by = min(max(ty + ay * step, gy - lead), gy + lead)
            bz = min(max(tz + az * step, gz - lead), gz + lead)
        else:
            bx, by, bz = gx + ax * step, gy + ay * step, gz + az * step
        self._target[:] = (min(max(bx, lx), hx), min(max(by, ly), hy), min(max(bz, lz), hz))
        self._servo.targets(self._target, self._arm_ctrl_view)
        if self._gripper_free:
            right, left = self._finger_qpos.tolist()
            command = 0.5 * (right + left) + grip * self._gripper_step_m
            self._ctrl[self._gripper_ctrl] = min(max(command, 0.0), self._finger_max_m)

    def restart_targets(self, twin: Twin) -> None:
        """Targets from where the gripper is (a new episode on a robot mid-pose)."""
        self._target[:] = self._grip_xpos

    # -- observation and goals ---------------------------------------------------------
    def observation(self, twin: Twin) -> np.ndarray:
        """gymnasium-robotics' layout: grip_pos, object_pos, object_rel_pos, gripper_state,
        object_rot (euler), object_velp*dt, object_velr*dt, grip_velp*dt, gripper_vel*dt."""
        dt = self._dt
        gx, gy, gz = self._grip_xpos.tolist()
        mujoco.mj_objectVelocity(
            self._model, self._data, _SITE, self._grip_site, self._grip_vel, 0
        )
        _, _, _, vx, vy, vz = self._grip_vel.tolist()
        vx, vy, vz = vx * dt, vy * dt, vz * dt
        right, left = self._finger_qpos.tolist()
        right_vel, left_vel = self._finger_qvel.tolist()
        if self._moves_target:
            tx, ty, tz = self._target.tolist()
            lead = [tx - gx, ty - gy, tz - gz]
        else:
            lead = []
        if self._observe_arm:
            lead += self._arm_qpos.tolist() + (self._arm_qvel * dt).tolist()
        if not self._has_object:
            return np.array(
                [gx, gy, gz, right, left, vx, vy, vz, right_vel * dt, left_vel * dt, *lead]
            )
        ox, oy, oz = self._obj_xpos.tolist()
        m = self._obj_xmat.tolist()
        ovx, ovy, ovz, wx, wy, wz = self._obj_qvel.tolist()
        # The free joint's angular velocity is in the body frame, gymnasium's in the world's.
        return np.array(
            [
                gx, gy, gz, ox, oy, oz, ox - gx, oy - gy, oz - gz, right, left, *_mat2euler(m),
                ovx * dt - vx, ovy * dt - vy, ovz * dt - vz,
                (m[0] * wx + m[1] * wy + m[2] * wz) * dt,
                (m[3] * wx + m[4] * wy + m[5] * wz) * dt,
                (m[6] * wx + m[7] * wy + m[8] * wz) * dt,
                vx, vy, vz, right_vel * dt, left_vel * dt, *lead,
            ]
        )  # fmt: skip

    def observation_fields(self, twin: Twin | None = None) -> list[tuple[str, int, str]]:
        """The layout `observation` returns (velocities are per control step, x dt)."""
        lead = [("target_lead", 3, "m")] if self.config.action_moves == "target" else []
        if self.config.observe_arm_joints:
            lead += [("arm_qpos", 7, "rad"), ("arm_qvel", 7, "rad/step")]
        if not self.config.has_object:
            return [
                ("grip_pos", 3, "m"),
                ("gripper_state", 2, "m"),
                ("grip_velp", 3, "m/step"),
                ("gripper_vel", 2, "m/step"),
                *lead,
            ]
        return [
            ("grip_pos", 3, "m"),
            ("object_pos", 3, "m"),
            ("object_rel_pos", 3, "m"),
            ("gripper_state", 2, "m"),
            ("object_rot", 3, "rad"),
            ("object_velp", 3, "m/step"),
            ("object_velr", 3, "rad/step"),
            ("grip_velp", 3, "m/step"),
            ("gripper_vel", 2, "m/step"),
            *lead,
        ]

    def action_fields(self, twin: Twin) -> list[tuple[str, str]]:
        """Gripper displacement per unit action per step, and finger opening change."""
        step, grip = self.config.step_m, self.config.gripper_step_m
        if self.config.action_moves == "target":
            unit = f"{step} m/step (arm target displacement from the previous target, world frame)"
        else:
            unit = f"{step} m/step (gripper target displacement, world frame)"
        return [("dx", unit), ("dy", unit), ("dz", unit), ("gripper", f"{grip} m/step opening")]

    def achieved_goal(self, twin: Twin) -> np.ndarray:
        """Object position (gripper position for reach)."""
        return (self._obj_xpos if self.config.has_object else self._grip_xpos).copy()

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """Distance below the threshold; batch-capable (shape achieved.shape[:-1])."""
        if np.ndim(achieved) == 1 and np.ndim(desired) == 1:  # every env step: scalars
            return np.asarray(
                math.dist(achieved.tolist(), desired.tolist()) ** 2 < self._threshold_sq
            )
        diff = np.subtract(achieved, desired)
        return np.einsum("...i,...i->...", diff, diff) < self._threshold_sq

    def compute_reward(
        self, achieved: np.ndarray, desired: np.ndarray, info: Any = None
    ) -> np.ndarray | float:
        """Sparse: 0 within the threshold, -1 otherwise (gymnasium-robotics' sparse reward)."""
        success = self.is_success(achieved, desired)
        if success.ndim == 0:
            return 0.0 if success else -1.0
        return success.astype(np.float64) - 1.0


def _mat2euler(m: list[float]) -> tuple[float, float, float]:
    """gymnasium-robotics' `rotations.mat2euler` for one row-major 3x3 matrix, in floats."""
    cy = math.sqrt(m[8] * m[8] + m[5] * m[5])
    if cy > _EPS4:
        return -math.atan2(m[5], m[8]), -math.atan2(-m[2], cy), -math.atan2(m[1], m[0])
    return 0.0, -math.atan2(-m[2], cy), -math.atan2(-m[3], m[4])


class FetchReach(FetchTask):
    """Move the gripper to a goal in the air (gymnasium-robotics FetchReach-v4)."""

    default_config = FetchTaskConfig(
        scene="reach",
        has_object=False,
        block_gripper=True,
        gripper_start_m=(1.3418, 0.7491, 0.5351),
        target_in_the_air=True,
    )


class FetchPush(FetchTask):
    """Push a block to a goal on the table, gripper closed (FetchPush-v4)."""

    default_config = FetchTaskConfig(
        scene="push", block_gripper=True, gripper_start_m=(1.3419, 0.7491, 0.43), has_object=True
    )


class FetchSlide(FetchTask):
    """Slide a puck to a goal out of reach on a low-friction table (FetchSlide-v4)."""

    default_config = FetchTaskConfig(
        scene="slide",
        block_gripper=True,
        gripper_start_m=(0.9869, 0.7491, 0.43),
        target_offset_m=(0.4, 0.0, 0.0),
        obj_range_m=0.1,
        target_range_m=0.3,
        has_object=True,
    )


class FetchPickAndPlace(FetchTask):
    """Pick up a block and place it at a goal on the table or in the air (FetchPickAndPlace-v4)."""

    default_config = FetchTaskConfig(
        scene="pick_and_place",
        block_gripper=False,
        gripper_start_m=(1.3418, 0.7491, 0.5351),
        target_in_the_air=True,
        has_object=True,
    )
