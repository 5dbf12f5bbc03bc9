"""`LifecycleContractNode`: a `ContractNode` with ROS 2's managed lifecycle (rclpy.lifecycle).

Shaped like ros2/demos lifecycle_py: a subclass makes what a configured node has in
`on_configure` (lifecycle publishers, which publish only while ACTIVE, with
`contract_lifecycle_publisher`; other publishers and timers registered with `configured`)
and frees its own resources in `release`. Cleanup, a failed transition (on_error) and
shutdown call `release`, which then destroys what was registered. Bringups without a
lifecycle manager (`twinbridge sim`, `twinbridge robot`) start the node with `autostart`
(configure + activate, from its constructor); otherwise `ros2 lifecycle set <node>
configure` / `activate` / `deactivate` / `cleanup` / `shutdown` drive it. At exit
(`run_node` calls `close`) it goes through the shutdown transition from any state.
"""

from __future__ import annotations

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
        self._made_by_configure: list[Any] = []
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
        """`contract_publisher`, managed (publishes only while ACTIVE) and released."""
        create = self.create_lifecycle_publisher
        return self.configured(self.contract_publisher(msg_type, topic, qos, create=create))

    def configured(self, entity: E) -> E:
        """`entity` (a publisher or a timer made by on_configure), destroyed on release."""
        self._made_by_configure.append(entity)
        return entity

    def release(self) -> None:
        """Undo on_configure; a subclass frees its core first, then calls this."""
        for entity in self._made_by_configure:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_lifecycle_publisher(entity)  # an unmanaged publisher too
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
