"""Shadow Dexterous Hand tasks: HandReach and in-hand manipulation of a block, an egg and a pen.

They follow Gymnasium-Robotics' HandReach-v3, HandManipulateBlock{RotateZ,RotateParallel,
RotateXYZ,}-v1, HandManipulateEgg-v1 and HandManipulatePen-v1: absolute position control of
the 20 actuators, the same observation layouts, goal distributions and success tests. Two
deliberate differences, both for speed: the goal marker is a mocap body (no DOFs), and a
manipulation reset places the object on a hand settled once in `bind()` instead of running
200 physics steps per reset (see `ManipulateConfig.settle_substeps`).

Run: `python -c "from sim.envs import make_task_env as m; print(m('hand-block').reset(seed=0)[0])"`
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces

from sim.errors import ConfigError, PhysicsError, StateError, UnknownNameError
from sim.robots.shadow_hand.builder import (
    FINGERTIP_SITES,
    OBJECT_BODY,
    OBJECT_JOINT,
    REACH_TARGET_BODIES,
    TARGET_BODY,
)
from sim.tasks.base import Task
from sim.twin import Twin

ROBOT_JOINT_PREFIX = "robot0:"  # Gymnasium-Robotics observes every joint named robot*
PALM_BODY = "robot0:palm"
OBJECT_CENTER_SITE = "object:center"

# HandReach's initial hand pose (gymnasium-robotics reach.py DEFAULT_INITIAL_QPOS), rad.
REACH_INITIAL_QPOS = MappingProxyType(
    {
        "robot0:WRJ1": -0.16514339750464327,
        "robot0:WRJ0": -0.31973286565062153,
        "robot0:FFJ3": 0.14340512546557435,
        "robot0:FFJ2": 0.32028208333591573,
        "robot0:FFJ1": 0.7126053607727917,
        "robot0:FFJ0": 0.6705281001412586,
        "robot0:MFJ3": 0.000246444303701037,
        "robot0:MFJ2": 0.3152655251085491,
        "robot0:MFJ1": 0.7659800313729842,
        "robot0:MFJ0": 0.7323156897425923,
        "robot0:RFJ3": 0.00038520700007378114,
        "robot0:RFJ2": 0.36743546201985233,
        "robot0:RFJ1": 0.7119514095008576,
        "robot0:RFJ0": 0.6699446327514138,
        "robot0:LFJ4": 0.0525442258033891,
        "robot0:LFJ3": -0.13615534724474673,
        "robot0:LFJ2": 0.39872030433433003,
        "robot0:LFJ1": 0.7415570009679252,
        "robot0:LFJ0": 0.704096378652974,
        "robot0:THJ4": 0.003673823825070126,
        "robot0:THJ3": 0.5506291436028695,
        "robot0:THJ2": -0.014515151997119306,
        "robot0:THJ1": -0.0015229223564485414,
        "robot0:THJ0": -0.7894883021600622,
    }
)

ROBOT_JOINT_COUNT = 24  # robot0:* joints: wrist 2, FF/MF/RF 4 each, LF 5, thumb 5
TARGET_POSITIONS = ("ignore", "fixed", "random")
TARGET_ROTATIONS = ("ignore", "fixed", "z", "parallel", "xyz")


# -- shared hand behaviour --------------------------------------------------------------------
class _HandTask(Task):
    """Absolute position control of the hand's 20 actuators, as Gymnasium-Robotics' hand envs.

    An action in [-1, 1]^20 maps to each actuator's ctrlrange centre +/- half its width (the
    actuators are in Gymnasium-Robotics' order). Subclasses resolve their names in `bind`.
    """

    robot = "shadow_hand"
    video_camera = "video"
    frame_skip = 20  # 20 x 2 ms = 25 Hz

    def action_fields(self, twin: Twin) -> list[tuple[str, str]]:
        """The twin's 20 actuators; 0 is the ctrlrange centre, +/-1 its ends (rad)."""
        unit = "normalized position target: ctrlrange centre +/- half width (rad)"
        return [(name, unit) for name in twin.actuator_names]

    def bind(self, twin: Twin) -> None:
        """Cache actuator ranges, robot joint addresses and live views of MuJoCo's arrays."""
        model = twin.model
        low, high = model.actuator_ctrlrange[:, 0].copy(), model.actuator_ctrlrange[:, 1].copy()
        self._ctrl_low, self._ctrl_high = low, high
        self._ctrl_centre, self._ctrl_half = (high + low) / 2.0, (high - low) / 2.0
        self._ctrl = np.empty(model.nu)
        robot_joints = [name for name in twin.joint_names if name.startswith(ROBOT_JOINT_PREFIX)]
        self._robot_qpos = _as_slice(twin.qpos_indices(robot_joints))
        self._robot_qvel = _as_slice(twin.qvel_indices(robot_joints))
        # Views into MjData stay valid for the twin's life; reading them skips a binding call.
        self._twin = twin
        self._qpos, self._qvel = twin.data.qpos, twin.data.qvel

    @property
    def action_space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, shape=(20,), dtype=np.float32)

    def apply_action(self, twin: Twin, action: np.ndarray) -> None:
        """Absolute targets: ctrlrange centre + action * half range, clipped like the original."""
        ctrl = self._ctrl
        np.multiply(action, self._ctrl_half, out=ctrl)
        ctrl += self._ctrl_centre
        np.clip(ctrl, self._ctrl_low, self._ctrl_high, out=ctrl)
        twin.set_ctrl(ctrl)

    def _check_bound(self, twin: Twin) -> None:
        if getattr(self, "_twin", None) is not twin:
            raise StateError(
                f"{type(self).__name__} is bound to another twin; call bind(twin) first "
                "(a task caches addresses of the twin it was bound to)"
            )


