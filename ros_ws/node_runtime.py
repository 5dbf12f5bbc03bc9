"""What every Twinbridge node shares: config from parameters, QoS events, counters,
`diagnostics`, guarded callbacks, and a `main` that shuts down cleanly (R22: incompatible
QoS is fatal).

A node subclasses `ContractNode`, creates its contract endpoints with
`contract_publisher` / `contract_subscription` (which watch QoS events), counts what it
drops in `self.counters`, and returns its own figures from `diagnostics_values`.

Every callback a node registers (subscription, timer, service, a client's response
callbacks, QoS events) runs guarded: an exception becomes one log line naming the
callback, `callback_errors` in the counters, and a stop with EXIT_FAILED. Under rclpy's
EventsExecutor an exception escaping a response or QoS-event callback kills the process
with SIGSEGV, and one escaping a timer or subscription is logged FATAL by the executor.

R22: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import copy
import functools
import signal
import sys
import time
import traceback
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
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.qos import QoSPolicyKind, QoSProfile
from rclpy.signals import SignalHandlerOptions

from policies.errors import PolicyError
from ros_ws import adapters
from ros_ws.node_configs import ParameterFileError
from ros_ws.node_runtime_env import stop_with_supervisor
from ros_ws.params import declared_config
from ros_ws.qos import diagnostics_qos, incompatible_policies
from sim.contract.command_rules import CommandRejected
from sim.errors import TwinbridgeError

InvalidHandle = rclpy_implementation.InvalidHandle  # rclpy's error for a destroyed entity
EXIT_INCOMPATIBLE_QOS = 3
EXIT_BAD_CONFIG = 2
STARTUP_WINDOW_S = 10.0  # incompatible QoS within this long of start-up is fatal
EXIT_FAILED = 1
FINAL_REPORT_ACK_S = 2.0  # a finished node waits this long at most for its last reports
# Commands that answer the last state of an episode arrive after its reset, and a policy
# acts on the states a robot publishes while it holds for the next goal: normal at every
# episode boundary, so counted but not logged.
EXPECTED_REJECTIONS = frozenset({"previous_episode", "awaiting_goal"})
# The QoS-event callbacks of rclpy's PublisherEventCallbacks / SubscriptionEventCallbacks.
EVENT_FIELDS = (
    "deadline",
    "incompatible_qos",
    "incompatible_type",
    "liveliness",
    "message_lost",
    "matched",
)
PEER_NAME_WAIT_S = 1.0  # an incompatible peer's report waits this long at most for its name
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # rmw's name for a node not announced yet


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
        self.failure_trace = ""  # the traceback of a callback's exception, for stderr
        self.finished = False  # set when the node's work is done; run_node then exits 0
        self._started_s = time.monotonic()
        self._reported_peers: set[tuple] = set()  # (topic, endpoint gid) named in the log
        self._qos_events: dict[str, tuple] = {}  # topic: (qos, publisher?, policy, since)
        self._qos_timer: Any = None
        # A lambda: rclpy passes a TimerInfo to callbacks whose signature takes an argument.
        self.steady_timer(
            1.0 / self.config.diagnostics_rate_hz, lambda: self.publish_diagnostics()
        )

    def steady_timer(self, period_s: float, callback):
        """A timer on the monotonic clock: with use_sim_time a node's default clock stops
        when /clock does, and watchdogs must not."""
        return self.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # -- every callback guarded (issue 15) --------------------------------------------
    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs: Any):
        kwargs["event_callbacks"] = self._guarded_events(kwargs.get("event_callbacks"), topic)
        guarded = self.guarded(callback, f"subscription {topic}")
        return super().create_subscription(msg_type, topic, guarded, qos_profile, **kwargs)

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs: Any):
        kwargs["event_callbacks"] = self._guarded_events(kwargs.get("event_callbacks"), topic)
        return super().create_publisher(msg_type, topic, qos_profile, **kwargs)

    def create_timer(self, timer_period_sec, callback, *args: Any, **kwargs: Any):
        if callback is not None:
            callback = self.guarded(callback, f"timer {timer_period_sec:g} s")
        return super().create_timer(timer_period_sec, callback, *args, **kwargs)

    def create_service(self, srv_type, srv_name, callback, **kwargs: Any):
        guarded = self.guarded(callback, f"service {srv_name}", default_arg=1)
        return super().create_service(srv_type, srv_name, guarded, **kwargs)

    def create_guard_condition(self, callback, callback_group=None):
        guarded = self.guarded(callback, "guard condition")
        return super().create_guard_condition(guarded, callback_group)

    def create_client(self, srv_type, srv_name, **kwargs: Any):
        """A client whose futures guard their done-callbacks (the node's response handlers)."""
        client: Any = super().create_client(srv_type, srv_name, **kwargs)
        call_async = client.call_async

        def guarded_call_async(request):
            future = call_async(request)
            add = future.add_done_callback
            future.add_done_callback = lambda callback: add(
                self.guarded(callback, f"response of {srv_name}")
            )
            return future

        client.call_async = guarded_call_async
        return client

    def guarded(self, callback: Callable, where: str, default_arg: int | None = None):
        """`callback` with its exceptions turned into `fail`; once the node has failed it
        is not called again (a service then answers with the response it was given, which
        is argument `default_arg`). `functools.wraps` keeps the signature rclpy inspects."""

        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            if self.failure is None:
                try:
                    return callback(*args, **kwargs)
                except Exception as e:
                    self._callback_failed(where, callback, e)
            return None if default_arg is None else args[default_arg]

        return run

    def _guarded_events(self, events: Any, topic: str) -> Any:
        if events is None:
            return None
        events = copy.copy(events)
        for field in EVENT_FIELDS:
            if (callback := getattr(events, field, None)) is not None:
                setattr(events, field, self.guarded(callback, f"{field} event on {topic}"))
        return events

    def _callback_failed(self, where: str, callback: Callable, error: Exception) -> None:
        self.counters["callback_errors"] += 1
        name = getattr(callback, "__qualname__", type(callback).__name__)
        origin = traceback.extract_tb(error.__traceback__)[-1]
        self.failure_trace = "".join(traceback.format_exception(error))
        self.fail(
            f"{where}: callback {name} raised {type(error).__name__}: {error} "
            f"(at {origin.filename}:{origin.lineno}); stopping",
            EXIT_FAILED,
        )

    # -- endpoints with QoS events (R22) --------------------------------------------
    def contract_publisher(self, msg_type: type, topic: str, qos: Any, create: Any = None):
        """A publisher whose QoS events are watched. `create`: another factory, such as a
        lifecycle node's `create_lifecycle_publisher` (it bypasses our `create_publisher`,
        so the events are guarded here)."""
        events = PublisherEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(topic, event, qos, True),
            deadline=lambda event: self._count(f"offered_deadline_missed_{topic}"),
        )
        if create is None:
            return self.create_publisher(msg_type, topic, qos, event_callbacks=events)
        return create(msg_type, topic, qos, event_callbacks=self._guarded_events(events, topic))

    def contract_subscription(
        self, msg_type: type, topic: str, callback, qos: Any, raw: bool = False
    ):
        """A subscription whose QoS events are watched; `raw` delivers the CDR bytes."""
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(topic, event, qos, False),
            deadline=lambda event: self.on_deadline_missed(topic),
        )
        return self.create_subscription(
            msg_type, topic, callback, qos, event_callbacks=events, raw=raw
        )

    def _incompatible(self, topic: str, event: Any, qos: QoSProfile, publisher: bool) -> None:
        """Note the event; `_report_incompatible` names the peer shortly after, from the
        graph (the event comes when DDS matches the peer, often before its node's name is
        known). The event's `last_policy_kind` is the last policy any peer broke on this
        endpoint: two peers that arrive together were both reported with the second's."""
        self.counters[f"incompatible_qos_{topic}"] += 1
        since = self._qos_events.get(topic, (0, 0, 0, time.monotonic()))[3]
        policy = _policy_name(event.last_policy_kind)
        self._qos_events[topic] = (qos, publisher, policy, since)
        if self._qos_timer is None:
            self._qos_timer = self.steady_timer(0.1, self._report_incompatible)
        self._qos_timer.reset()

    def _report_incompatible(self) -> None:
        """Fatal while the graph comes up (R22: a broken contract fails the start-up).
        Later, a stray peer (a tool with other QoS) gets no messages and is reported, once,
        but cannot stop a running robot."""
        now = time.monotonic()
        for topic, (qos, publisher, policy, since) in list(self._qos_events.items()):
            peers, known = self._incompatible_peers(topic, qos, publisher)
            unnamed = not (peers or known) or any(UNKNOWN_NODE in p for p in peers.values())
            if unnamed and now - since < PEER_NAME_WAIT_S:
                continue  # not in the graph yet, or its node's name is not
            del self._qos_events[topic]
            self._reported_peers.update(peers)
            if peers or not known:
                named = ", ".join(peers.values()) or f"a peer that has left (policy {policy})"
                message = f"incompatible QoS on {topic}: {named}; fix the peer's QoS"
                if since - self._started_s < STARTUP_WINDOW_S:
                    self.fail(message, EXIT_INCOMPATIBLE_QOS)
                else:
                    self.get_logger().error(message)
        if not self._qos_events and self._qos_timer is not None:
            self._qos_timer.cancel()

    def _incompatible_peers(
        self, topic: str, qos: QoSProfile, publisher: bool
    ) -> tuple[dict[tuple, str], bool]:
        """The peers on `topic` not named yet that `qos` cannot match, each described with
        the policies it breaks; and whether some were named before."""
        if publisher:
            endpoints, kind = self.get_subscriptions_info_by_topic(topic), "reader"
        else:
            endpoints, kind = self.get_publishers_info_by_topic(topic), "writer"
        peers, known = {}, False
        for info in endpoints:
            pair = (qos, info.qos_profile) if publisher else (info.qos_profile, qos)
            if not (policies := incompatible_policies(*pair)):
                continue
            key = (topic, tuple(info.endpoint_gid))
            known = known or key in self._reported_peers
            if key not in self._reported_peers:
                node = f"{info.node_namespace.rstrip('/')}/{info.node_name}"
                peers[key] = f"{kind} {node} (policy {', '.join(policies)})"
        return peers, known

    def fail(self, message: str, exit_code: int = 1) -> None:
        """Stop the node with `exit_code` after this callback (see `guarded`)."""
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
        """Count a dropped message by reason; log the reason at most once a second, unless
        every episode boundary brings it (EXPECTED_REJECTIONS: counted only)."""
        self.counters[f"rejected_{error.reason}"] += 1
        if error.reason in EXPECTED_REJECTIONS:
            return
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


