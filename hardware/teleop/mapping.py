"""From what an operator asks for (an `Intent`) to one env action, for any task's robot.

Run: `python -c "from hardware.teleop import Intent, make_mapping as m; print(m('fetch-push').action(Intent({'x': 1.0})))"`

A task's robot is found by the task (`robot_of`), the robot's teleop bindings in its
robot.yaml (`hardware.teleop.bindings`): the section names a mapping kind, generic
behaviour in this package configured by the section's parameters and by `TeleopConfig`:

- `cartesian_gripper` (hardware/teleop/cartesian.py): an end-effector velocity and a
  gripper toggle;
- `posture_synergies` (hardware/teleop/posture.py): a held posture moved along named
  synergies, with preset postures.
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from hardware.teleop.bindings import teleop_bindings
from hardware.teleop.config import TeleopConfig
from hardware.teleop.intent import ActionMapping
from sim.tasks import get_task_spec, task_class


def robot_of(task: str) -> str:
    """The name of the robot a registered task drives."""
    return str(_task_class(task).robot)


def _task_class(task: str) -> Any:
    return task_class(get_task_spec(task).task_class)


def make_mapping(task: str, config: TeleopConfig | None = None) -> ActionMapping:
    """The mapping for `task`'s robot, configured by `config` (defaults if None)."""
    cls = _task_class(task)
    kind = teleop_bindings(str(cls.robot)).kind
    task_config = getattr(cls, "default_config", None)  # the task's own settings, if any
    return kind.build(task, task_config, config or TeleopConfig())