# -- HandReach --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReachConfig:
    """HandReach-v3's parameters (gymnasium-robotics reach.py)."""

    distance_threshold_m: float = 0.01  # on the 15-vector of fingertip positions
    meeting_offset_from_palm_m: tuple[float, float, float] = (0.0, -0.09, 0.05)
    meeting_noise_std_m: float = 0.005
    fingertip_gap_m: float = 0.005  # thumb and finger stop this far short of the meeting point
    keep_initial_probability: float = 0.1  # goal = initial fingertips, so the thumb must return
    initial_qpos_rad: Mapping[str, float] = field(default_factory=lambda: REACH_INITIAL_QPOS)

    def __post_init__(self) -> None:
        if self.distance_threshold_m <= 0:
            raise ConfigError(f"distance_threshold_m must be > 0, got {self.distance_threshold_m}")
        if not 0.0 <= self.keep_initial_probability <= 1.0:
            raise ConfigError(
                f"keep_initial_probability must be in [0, 1], got {self.keep_initial_probability}"
            )


class HandReach(_HandTask):
    """Bring the thumb and one random finger together above the palm (or hold the start pose).

    Observation (63): robot qpos (24), robot qvel (24), fingertip positions (15, FF MF RF LF TH);
    achieved/desired goal: the five fingertip positions (15), in metres, world frame.
    """

    scene = "reach"
    max_episode_steps = 50
    goal_unit = "m"
    # Upstream's reward is -(d > threshold) while success is d < threshold: at d exactly at
    # the threshold they disagree, so the env must call compute_reward, not infer it.
    sparse_reward = False

    def __init__(self, config: ReachConfig | None = None):
        self.config = config or ReachConfig()

    def bind(self, twin: Twin) -> None:
        """Cache the initial state, the initial fingertip goal and the palm position."""
        super().bind(twin)
        model = twin.model
        self._tip_sites = np.array([model.site(name).id for name in FINGERTIP_SITES])
        self._site_xpos = twin.data.site_xpos
        self._target_mocap = np.array(
            [model.body_mocapid[model.body(name).id] for name in REACH_TARGET_BODIES]
        )
        twin.reset()
        twin.mirror(self.config.initial_qpos_rad)  # sets joints, zero velocity, forward
        self._initial_state = twin.get_state()
        self._initial_goal = self.achieved_goal(twin).reshape(5, 3)
        self._palm_pos = twin.data.body(PALM_BODY).xpos.copy()

    @property
    def goal_dim(self) -> int:
        return 15

    def reset(self, twin: Twin, rng: np.random.Generator) -> np.ndarray:
        """Restore the cached start pose, then sample a fingertip goal and show it."""
        self._check_bound(twin)
        twin.set_state(self._initial_state)
        goal = self._sample_goal(rng)
        twin.data.mocap_pos[self._target_mocap] = goal.reshape(5, 3)
        twin.forward()
        return goal

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        finger = int(rng.integers(4))  # FF, MF, RF or LF meets the thumb (index 4)
        meeting = self._palm_pos + np.asarray(cfg.meeting_offset_from_palm_m)
        meeting += rng.normal(scale=cfg.meeting_noise_std_m, size=3)
        goal = self._initial_goal.copy()
        for tip in (4, finger):
            direction = meeting - goal[tip]
            goal[tip] = meeting - cfg.fingertip_gap_m * direction / np.linalg.norm(direction)
        if rng.uniform() < cfg.keep_initial_probability:
            goal = self._initial_goal.copy()
        return goal.ravel()

    def observation(self, twin: Twin) -> np.ndarray:
        return np.concatenate(
            (
                self._qpos[self._robot_qpos],
                self._qvel[self._robot_qvel],
                self._site_xpos[self._tip_sites].ravel(),
            )
        )

    def observation_fields(self, twin: Twin | None = None) -> list[tuple[str, int, str]]:
        return [
            ("robot_qpos", ROBOT_JOINT_COUNT, "rad"),
            ("robot_qvel", ROBOT_JOINT_COUNT, "rad/s"),
            ("fingertip_pos", 15, "m"),
        ]

    def achieved_goal(self, twin: Twin) -> np.ndarray:
        return self._site_xpos[self._tip_sites].ravel()

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """All five fingertips together within `distance_threshold_m` (norm of the 15-vector)."""
        return self._distance(achieved, desired) < self.config.distance_threshold_m

    def compute_reward(
        self, achieved: np.ndarray, desired: np.ndarray, info: Any = None
    ) -> np.ndarray | float:
        """Sparse: -1 where the distance exceeds the threshold, else 0 (as the original)."""
        far = self._distance(achieved, desired) > self.config.distance_threshold_m
        if np.ndim(far) == 0:
            return -1.0 if far else 0.0
        return -far.astype(np.float64)

    def _distance(self, achieved: np.ndarray, desired: np.ndarray) -> Any:
        if _single(achieved, desired):  # the per-step case: plain floats are faster
            _check_goal_shapes(achieved, desired, 15)
            return math.dist(achieved.tolist(), desired.tolist())
        achieved, desired = _batch_goals(achieved, desired, 15)
        return np.linalg.norm(achieved - desired, axis=-1)


