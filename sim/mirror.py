"""`TaskMirror`: a task's observation, achieved goal and action mapping, from measured state.

A policy trained in the twin sees `Task.observation(twin)`; on the ROS graph it only gets
`joint_states` and `object_pose`. The mirror writes those measurements into a private twin
(positions, velocities, the object's pose) and asks the very same task code for the
observation, so the robot-side observation cannot drift from the training one. It also
turns a policy action into command targets through the task's own `apply_action` (for the
Fetch tasks: the Cartesian step through the twin's IK).

The object's velocity is not measured on a real robot. Every measured pose
(`measure_object`, at the state rate) goes into an `ObjectEstimate` (sim/object_estimate.py):
by default (`RAW`) its position is the measurement and its linear velocity the difference of
the last two; a policy's controller configures the constant-velocity Kalman filter there,
because a robot measures the object with noise. The angular velocity is the difference of
the last two orientations acted on (body frame, as the free joint's qvel). Both are zero for
the first pose of an episode or after a gap longer than the estimate's `max_gap_s`.

Run: `python -c "from sim.mirror import TaskMirror; m = TaskMirror('fetch-push'); print(m.sample_goal(0))"`
"""  # noqa: E501

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import ArrayLike

from sim.contract.samples import ObjectPose
from sim.envs import make_env
from sim.errors import ControlError, StateError
from sim.object_estimate import RAW, ObjectEstimate, ObjectEstimateConfig
from sim.robot_io import RobotIO
from sim.tasks import get_task_spec

_FREE = int(mujoco.mjtJoint.mjJNT_FREE)


