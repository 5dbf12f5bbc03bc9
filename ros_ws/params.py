"""ROS parameters declared from a node's config dataclass and read back into it.

A node's parameters are exactly its dataclass fields (ros_ws/node_configs.py); a value of
the wrong type or out of range stops the node with the key named, before it does anything.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TypeVar

from rclpy.node import Node

from ros_ws.node_configs import ParameterFileError, node_config

T = TypeVar("T")


def declared_config(node: Node, cls: type[T]) -> T:
    """Declare every field of `cls` with its default, then build `cls` from the values."""
    defaults = asdict(cls())  # type: ignore[call-overload]
    for name, default in defaults.items():
        node.declare_parameter(name, default)
    values = {name: node.get_parameter(name).value for name in defaults}
    try:
        return node_config(cls, values, f"parameters of {node.get_fully_qualified_name()}")
    except ParameterFileError as e:
        node.get_logger().fatal(str(e))
        raise