# -- in-hand manipulation ----------------------------------------------------------------------
@dataclass(frozen=True)
class ManipulateConfig:
    """Goal and reset parameters of HandManipulate* (gymnasium-robotics manipulate.py)."""

    target_position: str = "random"  # "ignore" | "fixed" | "random"
    target_rotation: str = "xyz"  # "ignore" | "fixed" | "z" | "parallel" | "xyz"
    target_position_range_m: tuple[tuple[float, float], ...] = (
        (-0.04, 0.04),
        (-0.06, 0.02),
        (0.0, 0.06),
    )
    randomize_initial_position: bool = True
    randomize_initial_rotation: bool = True
    initial_position_noise_std_m: float = 0.005
    distance_threshold_m: float = 0.01
    rotation_threshold_rad: float = 0.1
    ignore_z_target_rotation: bool = False  # compare xyz-Euler angles with z set equal (pen)
    # The original measures the angle as 2 acos(<q_a, q_b>), so q and -q (the same orientation)
    # are 2 pi apart; with ignore_z it even rebuilds q_a with a sign of its own, so about half
    # of all pen goals cannot be met exactly. Kept by default for parity with published
    # results; True uses |<q_a, q_b>| (the true angle between the orientations).
    rotation_sign_invariant: bool = False
    # Physics steps run after placing the object. The original runs 200 from a flat hand and
    # an object 3 cm up; we settle the hand once in bind() and put the object on it without
    # interpenetration at rest, so 0 is a valid start. Raise it to let contacts settle.
    settle_substeps: int = 0
    bind_settle_substeps: int = 500  # once per env: hand to its centre pose, object at rest
    min_object_height_m: float = 0.04  # object centre below this after settling: retry
    # Training only (`is_dropped`): the object rests ~0.16 m up on the hand and ~0.03 m on
    # the floor; below this it has left the hand (Dactyl ends its episodes there).
    drop_height_m: float = 0.1
    placement_tolerance_m: float = 5e-4  # contact depth accepted when placing (resting ~0.3 mm)
    max_reset_attempts: int = 10
    marker_offset_when_position_ignored_m: float = 0.15  # along x, to not hide the object

    def __post_init__(self) -> None:
        if self.target_position not in TARGET_POSITIONS:
            raise ConfigError(
                f"target_position {self.target_position!r} is not one of {TARGET_POSITIONS}"
            )
        if self.target_rotation not in TARGET_ROTATIONS:
            raise ConfigError(
                f"target_rotation {self.target_rotation!r} is not one of {TARGET_ROTATIONS}"
            )
        if np.shape(self.target_position_range_m) != (3, 2):
            raise ConfigError(
                "target_position_range_m must be ((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))"
            )
        if self.distance_threshold_m <= 0 or self.rotation_threshold_rad <= 0:
            raise ConfigError("distance_threshold_m and rotation_threshold_rad must be > 0")
        if min(self.settle_substeps, self.bind_settle_substeps) < 0 or self.max_reset_attempts < 1:
            raise ConfigError("settle step counts must be >= 0 and max_reset_attempts >= 1")


