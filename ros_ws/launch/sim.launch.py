"""Simulation-only bringup on a machine with a full ROS 2 install.

Run: `ros2 launch twinbridge sim.launch.py` (after `colcon build`; without ROS 2 installed,
`twinbridge sim` starts the same nodes with the same parameter file).

Discovery is restricted to this host (the project's Fast DDS profile, ros_ws/discovery.py)
and the domain id is ROS_DOMAIN_ID or a per-user default, so two users on one network never
cross-talk.
"""

import os

from launch import LaunchDescription
from launch.actions import SetEnvironmentVariable
from launch_ros.actions import Node

from ros_ws.bringup_plan import SIM_CONFIG, SIM_NODES, plan
from ros_ws.discovery import default_domain_id, sim_discovery


def generate_launch_description():
    domain = int(os.environ.get("ROS_DOMAIN_ID", default_domain_id()))
    actions = [
        SetEnvironmentVariable(name, value) for name, value in sim_discovery(domain).items()
    ]
    nodes = plan(SIM_NODES, SIM_CONFIG)
    actions += [Node(**launch.launch_node_arguments()) for launch in nodes]
    return LaunchDescription(actions)
