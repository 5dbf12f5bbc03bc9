"""Test helper: a real node process with a fault injected into one of its callbacks.

Run: `python tests/fault_injection.py twin_node TwinNode _on_command raise --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml`

The node class's method is replaced before the node is built, so the bound method the node
registers (subscription, timer, service, response or QoS-event callback) misbehaves:
`raise` makes it raise `InjectedFault`; `slow` makes it sleep SLOW_S before doing its
work, so a signal most likely arrives while it runs. `close()` still runs and says so on
stdout, then `run_node` decides the exit code, exactly as `python -m ros_ws.<node>` would.
"""  # noqa: E501

from __future__ import annotations

import functools
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ros_ws.node_runtime import run_node

CLOSED = "fault injection: close() ran"
SLOW_S = 0.2


class InjectedFault(Exception):
    """The exception a broken callback raises."""


def inject(module: str, class_name: str, method: str, fault: str) -> type:
    """The node class of `ros_ws.<module>` with `method` faulty and `close` reporting."""
    node_class = getattr(importlib.import_module(f"ros_ws.{module}"), class_name)
    original = getattr(node_class, method)

    @functools.wraps(original)  # its name and the signature rclpy inspects
    def faulty(self, *args, **kwargs):
        if fault == "raise":
            raise InjectedFault(f"injected into {class_name}.{method}")
        time.sleep(SLOW_S)
        return original(self, *args, **kwargs)

    close = node_class.close

    def close_and_say(self) -> None:
        close(self)
        print(CLOSED, flush=True)

    setattr(node_class, method, faulty)
    node_class.close = close_and_say
    return node_class


if __name__ == "__main__":
    run_node(inject(*sys.argv[1:5]), sys.argv[5:])