class _HandManipulate(_HandTask):
    """Reorient (and for full variants move) an object in the hand to a goal pose.

    Observation (61): robot qpos (24), robot qvel (24), object qvel (6: linear, angular),
    object pose (7: position m, quaternion wxyz); achieved/desired goal: object pose (7).
    """

    max_episode_steps = 100
    goal_unit = "m (position), 1 (quaternion wxyz)"

    def __init__(self, config: ManipulateConfig):
        self.config = config
        self._parallel_quats = _cube_rotations()

    @property
    def goal_dim(self) -> int:
        return 7

    def bind(self, twin: Twin) -> None:
        """Resolve the object and goal marker, and settle the hand once, for cheap resets."""
        super().bind(twin)
        model = twin.model
        joint = model.joint(OBJECT_JOINT)
        self._obj_qpos = slice(int(joint.qposadr[0]), int(joint.qposadr[0]) + 7)
        self._obj_qvel = slice(int(joint.dofadr[0]), int(joint.dofadr[0]) + 6)
        self._obj_body = model.body(OBJECT_BODY).id
        self._obj_center = model.site(OBJECT_CENTER_SITE).id
        self._marker = int(model.body_mocapid[model.body(TARGET_BODY).id])
        self._settled_state, self._settled_pose = self._settle_hand(twin)

    def _settle_hand(self, twin: Twin) -> tuple[np.ndarray, np.ndarray]:
        """Hold every actuator at its range centre with the object resting on the hand."""
        twin.reset()
        twin.step(self._ctrl_centre, nstep=self.config.bind_settle_substeps)
        twin.data.time = 0.0
        twin.data.qvel[self._obj_qvel] = 0.0
        twin.forward()
        return twin.get_state(), self._qpos[self._obj_qpos].copy()

    def reset(self, twin: Twin, rng: np.random.Generator) -> np.ndarray:
        """Settled hand, object at a randomized pose on it, then a goal shown by the marker."""
        self._check_bound(twin)
        for _ in range(self.config.max_reset_attempts):
            twin.set_state(self._settled_state)
            if self._place_object(twin, rng) and self._settle(twin):
                break
        else:
            raise PhysicsError(
                f"{type(self).__name__}: no valid initial object pose in "
                f"{self.config.max_reset_attempts} attempts; lower settle_substeps or "
                "initial_position_noise_std_m"
            )
        goal = self._sample_goal(rng)
        self._show_goal(twin, goal)
        return goal

    def _place_object(self, twin: Twin, rng: np.random.Generator) -> bool:
        """Randomize the object's pose as the original (rotation offset, position noise)."""
        cfg = self.config
        pos, quat = self._settled_pose[:3].copy(), self._settled_pose[3:].copy()
        if cfg.randomize_initial_rotation and cfg.target_rotation != "fixed":
            mujoco.mju_mulQuat(quat, quat.copy(), self._random_rotation(rng, initial=True))
        if cfg.randomize_initial_position and cfg.target_position != "fixed":
            pos += rng.normal(scale=cfg.initial_position_noise_std_m, size=3)
        mujoco.mju_normalize4(quat)
        self._qpos[self._obj_qpos] = np.concatenate((pos, quat))
        self._qvel[self._obj_qvel] = 0.0
        return self._push_clear(twin)

    def _push_clear(self, twin: Twin, attempts: int = 16, clearance_m: float = 1e-4) -> bool:
        """Move the object out of the hand until no contact penetrates more than the tolerance.

        A few `mj_forward`s instead of the original's 200 physics steps: the object starts at
        rest, touching the hand about as deeply as resting contacts do, so the first step has
        no large impulse. Each pass moves it by the sum of its penetrating contacts' normals
        times depth; from half-way on it also rises by the deepest one, to escape being wedged
        between fingers (pushes from opposite sides cancel).
        """
        model, data = twin.model, twin.data
        pos = self._obj_qpos.start
        for attempt in range(attempts):
            twin.forward()
            contacts = data.contact
            owner = model.geom_bodyid[contacts.geom] == self._obj_body  # (ncon, 2)
            depth = np.where(owner.any(axis=1), -contacts.dist, 0.0)
            if not len(depth) or depth.max() <= self.config.placement_tolerance_m:
                return True
            # The normal points from geom 1 to geom 2: move the object away from the other one.
            away = np.where(owner[:, 1], 1.0, -1.0) * (depth + clearance_m) * (depth > 0)
            step = away @ contacts.frame[:, :3]
            step[2] = max(step[2], 0.0) + (depth.max() if attempt >= attempts // 2 else 0.0)
            self._qpos[pos : pos + 3] += step
        return False

    def _settle(self, twin: Twin) -> bool:
        """Optionally let contacts settle; the object must still be on the palm afterwards."""
        if self.config.settle_substeps:
            try:
                twin.step(self._ctrl_centre, nstep=self.config.settle_substeps)
            except PhysicsError:
                return False
        return bool(twin.data.site_xpos[self._obj_center, 2] > self.config.min_object_height_m)

    def _random_rotation(self, rng: np.random.Generator, initial: bool) -> np.ndarray:
        """A rotation drawn as the original draws goal rotations (or initial offsets)."""
        kind = self.config.target_rotation
        if kind == "ignore" and initial:
            kind = "xyz"  # the original randomizes "ignore" like "xyz"
        if kind == "z":
            return _axis_angle_quat((0.0, 0.0, 1.0), rng.uniform(-np.pi, np.pi))
        if kind == "parallel":
            z_quat = _axis_angle_quat((0.0, 0.0, 1.0), rng.uniform(-np.pi, np.pi))
            out = np.empty(4)
            mujoco.mju_mulQuat(out, z_quat, self._parallel_quats[rng.integers(24)])
            return out
        if kind == "xyz":
            angle = rng.uniform(-np.pi, np.pi)
            return _axis_angle_quat(rng.uniform(-1.0, 1.0, size=3), angle)
        return self._qpos[self._obj_qpos][3:].copy()  # "fixed"/"ignore" goal: keep as is

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        pos = self._qpos[self._obj_qpos][:3].copy()
        if cfg.target_position == "random":
            low, high = np.asarray(cfg.target_position_range_m).T
            pos += rng.uniform(low, high)
        quat = self._random_rotation(rng, initial=False)
        mujoco.mju_normalize4(quat)
        return np.concatenate((pos, quat))

    def _show_goal(self, twin: Twin, goal: np.ndarray) -> None:
        """Put the translucent goal marker at the goal (beside the object if position is free)."""
        twin.data.mocap_pos[self._marker] = goal[:3]
        if self.config.target_position == "ignore":
            offset_m = self.config.marker_offset_when_position_ignored_m
            twin.data.mocap_pos[self._marker, 0] += offset_m
        twin.data.mocap_quat[self._marker] = goal[3:]
        twin.forward()

    def observation(self, twin: Twin) -> np.ndarray:
        qpos, qvel = self._qpos, self._qvel
        return np.concatenate(
            (
                qpos[self._robot_qpos],
                qvel[self._robot_qvel],
                qvel[self._obj_qvel],
                qpos[self._obj_qpos],
            )
        )

    def observation_fields(self, twin: Twin | None = None) -> list[tuple[str, int, str]]:
        """The free joint's qvel (angular part in the body frame) then its qpos."""
        return [
            ("robot_qpos", ROBOT_JOINT_COUNT, "rad"),
            ("robot_qvel", ROBOT_JOINT_COUNT, "rad/s"),
            ("object_velp", 3, "m/s"),
            ("object_velr", 3, "rad/s (body frame)"),
            ("object_pos", 3, "m"),
            ("object_quat", 4, "1 (wxyz)"),
        ]

    def achieved_goal(self, twin: Twin) -> np.ndarray:
        return self._qpos[self._obj_qpos].copy()

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """Within `distance_threshold_m` (unless position is ignored) and `rotation_threshold_rad`.

        One goal pair is the per-step case, computed on plain floats (numpy costs ~1 us per
        operation on tiny arrays); batches go through the same formulas on arrays.
        """
        cfg = self.config
        if _single(achieved, desired):
            _check_goal_shapes(achieved, desired, 7)
            d_pos, d_rot = self._distances(achieved.tolist(), desired.tolist(), _SCALAR)
            close = d_pos < cfg.distance_threshold_m
            return np.array(close and d_rot < cfg.rotation_threshold_rad)
        a, b = _batch_goals(achieved, desired, 7)
        d_pos, d_rot = self._distances(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0), _BATCH)
        return (d_pos < cfg.distance_threshold_m) & (d_rot < cfg.rotation_threshold_rad)

    def compute_reward(
        self, achieved: np.ndarray, desired: np.ndarray, info: Any = None
    ) -> np.ndarray | float:
        """Sparse: 0 on success, -1 otherwise (batch-capable)."""
        success = self.is_success(achieved, desired)
        if np.ndim(success) == 0:
            return 0.0 if success else -1.0
        return success.astype(np.float64) - 1.0

    def goal_distances(self, achieved: np.ndarray, desired: np.ndarray) -> dict[str, Any]:
        """The success test's own distances (batch): `position_m` unless the position is
        ignored, `rotation_rad` unless the rotation is (same angle convention as success)."""
        a, b = _batch_goals(achieved, desired, 7)
        d_pos, d_rot = self._distances(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0), _BATCH)
        out: dict[str, Any] = {}
        if self.config.target_position != "ignore":
            out["position_m"] = d_pos
        if self.config.target_rotation != "ignore":
            out["rotation_rad"] = d_rot
        return out

    def is_dropped(self, achieved: np.ndarray) -> np.ndarray:
        """The object's centre is below `drop_height_m` (it has left the hand)."""
        return np.asarray(achieved)[..., 2] < self.config.drop_height_m

    def _distances(self, a: Any, b: Any, ops: Any) -> tuple[Any, Any]:
        """Position distance and rotation angle between goals given as 7 components each."""
        d_pos: Any = 0.0
        if self.config.target_position != "ignore":
            d_pos = ops.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2)
        d_rot: Any = 0.0
        if self.config.target_rotation != "ignore":
            quat_a, quat_b = tuple(a[3:7]), tuple(b[3:7])
            if self.config.ignore_z_target_rotation:
                quat_a = _with_z_euler_of(quat_a, quat_b, ops)
            w = sum(x * y for x, y in zip(quat_a, quat_b, strict=True))  # of quat_a * conj(quat_b)
            if self.config.rotation_sign_invariant:
                w = abs(w)
            d_rot = 2.0 * ops.acos(ops.clip(w, -1.0, 1.0))
        return d_pos, d_rot


