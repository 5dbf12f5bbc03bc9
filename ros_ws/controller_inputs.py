"""The contract topics a `PolicyController` acts on, for the nodes that wrap one
(policy_node, teleop_node): joint states, object pose, goal and e-stop state.

Each accepted input may complete a state the controller has not answered yet, so every
handler ends by calling the node's `act`; the controller decides whether to act or hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from policies.controller import PolicyController
from ros_ws import adapters
from ros_ws.node_runtime import ContractNode
from ros_ws.qos import estop_qos, latched_qos


def subscribe_controller_inputs(
    node: ContractNode, controller: PolicyController, qos: Any, act: Callable[[], None]
) -> None:
    """Subscribe `node` to the inputs of `controller` (the object pose only if the task has
    an object), each calling `act` when the controller accepted it."""

    def on_joint_state(msg: JointState) -> None:
        stamp, names, positions, velocities = adapters.joint_state_fields(msg)
        if controller.on_joint_state(stamp, names, positions, velocities, time.monotonic()):
            act()

    def on_pose(msg: PoseStamped) -> None:
        if controller.on_object_pose(adapters.pose_from_msg(msg), time.monotonic()):
            act()

    def on_goal(msg: PoseStamped) -> None:
        goal = adapters.goal_from_msg(msg, controller.goal_size)
        if controller.on_goal(goal, time.monotonic()):
            act()

    def on_estop(msg: Bool) -> None:
        controller.on_estop(msg.data, time.monotonic())
        act()  # engaged: the controller holds and says why; released: act at once

    node.contract_subscription(JointState, "joint_states", on_joint_state, qos)
    if controller.mirror.has_object:
        node.contract_subscription(PoseStamped, "object_pose", on_pose, qos)
    node.create_subscription(PoseStamped, "goal", on_goal, latched_qos())
    node.contract_subscription(Bool, "estop_state", on_estop, estop_qos())
