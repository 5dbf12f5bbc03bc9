"""ROS parameters declared from a node's config dataclass and read back into it.

A node's parameters are exactly its dataclass's (ros_ws/node_configs.py: its own fields and
those of the core config it embeds). They are declared with dynamic typing so that the
dataclass, not rclpy, judges them: `100` for a float is 100.0, as in the bringups' checks
of the same YAML; a wrong type, a value out of range, or a parameter the node does not
have (a misspelled key in its parameter file or `-p`, which rclpy would silently ignore)
stops the node with one line naming the key, before it does anything.
"""

from __future__ import annotations

from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from ros_ws.node_configs import ParameterFileError, node_config, parameter_defaults

T = TypeVar("T")


def declared_config(node: Node, cls: type[T]) -> T:
    """Declare every parameter of `cls` with its default, then build `cls` from the values."""
    defaults = parameter_defaults(cls)
    for name, default in defaults.items():
        node.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True))
    values = {name: node.get_parameter(name).value for name in defaults}
    try:
        return node_config(
            cls,
            {**_undeclared(node, defaults), **values},
            f"parameters of {node.get_fully_qualified_name()}",
        )
    except ParameterFileError as e:
        node.get_logger().fatal(str(e))
        raise


def _undeclared(node: Node, declared: dict) -> dict:
    """Overrides given to the node (file, `-p`) for parameters it has not declared; rclpy
    keeps them, but has no public accessor."""
    overrides = getattr(node, "_parameter_overrides", {})
    return {name: p.value for name, p in overrides.items() if name not in declared}