_BLOCK_VARIANTS = MappingProxyType(
    {
        # variant: (target_position, target_rotation), HandManipulateBlock*-v1
        "rotate-z": ("ignore", "z"),
        "rotate-parallel": ("ignore", "parallel"),
        "rotate-xyz": ("ignore", "xyz"),
        "full": ("random", "xyz"),
    }
)


class HandBlock(_HandManipulate):
    """Block (5 cm cube): variants "rotate-z", "rotate-parallel", "rotate-xyz" and "full"."""

    scene = "block"
    VARIANTS: ClassVar = _BLOCK_VARIANTS

    def __init__(self, variant: str = "full", config: ManipulateConfig | None = None):
        if variant not in _BLOCK_VARIANTS:
            raise UnknownNameError("HandBlock variant", variant, _BLOCK_VARIANTS)
        position, rotation = _BLOCK_VARIANTS[variant]
        self.variant = variant
        super().__init__(
            config or ManipulateConfig(target_position=position, target_rotation=rotation)
        )


class HandEgg(_HandManipulate):
    """Egg (ellipsoid): move and rotate to a random pose (HandManipulateEgg-v1)."""

    scene = "egg"

    def __init__(self, config: ManipulateConfig | None = None):
        super().__init__(config or ManipulateConfig())


class HandPen(_HandManipulate):
    """Pen (capsule): random pose, turning about its own axis ignored (HandManipulatePen-v1).

    As the original: no initial rotation randomization and a 5 cm position threshold.
    """

    scene = "pen"

    def __init__(self, config: ManipulateConfig | None = None):
        super().__init__(
            config
            or ManipulateConfig(
                randomize_initial_rotation=False,
                ignore_z_target_rotation=True,
                distance_threshold_m=0.05,
            )
        )


