"""What every Twinbridge node shares: config from parameters, QoS events, counters,
`diagnostics`, and a `main` that shuts down cleanly (R22: incompatible QoS is fatal).

A node subclasses `ContractNode`, creates its contract endpoints with
`contract_publisher` / `contract_subscription` (which watch QoS events), counts what it
drops in `self.counters`, and returns its own figures from `diagnostics_values`.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from hardware.commands import CommandRejected
from policies.errors import PolicyError
from ros_ws import adapters
from ros_ws.node_configs import ParameterFileError
from ros_ws.node_runtime_env import stop_with_supervisor
from ros_ws.params import declared_config
from ros_ws.qos import diagnostics_qos
from sim.errors import TwinbridgeError

EXIT_INCOMPATIBLE_QOS = 3
EXIT_BAD_CONFIG = 2
STARTUP_WINDOW_S = 10.0  # incompatible QoS within this long of start-up is fatal
EXIT_FAILED = 1
FINAL_REPORT_ACK_S = 2.0  # a finished node waits this long at most for its last reports


class ContractNode(Node):
    """A node with a config dataclass, counted rejections and periodic diagnostics."""

    def __init__(self, name: str, config_class: type) -> None:
        super().__init__(name)
        self.config: Any = declared_config(self, config_class)
        self.counters: Counter[str] = Counter()
        self._last_reject_log = 0.0
        self._diagnostics = self.create_publisher(
            DiagnosticArray, "diagnostics", diagnostics_qos()
        )
        self.failure: tuple[str, int] | None = None  # (why, exit code), set by `fail`
        self.finished = False  # set when the node's work is done; run_node then exits 0
        self._started_s = time.monotonic()
        # A lambda: rclpy passes a TimerInfo to callbacks whose signature takes an argument.
        self.steady_timer(
            1.0 / self.config.diagnostics_rate_hz, lambda: self.publish_diagnostics()
        )

    def steady_timer(self, period_s: float, callback):
        """A timer on the monotonic clock: with use_sim_time a node's default clock stops
        when /clock does, and watchdogs must not."""
        return self.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # -- endpoints with QoS events (R22) --------------------------------------------
    def contract_publisher(self, msg_type: type, topic: str, qos: Any):
        events = PublisherEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(topic, event),
            deadline=lambda event: self._count(f"offered_deadline_missed_{topic}"),
        )
        return self.create_publisher(msg_type, topic, qos, event_callbacks=events)

    def contract_subscription(
        self, msg_type: type, topic: str, callback, qos: Any, raw: bool = False
    ):
        """A subscription whose QoS events are watched; `raw` delivers the CDR bytes."""
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(topic, event),
            deadline=lambda event: self.on_deadline_missed(topic),
        )
        return self.create_subscription(
            msg_type, topic, callback, qos, event_callbacks=events, raw=raw
        )

    def _incompatible(self, topic: str, event: Any) -> None:
        """Fatal while the graph comes up (R22: a broken contract fails the start-up).
        Later, a stray peer (a tool with other QoS) gets no messages and is reported, but
        cannot stop a running robot."""
        policy = getattr(event, "last_policy_kind", "?")
        message = f"incompatible QoS on {topic} (policy {policy}); fix the peer's QoS"
        if time.monotonic() - self._started_s < STARTUP_WINDOW_S:
            self.fail(message, EXIT_INCOMPATIBLE_QOS)
        else:
            self.counters[f"incompatible_qos_{topic}"] += 1
            self.get_logger().error(message)

    def fail(self, message: str, exit_code: int = 1) -> None:
        """Stop the node with `exit_code` after this callback. Raising from a callback is
        not an option: rclpy's EventsExecutor aborts the process on some of them."""
        if self.failure is None:
            self.failure = (message, exit_code)
            self.get_logger().fatal(message)
        self.finished = True

    def _count(self, key: str) -> None:
        self.counters[key] += 1

    def on_deadline_missed(self, topic: str) -> None:
        """A contract input missed its deadline; nodes that act on it override to hold."""
        self.counters[f"deadline_missed_{topic}"] += 1

    # -- rejections and diagnostics -------------------------------------------------
    def reject(self, error: CommandRejected) -> None:
        """Count a dropped message by reason; log the reason at most once a second."""
        self.counters[f"rejected_{error.reason}"] += 1
        now = time.monotonic()
        if now - self._last_reject_log > 1.0:
            self._last_reject_log = now
            self.get_logger().warning(f"dropped a message: {error}")

    def diagnostics_values(self) -> dict[str, object]:
        return {}

    def diagnostics_level(self) -> int:
        return 0

    def publish_diagnostics(
        self, message: str = "", name: str = "", values: Mapping[str, object] | None = None
    ) -> None:
        """This node's figures and counters (or `values`) as one status named `name`."""
        if values is None:
            values = {**self.diagnostics_values(), **dict(sorted(self.counters.items()))}
        stamp = self.get_clock().now().nanoseconds
        self._diagnostics.publish(
            adapters.diagnostics_msg(
                stamp, name or self.get_name(), values, message, self.diagnostics_level()
            )
        )

    def flush_diagnostics(self, timeout_s: float) -> bool:
        """Wait until every reader acknowledged the `diagnostics` published so far."""
        return self._diagnostics.wait_for_all_acked(Duration(nanoseconds=int(timeout_s * 1e9)))

    def drained(self, stop_requested_s: float) -> bool:
        """Whether a node asked to stop (monotonic time `stop_requested_s`) may stop now;
        only nodes run with `run_node(..., drain=True)` are asked."""
        return True

    def close(self) -> None:
        """Release resources (files, renderers); called once at shutdown."""


