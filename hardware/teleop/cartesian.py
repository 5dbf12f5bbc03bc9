"""The `cartesian_gripper` mapping kind: an end-effector velocity and a gripper toggle.

Run: `python -c "from hardware.teleop import Intent, make_mapping as m; print(m('fetch-push').action(Intent({'x': 1.0})))"`

Axes x, y, z are a Cartesian gripper velocity in the operator's VIEW frame: x away from
the camera the operator watches (horizontally), y to the left of its picture, z up, as a
fraction of `TeleopConfig.max_speed_m_s` (its norm clipped to it, direction kept), held for
one control period. The view frame is the world frame turned by `frame_yaw_deg` about the
vertical (the section's one parameter, data in the robot.yaml: 0 means x away from the
robot base, y to its left), so an arrow key moves the gripper that way in the picture.
The env action [dx, dy, dz, gripper] is that displacement in the world frame over the
task's per-step displacement `step_m` (metres per unit action), clipped to [-1, 1]. The
gripper is a toggle (open at every reset), sent as +1 (open) or -1 (close) each step, as
`sim.scripted` does; with no input the action is a hold: zero motion, gripper unchanged.
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hardware.teleop.intent import Intent, axis_value
from sim.errors import ConfigError

if TYPE_CHECKING:
    from hardware.teleop.config import TeleopConfig
    from sim.robots import RobotDescription

_GRIPPER_SET = {"gripper_open": True, "gripper_close": False}


class CartesianGripper:
    """A robot's `cartesian_gripper` teleop section: its names, and a mapping per task."""

    PARAMETERS: ClassVar[tuple[str, ...]] = ("frame_yaw_deg",)
    axes: tuple[str, ...] = ("x", "y", "z")
    commands: tuple[str, ...] = ("gripper_toggle", *_GRIPPER_SET)

    def __init__(self, frame_yaw_deg: float = 0.0):
        self.frame_yaw_deg = frame_yaw_deg

    @classmethod
    def from_section(
        cls, params: Mapping[str, Any], robot: RobotDescription, source: str
    ) -> CartesianGripper:
        yaw = params.get("frame_yaw_deg", 0.0)
        if isinstance(yaw, bool) or not (isinstance(yaw, int | float) and math.isfinite(yaw)):
            raise ConfigError(
                f"{source}: teleop.frame_yaw_deg must be a number of degrees, got {yaw!r}"
            )
        return cls(float(yaw))

    def command_words(self) -> dict[str, str]:
        """Each key command in the operator's words (the view frame)."""
        return {
            "+x": "away from the camera, up in the view",
            "-x": "towards the camera, down in the view",
            "+y": "left in the view",
            "-y": "right in the view",
            "+z": "gripper up",
            "-z": "gripper down",
            "gripper_toggle": "open/close the gripper",
            "gripper_open": "open the gripper",
            "gripper_close": "close the gripper",
        }

    def config_problem(self, config: TeleopConfig) -> str:
        """Nothing in `TeleopConfig` depends on this kind's parameters (it has none)."""
        return ""

    def build(self, task: str, task_config: object, config: TeleopConfig) -> CartesianMapping:
        """The mapping for `task`, whose config gives the env's metres per unit action."""
        step_m = getattr(task_config, "step_m", None)
        if not (isinstance(step_m, int | float) and step_m > 0):
            raise ConfigError(
                f"teleop mapping cartesian_gripper needs a task whose action is a Cartesian "
                f"step (a config with step_m > 0); {task} has none: pick such a task"
            )
        return CartesianMapping(
            1.0 / config.control_rate_hz, config.max_speed_m_s, step_m, self.frame_yaw_deg
        )


class CartesianMapping:
    """Cartesian gripper velocity (m/s) and a gripper toggle -> [dx, dy, dz, gripper]."""

    axes = CartesianGripper.axes
    commands = CartesianGripper.commands

    def __init__(
        self, period_s: float, max_speed_m_s: float, step_m: float, frame_yaw_deg: float = 0.0
    ):
        self.max_speed_m_s = max_speed_m_s
        yaw = math.radians(frame_yaw_deg)
        c, s = math.cos(yaw), math.sin(yaw)
        self.view_to_world = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        self._action_per_m = 1.0 / step_m  # env action per metre of displacement in a step
        self._period_s = period_s
        env_limit = step_m / period_s
        if max_speed_m_s > env_limit * (1 + 1e-9):
            raise ConfigError(
                f"max_speed_m_s={max_speed_m_s} is more than the env can move the gripper: "
                f"{step_m} m per step at {1 / period_s:g} Hz is {env_limit:g} m/s; lower "
                "max_speed_m_s or raise control_rate_hz"
            )
        self.reset()

    def reset(self) -> None:
        """Open the gripper (the state every episode starts from)."""
        self.gripper_open = True

    def state_text(self) -> str:
        """What the operator cannot see in the action: the gripper's toggle state."""
        return "gripper open" if self.gripper_open else "gripper closed"

    def velocity_m_s(self, intent: Intent) -> np.ndarray:
        """The world velocity asked for: view-frame axes x max speed, norm clipped to it."""
        velocity = np.array([axis_value(intent, name) for name in self.axes]) * self.max_speed_m_s
        speed = float(np.linalg.norm(velocity))
        if speed > self.max_speed_m_s:
            velocity *= self.max_speed_m_s / speed
        return self.view_to_world @ velocity

    def action(self, intent: Intent) -> np.ndarray:
        for command in intent.commands:
            if command == "gripper_toggle":
                self.gripper_open = not self.gripper_open
            elif command in _GRIPPER_SET:
                self.gripper_open = _GRIPPER_SET[command]
        displacement_m = self.velocity_m_s(intent) * self._period_s
        action = np.empty(4, dtype=np.float32)
        action[:3] = np.clip(displacement_m * self._action_per_m, -1.0, 1.0)
        action[3] = 1.0 if self.gripper_open else -1.0
        return action