def _policy_name(kind: Any) -> str:
    """rclpy's name (DURABILITY, DEADLINE, ...) of an rmw policy kind."""
    try:
        return QoSPolicyKind(int(kind)).name
    except (TypeError, ValueError):
        return str(kind)


class StopSignals:
    """SIGINT and SIGTERM as a request read between spins, once the node spins.

    Not rclpy's handlers: they shut the context down from a signal thread while the
    executor may still be dispatching, and Python's raises KeyboardInterrupt inside
    whichever callback runs; either way a clean stop logged FATAL errors (publishing on a
    closed context). Before the node spins, a signal interrupts its construction."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.spinning = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Kept before the node spins too: a library running the construction may swallow
        # the KeyboardInterrupt (measured: a twin_node stopped while starting then spun on,
        # orphaned), and the spin loop must still stop at once.
        self.times.append(time.monotonic())
        if not self.spinning:
            raise KeyboardInterrupt

    def stop_now(self, node: ContractNode, drain: bool) -> bool:
        """Stop at the first signal; with `drain`, when the node has drained or at the second."""
        if not self.times:
            return False
        return not drain or len(self.times) > 1 or node.drained(self.times[0])


def run_node(
    node_class: Callable[[], ContractNode], args: list[str] | None = None, drain: bool = False
) -> None:
    """rclpy.init, spin until Ctrl-C / SIGTERM / the node's end, close; exit non-zero on a
    failure (a broken contract, a callback's exception).

    With `drain`, SIGINT/SIGTERM ask the node to stop instead of stopping it at once: it
    keeps spinning until `node.drained()` (a recorder: until what is queued for it is
    written), then closes; a second signal stops it at once."""
    if not stop_with_supervisor():
        sys.exit(f"{_name(node_class)}: its supervisor (twinbridge sim) is gone; not starting")
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signals = StopSignals()
    code = 0
    node = None
    executor = None
    try:
        node = node_class()
        # rclpy's EventsExecutor (C++) dispatches without rebuilding a wait set per callback:
        # measured in bench/control_loop.py, it cuts loop latency and CPU.
        executor = EventsExecutor()
        executor.add_node(node)
        signals.spinning = True
        while rclpy.ok() and not node.finished and not signals.stop_now(node, drain):
            try:
                executor.spin_once(timeout_sec=0.05 if signals.times else 0.1)
            except InvalidHandle:
                # An event (a QoS event of a publisher) queued for an entity a transition
                # has just destroyed (a lifecycle cleanup): it has nowhere to go. Uncaught,
                # it ended the driver after cleanup about one time in three.
                continue
        code = _outcome(node, _name(node_class))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ParameterFileError, TwinbridgeError, PolicyError) as e:
        print(f"{_name(node_class)} refused to start: {e}", file=sys.stderr)
        code = EXIT_BAD_CONFIG
    except Exception as e:  # not from a callback (they are guarded): construction, rclpy
        traceback.print_exc()
        print(f"{_name(node_class)} stopped: {type(e).__name__}: {e}", file=sys.stderr)
        code = EXIT_FAILED
    finally:
        # Shutdown is under way: a second Ctrl-C (or one arriving late) must not interrupt
        # the clean-up, which finishes files such as the MP4.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _close(node, executor)
    if code:
        sys.exit(code)


def _outcome(node: ContractNode, name: str) -> int:
    """The exit code of a node that stopped spinning, its failure said on stderr."""
    if node.finished and node.failure is None:
        # Its last reports (task_node's `done`) must reach the readers before the
        # process, and the reliable writer's history with it, is gone.
        node.flush_diagnostics(FINAL_REPORT_ACK_S)
    if node.failure is None:
        return 0
    message, code = node.failure
    if node.failure_trace:
        print(node.failure_trace, file=sys.stderr, end="")
    print(f"{name} stopped: {message}", file=sys.stderr)
    return code


def _close(node: ContractNode | None, executor: Any) -> None:
    """Close the node (a driver: its safe state) after the executor has let go of it."""
    if executor is not None:
        executor.shutdown(timeout_sec=1.0)
    if node is not None:
        node.close()
        node.destroy_node()
    rclpy.try_shutdown()


def _name(node_class: Callable[[], ContractNode]) -> str:
    return getattr(node_class, "__name__", "node")
