"""Teleoperation with recording on the robot: driver, teleop, task and recorder nodes.

Run: `ros2 launch twinbridge teleop.launch.py` (gamepad by default; the keyboard operator
needs the terminal, so run `ros2 run twinbridge teleop_node --ros-args -p device:=keyboard`
in its own shell instead), with the environment robot.launch.py requires (R21).
The bag path is recorder_node's `output_path` in ros_ws/config/robot.yaml; without ROS 2
installed, `twinbridge teleop --hardware emulator --record FILE.mcap` starts the same nodes.

R21: see hardware/RELIABILITY.md.
"""

import os

from launch import LaunchDescription
from launch_ros.actions import Node

from ros_ws.bringup_plan import ROBOT_CONFIG, plan, teleop_nodes
from ros_ws.discovery import lint_environment
from ros_ws.node_configs import load_node_parameters


def generate_launch_description():
    problems = lint_environment(os.environ, profile="robot")
    if problems:
        raise RuntimeError("teleop.launch.py refuses to start: " + "; ".join(problems))
    # The operator's task is the session's: the task node judges it, the recorder stores it.
    task = load_node_parameters(ROBOT_CONFIG, "teleop_node")["task"]
    overrides = {"task_node": {"task": task}, "recorder_node": {"task": task}}
    nodes = plan(teleop_nodes("robot", record=True), ROBOT_CONFIG, overrides)
    return LaunchDescription([Node(**launch.launch_node_arguments()) for launch in nodes])
