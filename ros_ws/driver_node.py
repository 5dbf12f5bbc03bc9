"""driver_node: a robot's hardware backend on the topic contract (core: hardware.DriverLoop).

Run: `python -m ros_ws.driver_node --ros-args -r __ns:=/fetch -p port:=/dev/ttyUSB0 --params-file ros_ws/config/robot.yaml`

A managed node shaped like ros2/demos lifecycle_py: configure connects and verifies the
device and creates the publishers; activate enables it, starts the cycle and the lifecycle
publishers (the states); deactivate brings it to its safe state; cleanup and shutdown turn
torque off, close and release. `estop_state` is published while configured, `diagnostics`
and the estop / enable / reset services always. With `autostart` (the default, as
`twinbridge sim --hardware emulator` and `twinbridge robot` start it) it walks to ACTIVE by
itself, else `ros2 lifecycle set /fetch/driver_node configure` (then `activate`) does.
"""  # noqa: E501

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from geometry_msgs.msg import PoseStamped
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.driver_core import DriverCore
from hardware.driver_loop import DriverLoop
from hardware.interface import HardwareError, Measurement
from ros_ws import adapters, bridge_backend, health  # noqa: F401  (registers "bridge")
from ros_ws.lifecycle_node import SUCCESS, LifecycleContractNode
from ros_ws.node_configs import DriverNodeConfig
from ros_ws.node_runtime import run_node
from ros_ws.qos import control_qos, estop_qos, latched_qos
from sim.contract.command_rules import CommandRejected


class DriverNode(LifecycleContractNode):
    def __init__(self) -> None:
        super().__init__("driver_node", DriverNodeConfig)
        self.loop: DriverLoop | None = None  # configure to cleanup
        self.pubs: dict[str, Any] = {}  # topic: publisher, configure to cleanup
        qos = control_qos(self.config.driver.publish_rate_hz)
        self.contract_subscription(JointTrajectory, "joint_command", self._on_command, qos)
        self.create_subscription(PoseStamped, "goal", self._on_goal, latched_qos())
        self.create_service(SetBool, "estop", self._answer(lambda c, r: c.estop_request(r.data)))
        self.create_service(Trigger, "enable", self._answer(lambda c, r: (True, c.enable())))
        self.create_service(Trigger, "reset", self._answer(lambda c, r: c.reset_request()))
        if self.config.autostart:
            self.autostart()

    # -- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        cfg: DriverNodeConfig = self.config
        topics = {"state_topic": cfg.bridge_state_topic, "command_topic": cfg.bridge_command_topic}
        try:
            self.loop = DriverLoop.configure(cfg.driver, self, {"node": self, **topics})
        except (HardwareError, ValueError) as e:
            return self.transition_failed("configure", e)
        qos = control_qos(cfg.driver.publish_rate_hz)
        for msg_type, topic in ((JointState, "joint_states"), (PoseStamped, "object_pose")):
            self.pubs[topic] = self.contract_lifecycle_publisher(msg_type, topic, qos)
        # The command the safety layer let through, with each published state.
        self.pubs["joint_command_applied"] = self.kept_publisher(
            "joint_command_applied",
            lambda: self.create_lifecycle_publisher(JointTrajectory, "joint_command_applied", qos),
        )
        self.pubs["estop_state"] = self.kept_publisher(  # also inactive, from the timer
            "estop_state", lambda: self.contract_publisher(Bool, "estop_state", estop_qos())
        )
        self.configured(self.steady_timer(0.1, self._publish_estop))
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configured().activate()
        except HardwareError as e:
            return self.transition_failed("activate", e)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._configured().deactivate()
        return super().on_deactivate(state)

    def release(self) -> None:
        """cleanup, shutdown (also at exit), a failed transition: torque off, close (R10)."""
        if self.loop is not None:
            self.loop.close()  # the cycle first: nothing publishes past this line
            self.loop = None
        self.pubs.clear()
        super().release()

    # -- the cycle's outputs (hardware.driver_loop.DriverOutputs), on its thread -------
    def publish_state(self, stamp_ns: int, measured: Measurement, sent: Any) -> None:
        state, pose = adapters.measurement_msgs(measured, stamp_ns)
        self.pubs["joint_states"].publish(state)
        if pose is not None:
            self.pubs["object_pose"].publish(pose)
        loop = self._configured()
        if sent is not None:  # torque off sends no positions
            msg = adapters.trajectory_msg(loop.command_names, sent, stamp_ns, loop.state_period_s)
            self.pubs["joint_command_applied"].publish(msg)

    # -- inputs ------------------------------------------------------------------------
    def _on_command(self, msg: JointTrajectory) -> None:
        """Handed to the cycle as it came (latest wins); validated there."""
        if self.loop is None:
            self.reject(CommandRejected("unconfigured", "driver_node is not configured"))
            return
        targets_of = functools.partial(adapters.trajectory_targets, msg)
        stamp_ns = adapters.stamp_ns(msg.header.stamp)
        self.loop.submit(targets_of, stamp_ns, len(msg.joint_names), msg.points)

    def _on_goal(self, msg: PoseStamped) -> None:
        if self.loop is not None:
            self.loop.core.on_goal(adapters.stamp_ns(msg.header.stamp))

    def _answer(self, action: Callable[[DriverCore, Any], tuple[bool, str]]):
        """A service callback: (success, message) of `action(core, request)`, refused while
        unconfigured; a service never raises into the executor."""

        def callback(request: Any, response: Any) -> Any:
            try:
                response.success, response.message = action(self._configured().core, request)
            except HardwareError as e:
                response.success, response.message = False, str(e)
            self._publish_estop()
            return response

        return callback

    # -- outputs -----------------------------------------------------------------------
    def _publish_estop(self) -> None:
        if self.loop is not None:
            self.pubs["estop_state"].publish(Bool(data=self.loop.core.interface.safety.estopped))

    def diagnostics_values(self) -> dict[str, object]:
        return self.loop.diagnostics() if self.loop is not None else {}

    def diagnostics_level(self) -> int:
        """ros_ws/health.py: ERROR unconfigured or not under control (a latch, the link
        down); WARN while the link drops more often than `LINK_LOSSES_WARN_PER_MIN`
        (hardware/interface.py): outages of a second each are over before anyone looks."""
        core = self.loop.core if self.loop is not None else None
        if core is None or core.status:
            return health.ERROR
        return health.WARN if core.interface.link.flapping else health.OK

    def _configured(self) -> DriverLoop:
        if self.loop is None:
            raise HardwareError("driver_node is not configured")
        return self.loop


def main(args: list[str] | None = None) -> None:
    # The control cycle runs on its own thread; let it take the interpreter within 0.5 ms
    # of its deadline, not after the default 5 ms slice of a busy executor thread.
    sys.setswitchinterval(0.0005)
    run_node(DriverNode, args)


if __name__ == "__main__":
    main()
