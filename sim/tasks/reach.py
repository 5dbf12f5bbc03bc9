"""A goal-conditioned joint-space reach task for any robot, declared as data in its robot.yaml.

Run: `twinbridge tasks` (the reach tasks robots declare are listed with the built-in ones)

A robot folder declares it in robot.yaml (`tasks: - {kind: reach, site: ..., ...}`, see
sim/robots/README.md), so a new robot gets a task to train and test on without task code.
The goal is where the end-effector site is at a random joint configuration inside the
joint ranges, so every goal is kinematically reachable; the action moves each servo's
target from where the servo measures itself, so the loop carries no integrator to wind up
when a joint is blocked. The robot and the goal marker (a mocap body, no DoF) come from the
model by name; joints and command channels come from the robot's tables, in their order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from sim.errors import ConfigError, StateError
from sim.robot_io import RobotIO
from sim.robots import get_robot
from sim.tasks.base import Task
from sim.twin import Twin

GOAL_TRIES = 100  # configurations tried per goal before the scene is declared unreachable


@dataclass(frozen=True)
class ReachConfig:
    """The parameters a robot.yaml `kind: reach` entry may set (all but the first three
    have defaults). Distances in m, joint quantities in the joint's unit (rad or m)."""

    scene: str  # the builder's scene: the robot, a floor, the goal marker
    site: str  # end-effector site: its position is the achieved goal
    goal_body: str  # mocap body the goal marker hangs on
    distance_threshold_m: float = 0.05  # success: the site this close to the goal
    action_step_rad: float = 0.1  # servo target change per unit action per control step
    goal_margin: float = 0.1  # fraction of each joint range kept clear when sampling goals
    goal_min_height_m: float = 0.05  # goals lower than this (world z) are sampled again
    frame_skip: int = 20  # physics steps per control step (20 x 2 ms: 25 Hz)
    video_camera: str = "video"

    def __post_init__(self) -> None:
        if not (self.distance_threshold_m > 0 and self.action_step_rad > 0):
            raise ConfigError("reach task: distance_threshold_m and action_step_rad must be > 0")
        if not 0.0 <= self.goal_margin < 0.5:
            raise ConfigError(f"reach task: goal_margin {self.goal_margin} must be in [0, 0.5)")
        if self.frame_skip < 1:
            raise ConfigError(f"reach task: frame_skip {self.frame_skip} must be >= 1")


def reach_config(robot: str, params: dict[str, Any]) -> ReachConfig:
    """The config of `robot`'s reach task; an unknown or missing key names the valid ones."""
    try:
        return ReachConfig(**params)
    except TypeError as e:
        keys = ", ".join(f.name for f in dataclasses.fields(ReachConfig))
        raise ConfigError(
            f"sim/robots/{robot}/robot.yaml, tasks: {e}; a reach task takes {keys}"
        ) from e