class TaskMirror:
    """One task's env, driven by measurements instead of by its own physics."""

    def __init__(self, task: str, object_estimate: ObjectEstimateConfig | None = None):
        spec = get_task_spec(task)
        self.task_name = task
        self.env = make_env(spec.task_class, **spec.kwargs)
        self.task, self.twin = self.env.task, self.env.twin
        self.robot = self.task.robot
        self.io = RobotIO.of(self.robot, self.twin)
        self.dt = self.env.dt
        self.max_episode_steps = spec.max_episode_steps
        self.object_estimate = ObjectEstimate(object_estimate or RAW)
        self.max_gap_s = self.object_estimate.config.max_gap_s
        self.goal = np.zeros(self.task.goal_dim)
        free = [i for i in range(self.twin.model.njnt) if self.twin.model.jnt_type[i] == _FREE]
        self._object_qadr = int(self.twin.model.jnt_qposadr[free[0]]) if free else None
        self._object_dof = int(self.twin.model.jnt_dofadr[free[0]]) if free else None
        self._last_pose: ObjectPose | None = None
        self._target_low, self._target_high = self.io.command_limits(self.twin)
        self._targets_from_measured = True

    @property
    def has_object(self) -> bool:
        return self._object_qadr is not None

    def sample_goal(self, seed: int) -> np.ndarray:
        """The goal of the episode the env would run with `seed` (same RNG stream)."""
        obs, _ = self.env.reset(seed=seed)
        self._last_pose = None
        self.object_estimate.restart()
        self.goal = obs["desired_goal"].copy()
        return self.goal.copy()

    def new_episode(self) -> None:
        """Forget the previous object pose (no velocity across an episode boundary), and
        restart the targets from where the robot is: an env reset leaves its servos' targets
        at the resting pose, and a task whose actions are relative to the previous target
        must not carry the last episode's targets over."""
        self._last_pose = None
        self.object_estimate.restart()
        self._targets_from_measured = True

    def hold(self) -> None:
        """The robot was held (e-stop, stale input): the next command restarts the targets from
        where the robot is, not from a target it was never sent toward."""
        self._targets_from_measured = True

    def measure_object(self, pose: ObjectPose) -> None:
        """Take one measured object pose into the estimate (each one, as it arrives)."""
        self.object_estimate.update(pose.position_m, pose.stamp_ns)

    def update(
        self,
        positions: ArrayLike,
        velocities: ArrayLike,
        object_pose: ObjectPose | None = None,
    ) -> None:
        """Write measured joint state (in `io.joint_names` order) and the object's pose: its
        orientation, and the estimate's position and velocity (`object_pose` is measured
        into it first, unless it was already, by stamp)."""
        data = self.twin.data
        pos = np.asarray(positions, dtype=np.float64)
        vel = np.asarray(velocities, dtype=np.float64)
        expected = (len(self.io.joint_names),)
        if pos.shape != expected or vel.shape != expected:
            raise StateError(
                f"{self.task_name}: joint state has {pos.shape}/{vel.shape} "
                f"values, expected {expected[0]} for {list(self.io.joint_names)}"
            )
        if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
            raise StateError(f"{self.task_name}: non-finite measured joint state")
        data.qpos[self.io.qpos_indices] = pos
        data.qvel[self.io.qvel_indices] = vel
        if object_pose is not None:
            self._write_object(object_pose)
        mujoco.mj_forward(self.twin.model, data)
        if self._targets_from_measured:
            ids = self.io.actuator_ids
            resting = data.actuator_length[ids]
            data.ctrl[ids] = np.clip(resting, self._target_low, self._target_high)
            self.task.restart_targets(self.twin)
            self._targets_from_measured = False

    def _write_object(self, pose: ObjectPose) -> None:
        if self._object_qadr is None or self._object_dof is None:
            raise StateError(f"{self.task_name} has no object; object_pose is not used")
        quat = np.asarray(pose.quaternion_wxyz, dtype=np.float64)
        norm = float(np.linalg.norm(quat))
        if not (np.isfinite(pose.position_m).all() and np.isfinite(quat).all() and norm > 0.5):
            raise StateError(f"{self.task_name}: object pose is non-finite or not a rotation")
        quat = quat / norm
        data, adr, dof = self.twin.data, self._object_qadr, self._object_dof
        self.measure_object(pose)  # a stamp already measured is not taken twice
        estimate = self.object_estimate
        data.qpos[adr : adr + 3] = estimate.position_m
        data.qpos[adr + 3 : adr + 7] = quat
        data.qvel[dof : dof + 3] = estimate.velocity_m_s
        data.qvel[dof + 3 : dof + 6] = self._angular_velocity(pose, quat)
        self._last_pose = ObjectPose(np.array(pose.position_m, dtype=float), quat, pose.stamp_ns)

    def _angular_velocity(self, pose: ObjectPose, quat: np.ndarray) -> np.ndarray:
        last = self._last_pose
        velocity = np.zeros(3)
        if last is None:
            return velocity
        gap = (pose.stamp_ns - last.stamp_ns) * 1e-9
        if not 0.0 < gap <= self.max_gap_s:
            return velocity
        mujoco.mju_subQuat(velocity, quat, last.quaternion_wxyz)  # body frame
        return velocity / gap

    def observation(self) -> dict[str, np.ndarray]:
        """The env's observation dict for the mirrored state and the current goal."""
        return {
            "observation": self.task.observation(self.twin),
            "achieved_goal": self.task.achieved_goal(self.twin),
            "desired_goal": self.goal.copy(),
        }

    def achieved_goal(self) -> np.ndarray:
        return self.task.achieved_goal(self.twin)

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> bool:
        """The env's success test, exactly."""
        return bool(self.task.is_success(np.asarray(achieved), np.asarray(desired)))

    def command_targets(self, action: np.ndarray) -> tuple[np.ndarray, int]:
        """Position targets, in `io.command_names` order, that the env would apply for
        `action`, and how many were clamped into the actuators' ranges (MuJoCo clamps
        ctrl the same way, so the targets equal what the env's physics sees)."""
        action = np.asarray(action, dtype=np.float64)
        low, high = self.env.action_space.low, self.env.action_space.high
        if action.shape != low.shape or not np.isfinite(action).all():
            raise ControlError(f"{self.task_name}: action {action} is mis-shaped or non-finite")
        self.task.apply_action(self.twin, np.clip(action, low, high))
        targets = self.twin.data.ctrl[self.io.actuator_ids]
        clamped = np.clip(targets, self._target_low, self._target_high)
        return clamped, int(np.count_nonzero(clamped != targets))
