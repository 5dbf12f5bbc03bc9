"""teleop_node: an operator drives the robot through the policy path (core: PolicyController).

Run: `python -m ros_ws.teleop_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml -p device:=keyboard`

The operator (keyboard in this terminal, a gamepad, or the scripted operator; see
hardware/teleop/) takes the place of the ONNX policy in `PolicyController`, so a human's
command goes through the same IK, actuator ranges, hold rules (stale inputs, e-stop) and,
below, the same safety layer as a policy's. Each command is published on `joint_command`,
and the env action it came from on `teleop/action` with the same stamp, for recordings.
The operator's e-stop request calls the robot's `estop` service, its release the `enable`
service (the only way an e-stop is released); its quit ends the node. Episodes end at the
task's step limit (task_node), not at the operator's say.
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import time

from rclpy.client import Client
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.teleop import make_operator
from policies.controller import PolicyController
from ros_ws import adapters, health
from ros_ws.controller_inputs import subscribe_controller_inputs
from ros_ws.node_configs import TeleopNodeConfig
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import control_qos
from sim.mirror import TaskMirror


class TeleopNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("teleop_node", TeleopNodeConfig)
        cfg: TeleopNodeConfig = self.config
        mirror = TaskMirror(cfg.task)
        if mirror.robot != cfg.robot:
            raise ValueError(f"task {cfg.task!r} is a {mirror.robot} task; robot is {cfg.robot!r}")
        rate = cfg.control_rate_hz or 1.0 / mirror.dt
        operator_config = dataclasses.replace(cfg.teleop, control_rate_hz=rate)
        self.operator = make_operator(cfg.device, cfg.task, operator_config)
        self.controller = PolicyController(
            self.operator, mirror, cfg.stale_after_s or 3.0 / rate, rate
        )
        self._action_names = [name for name, _ in mirror.task.action_fields(mirror.twin)]
        self._period_s = 1.0 / rate
        self._hold_reason = "starting"
        qos = control_qos(rate)
        self.command_pub = self.contract_publisher(JointTrajectory, "joint_command", qos)
        self.action_pub = self.create_publisher(JointState, "teleop/action", qos)
        subscribe_controller_inputs(self, self.controller, qos, self._act)
        self.estop_client: Client = self.create_client(SetBool, "estop")
        self.enable_client: Client = self.create_client(Trigger, "enable")
        self.steady_timer(self._period_s, self._tick)
        self.get_logger().info(f"{cfg.device} operator on {cfg.task} at {rate} Hz")

    def _tick(self) -> None:
        """The operator's requests first (an e-stop must not wait for a state), then act."""
        events = self.operator.events()
        if events.estop:
            self.counters["estop_requests"] += 1
            self.get_logger().warning("operator e-stop: calling the robot's estop service")
            self.estop_client.call_async(SetBool.Request(data=True))
        elif events.release_estop:  # the explicit release, as the `enable` service is
            self.counters["enable_requests"] += 1
            self.get_logger().warning("operator release: calling the robot's enable service")
            self.enable_client.call_async(Trigger.Request())
        if events.quit:
            self.get_logger().info("operator quit")
            self.finished = True
            return
        self._act()

    def _act(self) -> None:
        if not self.context.ok():  # a state delivered while shutting down: nothing to answer
            return
        decision = self.controller.decide(time.monotonic())
        if decision.targets is None or decision.action is None:
            if decision.hold_reason != "no_new_state":
                self._hold_reason = decision.hold_reason
            return
        self._hold_reason = ""
        names = self.controller.command_names
        stamp = decision.stamp_ns
        self.action_pub.publish(adapters.action_msg(self._action_names, decision.action, stamp))
        self.command_pub.publish(
            adapters.trajectory_msg(names, decision.targets, stamp, self._period_s)
        )

    def diagnostics_values(self) -> dict[str, object]:
        return {"holding": self._hold_reason, **dict(sorted(self.controller.counters.items()))}

    def diagnostics_level(self) -> int:
        return health.WARN if self._hold_reason else health.OK

    def close(self) -> None:
        self.operator.close()  # restores the terminal before anything else prints


def main(args: list[str] | None = None) -> None:
    run_node(TeleopNode, args)


if __name__ == "__main__":
    main()