# -- goal arithmetic ---------------------------------------------------------------------------
class _SCALAR:
    """Math on Python floats: the per-step success test on one goal (no numpy overhead)."""

    sqrt, acos, atan2, sin, cos = math.sqrt, math.acos, math.atan2, math.sin, math.cos

    @staticmethod
    def clip(x: float, lo: float, hi: float) -> float:
        return min(max(x, lo), hi)

    @staticmethod
    def where(condition: bool, a: float, b: float) -> float:
        return a if condition else b


class _BATCH:
    """The same operations on arrays, for batches of goals (HER relabelling)."""

    sqrt, acos, atan2, sin, cos = np.sqrt, np.arccos, np.arctan2, np.sin, np.cos
    clip, where = staticmethod(np.clip), staticmethod(np.where)


_EPS4 = np.finfo(np.float64).eps * 4.0


def _with_z_euler_of(quat_a: tuple, quat_b: tuple, ops: Any) -> tuple:
    """quat_a with its z Euler angle replaced by quat_b's (xyz convention, R = Rx Ry Rz).

    The pen's success test: rotation about the pen's axis does not count. Same convention and
    branch for gimbal lock as gymnasium_robotics.utils.rotations (quat2euler / euler2quat).
    """
    ex, ey, _ = _quat_to_euler(quat_a, ops)
    _, _, ez = _quat_to_euler(quat_b, ops)
    hx, hy, hz = ex / 2.0, ey / 2.0, ez / 2.0
    cx, sx = ops.cos(hx), ops.sin(hx)
    cy, sy = ops.cos(hy), ops.sin(hy)
    cz, sz = ops.cos(hz), ops.sin(hz)
    # qx(ex) * qy(ey) * qz(ez)
    return (
        cx * cy * cz - sx * sy * sz,
        sx * cy * cz + cx * sy * sz,
        cx * sy * cz - sx * cy * sz,
        cx * cy * sz + sx * sy * cz,
    )


