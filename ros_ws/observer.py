"""`BringupObserver`: follows a running bringup through its `diagnostics` topic.

Used by `twinbridge sim` to print episode results as they come and the loop's latency
figures, as any other ROS tool would see them: it reads the contract, not node internals.
"""

from __future__ import annotations

import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from ros_ws import adapters
from ros_ws.qos import diagnostics_qos


class BringupObserver:
    """Episode results (`task_node/episode`), completion and the twin's loop figures."""

    def __init__(self, namespace: str):
        self._context = Context()
        # No rclpy signal handlers: Ctrl-C must reach `twinbridge sim` as KeyboardInterrupt,
        # which stops the node processes, rather than only shut this context down.
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self._node = rclpy.create_node("bringup_observer", context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._node.create_subscription(
            DiagnosticArray, f"/{namespace}/diagnostics", self._on_diagnostics, diagnostics_qos()
        )
        self._results: list[dict[str, str]] = []
        self._loop_updates = 0
        self.loop: dict[str, str] = {}
        self.done: dict[str, str] | None = None  # the task node's final report
        self.waiting = ""  # why the task node starts no episode now (a latch, a refusal)
        self.last_heard: dict[str, float] = {}  # node -> monotonic time of its last status

    def __enter__(self) -> BringupObserver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for name, _, values in adapters.diagnostics_values(msg):
            if "/" not in name:  # a node's own status (not an episode report)
                self.last_heard[name] = time.monotonic()
            if name == "task_node/episode":
                self._results.append(values)
            elif name == "task_node/done":
                self.done = values
            elif name == "task_node":
                self.waiting = values.get("waiting", "")
            elif name in ("twin_node", "driver_node"):  # whichever is the robot
                self.loop = values
                self._loop_updates += 1

    def silent(self, nodes: list[str], limit_s: float) -> list[tuple[str, float]]:
        """Nodes among `nodes` heard from before but not for `limit_s` (REP-107: STALE):
        a node whose executor is stuck publishes nothing, and says nothing about it."""
        now = time.monotonic()
        heard = [(n, now - self.last_heard[n]) for n in nodes if n in self.last_heard]
        return [(n, round(age, 1)) for n, age in heard if age > limit_s]

    def poll(self, timeout_s: float) -> list[dict[str, str]]:
        """Spin for up to `timeout_s`; the episode results that arrived meanwhile."""
        self._executor.spin_once(timeout_sec=timeout_s)
        results, self._results = self._results, []
        return results

    def wait_for_done(self, timeout_s: float) -> None:
        """Wait for the task node's final report (it may trail the node's exit)."""
        for _ in range(int(timeout_s / 0.05)):
            if self.done is not None:
                return
            self._executor.spin_once(timeout_sec=0.05)

    def wait_for_loop_figures(self, timeout_s: float) -> None:
        """Wait for one more report from the twin (final latency figures)."""
        seen = self._loop_updates
        for _ in range(int(timeout_s / 0.05)):
            if self._loop_updates > seen:
                return
            self._executor.spin_once(timeout_sec=0.05)
