"""What the topic contract can carry, checked before any process starts (no rclpy here).

The contract's `goal` is one geometry_msgs/PoseStamped (README, topic contract): a position,
or a position and an orientation quaternion. A task whose goal has another size (hand-reach:
five fingertip positions, 15 values) cannot run over ROS; every bringup refuses it here,
by name, instead of a node failing once the graph is up. `adapters.goal_msg` packs goals by
the same table.
"""

from __future__ import annotations

from sim.errors import TwinbridgeError
from sim.tasks import TASKS, get_task_spec, task_class

# Goal sizes a PoseStamped carries, and what they mean.
GOAL_LAYOUTS: dict[int, str] = {
    3: "position",
    7: "position + orientation quaternion",
}


class ContractError(TwinbridgeError, ValueError):
    """A task or message the topic contract cannot carry."""


def goal_size(task: str) -> int:
    """The length of `task`'s goal vector (no model is loaded)."""
    spec = get_task_spec(task)
    return int(task_class(spec.task_class)(**spec.kwargs).goal_dim)


def ros_tasks() -> list[str]:
    """Registered tasks whose goal the contract carries, in registry order."""
    return [name for name in TASKS if goal_size(name) in GOAL_LAYOUTS]


def check_goal_fits(task: str) -> None:
    """Refuse `task` if its goal does not fit the contract's PoseStamped `goal`."""
    size = goal_size(task)
    if size in GOAL_LAYOUTS:
        return
    carried = " or ".join(f"{n} values ({what})" for n, what in GOAL_LAYOUTS.items())
    raise ContractError(
        f"task {task!r} cannot run over ROS: its goal has {size} values and the contract's "
        f"goal (geometry_msgs/PoseStamped) carries {carried}; run it in simulation with "
        f"`twinbridge rollout --task {task}`, or pick a task the contract carries: "
        f"{', '.join(ros_tasks())}"
    )
