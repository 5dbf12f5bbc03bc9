"""Robot bringup: the hardware driver, policy and task nodes, on a full ROS 2 install.

Run: `ros2 launch twinbridge robot.launch.py` with ROS_DOMAIN_ID set, discovery limited
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST or ROS_STATIC_PEERS) and SROS2 enforced
(ROS_SECURITY_ENABLE=true, ROS_SECURITY_STRATEGY=Enforce): the launch refuses to start
otherwise (R21). driver_node's port comes from ros_ws/config/robot.yaml (a udev symlink);
`twinbridge robot` starts the same nodes without ros2 launch.

R21: see hardware/RELIABILITY.md.
"""

import os

from launch import LaunchDescription
from launch_ros.actions import Node

from ros_ws.bringup_plan import ROBOT_CONFIG, ROBOT_NODES, plan
from ros_ws.discovery import lint_environment


def generate_launch_description():
    problems = lint_environment(os.environ, profile="robot")
    if problems:
        raise RuntimeError("robot.launch.py refuses to start: " + "; ".join(problems))
    nodes = plan(ROBOT_NODES, ROBOT_CONFIG)
    return LaunchDescription([Node(**launch.launch_node_arguments()) for launch in nodes])
