"""`LifecycleContractNode`: a `ContractNode` with ROS 2's managed lifecycle (rclpy.lifecycle).

Shaped like ros2/demos lifecycle_py: a subclass makes what a configured node has in
`on_configure` (lifecycle publishers, which publish only while ACTIVE, with
`contract_lifecycle_publisher`; other publishers with `kept_publisher`; timers registered
with `configured`) and frees its own resources in `release`. Cleanup, a failed transition
(on_error) and shutdown call `release`, which then destroys the registered timers.
Publishers are made by the first configure and kept until the node is destroyed (the next
configure reuses them): destroying one while the node spins raced rclpy's EventsExecutor
over the publisher's QoS events, which crashed the driver after `cleanup` in about one of
five runs (an InvalidHandle, or a segmentation fault). They publish nothing meanwhile: a
lifecycle publisher only while ACTIVE, the others from timers that are gone. Bringups without a
lifecycle manager (`twinbridge sim`, `twinbridge robot`) start the node with `autostart`
(configure + activate, from its constructor); otherwise `ros2 lifecycle set <node>
configure` / `activate` / `deactivate` / `cleanup` / `shutdown` drive it. At exit
(`run_node` calls `close`) it goes through the shutdown transition from any state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.timer import Timer

from ros_ws.node_runtime import EXIT_BAD_CONFIG, ContractNode

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
E = TypeVar("E")


class LifecycleContractNode(ContractNode, LifecycleNode):
    """A contract node whose resources live from configure to cleanup."""

    def __init__(self, name: str, config_class: type) -> None:
        super().__init__(name, config_class)
        self.transition_error = ""  # why the last transition failed, said by `autostart`
        self._made_by_configure: list[Timer] = []
        self._kept_publishers: dict[str, Any] = {}
        self._finalized = False

    def autostart(self) -> None:
        """configure + activate; a failed transition stops the node with EXIT_BAD_CONFIG."""
        if self.trigger_configure() != SUCCESS or self.trigger_activate() != SUCCESS:
            self.fail(f"{self.get_name()} did not start: {self.transition_error}", EXIT_BAD_CONFIG)

    def transition_failed(self, transition: str, error: Exception) -> TransitionCallbackReturn:
        """A transition refused, with its reason (logged, and said by `autostart`)."""
        self.transition_error = str(error)
        self.get_logger().error(f"{transition} failed: {error}")
        return FAILURE

    def contract_lifecycle_publisher(self, msg_type: type, topic: str, qos: Any):
        """`contract_publisher`, managed (publishes only while ACTIVE), kept."""
        create = self.create_lifecycle_publisher
        return self.kept_publisher(
            topic, lambda: self.contract_publisher(msg_type, topic, qos, create=create)
        )

    def kept_publisher(self, topic: str, make: Callable[[], E]) -> E:
        """The publisher of `topic`, made by `make` at the first configure and kept."""
        if topic not in self._kept_publishers:
            self._kept_publishers[topic] = make()
        return self._kept_publishers[topic]

    def configured(self, timer: Timer) -> Timer:
        """A timer made by on_configure, destroyed on release."""
        self._made_by_configure.append(timer)
        return timer

    def release(self) -> None:
        """Undo on_configure; a subclass frees its core first, then calls this."""
        for timer in self._made_by_configure:
            self.destroy_timer(timer)
        self._made_by_configure.clear()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()  # back to UNCONFIGURED, holding nothing
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self._finalized = self.finished = True  # FINALIZED: run_node lets the process end
        return SUCCESS

    def close(self) -> None:
        """At exit: the shutdown transition from any state; released in any case."""
        try:
            if not self._finalized:
                self.trigger_shutdown()
        finally:
            self.release()