class JointReach(Task):
    """Bring an end-effector site to a goal position; one position target per command."""

    goal_unit = "m"

    def __init__(self, robot: str, **params: Any):
        self.config = reach_config(robot, params)
        self.robot, self.scene = robot, self.config.scene
        self.frame_skip = self.config.frame_skip
        self.video_camera = self.config.video_camera
        description = get_robot(robot)
        self._joints, self._commands = description.joints, description.command_names
        self._servo_from_joints = np.array(description.servo_from_joints, dtype=np.float64)
        self._threshold_sq = self.config.distance_threshold_m**2

    # -- spaces ------------------------------------------------------------------------
    @property
    def action_space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, shape=(len(self._commands),), dtype=np.float32)

    @property
    def goal_dim(self) -> int:
        return 3

    # -- binding -----------------------------------------------------------------------
    def bind(self, twin: Twin) -> None:
        """Resolve names once, and cache the start: the model's rest pose, servos holding."""
        model = twin.model
        io = RobotIO.of(self.robot, twin)
        self._qpos, self._qvel, self._actuators = io.qpos_indices, io.qvel_indices, io.actuator_ids
        self._low, self._high = io.command_limits(twin)
        self._site = model.site(self.config.site).id
        self._site_xpos = twin.data.site_xpos[self._site]  # a live view
        self._marker = int(model.body_mocapid[model.body(self.config.goal_body).id])
        if self._marker < 0:
            raise ConfigError(
                f"{self.robot}/{self.scene}: goal_body {self.config.goal_body!r} is not a "
                "mocap body; the builder must add it with mocap=True"
            )
        self._goal_low, self._goal_high = self._goal_ranges(model)
        self._kinematics = mujoco.MjData(model)  # goal sampling never touches the twin's data
        twin.reset()
        twin.data.ctrl[self._actuators] = self._servo_targets(twin.data.qpos, 0.0)
        twin.forward()
        self._initial_state = twin.get_state()

    def _goal_ranges(self, model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
        """Each joint's range with `goal_margin` of it kept clear at both ends."""
        ids = [model.joint(name).id for name in self._joints]
        limited = model.jnt_limited[ids].astype(bool)
        ranges = np.where(limited[:, None], model.jnt_range[ids], [-np.pi, np.pi])
        margin = self.config.goal_margin * (ranges[:, 1] - ranges[:, 0])
        return ranges[:, 0] + margin, ranges[:, 1] - margin

    # -- episode -----------------------------------------------------------------------
    def reset(self, twin: Twin, rng: np.random.Generator) -> np.ndarray:
        """Restore the cached start, sample a reachable goal and show it."""
        twin.set_state(self._initial_state)
        goal = self._sample_goal(twin.model, rng)
        twin.data.mocap_pos[self._marker] = goal
        twin.forward()
        return goal

    def _sample_goal(self, model: mujoco.MjModel, rng: np.random.Generator) -> np.ndarray:
        """The site's position at a random joint configuration within the ranges."""
        data = self._kinematics
        for _ in range(GOAL_TRIES):
            data.qpos[self._qpos] = rng.uniform(self._goal_low, self._goal_high)
            mujoco.mj_kinematics(model, data)
            goal = data.site_xpos[self._site].copy()
            if goal[2] >= self.config.goal_min_height_m:
                return goal
        raise StateError(
            f"{self.robot}/{self.scene}: no goal above goal_min_height_m "
            f"{self.config.goal_min_height_m} m in {GOAL_TRIES} configurations; lower it"
        )

    # -- control -----------------------------------------------------------------------
    def apply_action(self, twin: Twin, action: np.ndarray) -> None:
        """Each servo's target: where the servo measures itself + action_step_rad x action."""
        twin.data.ctrl[self._actuators] = self._servo_targets(twin.data.qpos, action)

    def _servo_targets(self, qpos: np.ndarray, action: np.ndarray | float) -> np.ndarray:
        servo = self._servo_from_joints @ qpos[self._qpos]
        return np.clip(servo + self.config.action_step_rad * action, self._low, self._high)

    # -- observation and goals ---------------------------------------------------------
    def observation(self, twin: Twin) -> np.ndarray:
        data = twin.data
        return np.concatenate((self._site_xpos, data.qpos[self._qpos], data.qvel[self._qvel]))

    def observation_fields(self, twin: Twin | None = None) -> list[tuple[str, int, str]]:
        """End-effector position, then the robot's joints (robot.yaml order); a slide
        joint's entries are in m and m/s."""
        n = len(self._joints)
        return [("site_pos", 3, "m"), ("joint_pos", n, "rad"), ("joint_vel", n, "rad/s")]

    def action_fields(self, twin: Twin) -> list[tuple[str, str]]:
        unit = f"{self.config.action_step_rad} rad/step (servo target change)"
        return [(name, unit) for name in self._commands]

    def achieved_goal(self, twin: Twin) -> np.ndarray:
        return self._site_xpos.copy()

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """Distance below the threshold; batch-capable (shape achieved.shape[:-1])."""
        diff = np.subtract(achieved, desired)
        return np.einsum("...i,...i->...", diff, diff) < self._threshold_sq
