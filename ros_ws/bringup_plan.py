"""Which nodes a bringup starts, with which parameter file and overrides: one source for
the ROS 2 launch files (ros_ws/launch/*.launch.py) and for `twinbridge sim`.

No rclpy and no `launch` here, so both the launch files (on a robot with a full ROS 2
install) and the PyPI-only sim bringup build the same plan, and a test compares them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros_ws.contract import check_goal_fits
from ros_ws.node_configs import (
    NODE_CONFIGS,
    ParameterFileError,
    load_node_parameters,
    node_config,
)
from sim.robots import get_robot
from sim.tasks import get_task_spec

CONFIG_DIR = Path(__file__).resolve().parent / "config"
SIM_CONFIG = CONFIG_DIR / "sim.yaml"
ROBOT_CONFIG = CONFIG_DIR / "robot.yaml"
SIM_NODES = ("twin_node", "policy_node", "task_node")
# `twinbridge sim --hardware emulator`: the serial driver in the twin's place.
EMULATOR_NODES = ("driver_node", "policy_node", "task_node")
# On the robot the hardware driver (serial or vendor-stack bridge) is the bottom node.
ROBOT_NODES = ("driver_node", "policy_node", "task_node")
# `twinbridge teleop` / teleop.launch.py: an operator in the policy's place, and a recorder.
TELEOP_NODES = ("twin_node", "teleop_node", "task_node")
RECORDER_NODE = "recorder_node"
# The emulated rig's cameras (`--hardware emulator --cameras`): a real rig runs its cameras'
# own drivers on the same topics.
CAMERA_DRIVER_NODE = "camera_driver_node"


def teleop_nodes(hardware: str = "twin", record: bool = False) -> tuple[str, ...]:
    """The nodes of a teleop session: the robot node (the twin, or the serial driver for
    the emulator or the robot), the operator, the task, and the recorder if recording."""
    robot_node = "twin_node" if hardware == "twin" else "driver_node"
    return (robot_node, *TELEOP_NODES[1:], *((RECORDER_NODE,) if record else ()))


@dataclass(frozen=True)
class NodeLaunch:
    """One node process: executable/module name, namespace, parameter file, overrides."""

    name: str
    namespace: str
    params_file: Path
    overrides: dict[str, Any] = field(default_factory=dict)

    def ros_arguments(self) -> list[str]:
        """The `--ros-args ...` that start this node as planned."""
        args = ["--ros-args", "-r", f"__ns:=/{self.namespace}", "-r", f"__node:={self.name}"]
        args += ["--params-file", str(self.params_file)]
        for key, value in self.overrides.items():
            args += ["-p", f"{key}:={_yaml_scalar(value)}"]
        return args

    def launch_node_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `launch_ros.actions.Node` that start this node as planned."""
        return {
            "package": "twinbridge",
            "executable": self.name,
            "name": self.name,
            "namespace": self.namespace,
            "parameters": [str(self.params_file), *([self.overrides] if self.overrides else [])],
            "output": "screen",
        }

    def parameters(self) -> dict[str, Any]:
        """The parameter values this node will run with (file, then overrides)."""
        values = load_node_parameters(self.params_file, self.name, f"/{self.namespace}")
        return {**values, **self.overrides}


def plan(
    nodes: tuple[str, ...],
    params_file: Path,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[NodeLaunch]:
    """The nodes of a bringup, validated: every node's parameters against its dataclass."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(nodes))
    if unknown:
        raise ParameterFileError(params_file, str(unknown), f"not nodes of this bringup {nodes}")
    task = _task_of(params_file, overrides, nodes)
    check_goal_fits(task)  # the launch files too: a goal the contract cannot carry
    robot = get_task_spec(task).robot
    namespace = get_robot(robot).namespace
    launches = [NodeLaunch(n, namespace, params_file, dict(overrides.get(n, {}))) for n in nodes]
    for launch in launches:
        node_config(NODE_CONFIGS[launch.name], launch.parameters(), params_file)
    return launches


def _task_of(params_file: Path, overrides: dict[str, dict[str, Any]], nodes) -> str:
    """The task the bringup runs (the task node's, else the twin's); all nodes must agree."""
    tasks = {}
    for node in ("task_node", "twin_node", "teleop_node", "recorder_node"):
        if node in nodes:
            params = {**load_node_parameters(params_file, node), **overrides.get(node, {})}
            if params.get("task", "fetch-push"):  # the recorder's "" means: not stored
                tasks[node] = params.get("task", "fetch-push")
    if len(set(tasks.values())) > 1:
        raise ParameterFileError(params_file, "task", f"nodes disagree on the task: {tasks}")
    return next(iter(tasks.values()), "fetch-push")


def _yaml_scalar(value: Any) -> str:
    """A `-p key:=value` value as rcl parses it (YAML): JSON scalars are valid YAML."""
    return json.dumps(value)