def _quat_to_euler(quat: tuple, ops: Any) -> tuple:
    """xyz Euler angles (R = Rx(a) Ry(b) Rz(c)) of a (not necessarily unit) quaternion."""
    w, x, y, z = quat
    s = 2.0 / (w * w + x * x + y * y + z * z)
    m00, m01, m02 = 1.0 - s * (y * y + z * z), s * (x * y - w * z), s * (x * z + w * y)
    m10, m11, m12 = s * (x * y + w * z), 1.0 - s * (x * x + z * z), s * (y * z - w * x)
    m22 = 1.0 - s * (x * x + y * y)
    cy = ops.sqrt(m22 * m22 + m12 * m12)
    regular = cy > _EPS4
    a = ops.where(regular, -ops.atan2(m12, m22), 0.0)
    b = -ops.atan2(-m02, cy)
    c = ops.where(regular, -ops.atan2(m01, m00), -ops.atan2(-m10, m11))
    return a, b, c


def _axis_angle_quat(axis: Any, angle: float) -> np.ndarray:
    """Unit quaternion of a rotation by `angle` about `axis` (normalized here)."""
    axis = np.asarray(axis, dtype=np.float64)
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, axis / np.linalg.norm(axis), float(angle))
    return quat


def _cube_rotations() -> np.ndarray:
    """The 24 rotations that map a cube onto itself (axis permutations with signs, det +1)."""
    quats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            mat = np.zeros((3, 3))
            mat[range(3), perm] = signs
            if np.linalg.det(mat) > 0:
                quat = np.empty(4)
                mujoco.mju_mat2Quat(quat, mat.ravel())
                quats.append(quat)
    return np.array(quats)


def _single(achieved: Any, desired: Any) -> bool:
    """Whether both goals are single 1-D arrays (the fast scalar path applies)."""
    return (
        type(achieved) is np.ndarray
        and type(desired) is np.ndarray
        and achieved.ndim == 1
        and desired.ndim == 1
    )


def _check_goal_shapes(achieved: np.ndarray, desired: np.ndarray, dim: int) -> None:
    if achieved.shape != (dim,) or desired.shape != (dim,):
        raise ValueError(
            f"goals must have last dimension {dim}; got {achieved.shape} and {desired.shape}"
        )


def _batch_goals(achieved: Any, desired: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    achieved = np.asarray(achieved, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    if achieved.shape[-1:] != (dim,) or desired.shape[-1:] != (dim,):
        raise ValueError(
            f"goals must have last dimension {dim}; got {achieved.shape} and {desired.shape}"
        )
    return np.broadcast_arrays(achieved, desired)  # type: ignore[return-value]


def _as_slice(indices: np.ndarray) -> slice | np.ndarray:
    """A contiguous index run as a slice (a view, cheaper to read), else the indices."""
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[0]) + len(indices))
    return indices