def run_node(
    node_class: Callable[[], ContractNode], args: list[str] | None = None, drain: bool = False
) -> None:
    """rclpy.init, spin until Ctrl-C / shutdown, close; exit non-zero on a broken contract.

    With `drain`, SIGINT/SIGTERM ask the node to stop instead of shutting rclpy down at once:
    it keeps spinning until `node.drained()` (a recorder: until what is queued for it is
    written), then closes; a second signal stops it at once."""
    if not stop_with_supervisor():
        sys.exit(f"{_name(node_class)}: its supervisor (twinbridge sim) is gone; not starting")
    stop_requested: list[float] = []
    if drain:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop_requested.append(time.monotonic()))
    else:
        rclpy.init(args=args)
    code = 0
    node = None
    try:
        node = node_class()
        # rclpy's EventsExecutor (C++) dispatches without rebuilding a wait set per callback:
        # measured in bench/control_loop.py, it cuts loop latency and CPU.
        executor = EventsExecutor()
        executor.add_node(node)
        while rclpy.ok() and not node.finished:
            executor.spin_once(timeout_sec=0.05 if stop_requested else 0.1)
            if stop_requested and (len(stop_requested) > 1 or node.drained(stop_requested[0])):
                break
        if node.finished and node.failure is None:
            # Its last reports (task_node's `done`) must reach the readers before the
            # process, and the reliable writer's history with it, is gone.
            node.flush_diagnostics(FINAL_REPORT_ACK_S)
        if node.failure is not None:
            message, code = node.failure
            print(f"{_name(node_class)} stopped: {message}", file=sys.stderr)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ParameterFileError, TwinbridgeError, PolicyError) as e:
        print(f"{_name(node_class)} refused to start: {e}", file=sys.stderr)
        code = EXIT_BAD_CONFIG
    except (TimeoutError, RuntimeError) as e:
        if rclpy.ok():  # after Ctrl-C, publishing on the closed context fails: not an error
            print(f"{_name(node_class)} stopped: {e}", file=sys.stderr)
            code = EXIT_FAILED
    finally:
        # Shutdown is under way: a second Ctrl-C (or one arriving late) must not interrupt
        # the clean-up, which finishes files such as the MP4.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    if code:
        sys.exit(code)


def _name(node_class: Callable[[], ContractNode]) -> str:
    return getattr(node_class, "__name__", "node")
