"""teleop_node: an operator drives the robot through the policy path (core: PolicyController).

Run: `python -m ros_ws.teleop_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml -p device:=keyboard`

The operator (keyboard in this terminal, a gamepad, or the scripted operator; see
hardware/teleop/) takes the place of the ONNX policy in `PolicyController`, so a human's
command goes through the same IK, actuator ranges, hold rules (stale inputs, e-stop) and,
below, the same safety layer as a policy's. Each command is published on `joint_command`,
and the env action it came from on `teleop/action` with the same stamp, for recordings.
The operator's e-stop request calls the robot's `estop` service, its release the `enable`
service (the only way an e-stop is released); its finish (Enter, gamepad Y) calls task_node's
`finish_episode`, which judges the episode now; its quit ends the node. A step with no input
is a hold: a real action (zero motion, gripper unchanged), published like any other; only
while the controller holds (e-stop latched, stale inputs) or after quit is nothing published.
A human operator whose stderr is a terminal sees a status line there (hardware/teleop/
status.py): task_node's `episode_status`, the gripper, the e-stop, the last key.
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.client import Client
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.teleop import make_operator
from hardware.teleop.status import status_text, terminal_status
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
        self.finish_client: Client = self.create_client(Trigger, "finish_episode")
        human = cfg.device != "scripted"
        self.status = terminal_status(sys.stderr) if human else None
        self._episode: dict[str, str] | None = None
        self.create_subscription(DiagnosticArray, "episode_status", self._on_episode, 10)
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
        if events.end_episode:
            self.counters["finish_requests"] += 1
            future = self.finish_client.call_async(Trigger.Request())
            future.add_done_callback(self._on_finished)
        if events.quit:
            self.get_logger().info("operator quit")
            self.finished = True
            return
        self._act()
        self._show_status()

    def _on_episode(self, msg: DiagnosticArray) -> None:
        for _, _, values in adapters.diagnostics_values(msg):
            self._episode = values

    def _on_finished(self, future) -> None:
        response = future.result()
        line = f"finish: {response.message}" if response is not None else "finish: no answer"
        self.get_logger().info(line)
        if self.status is not None:
            self.status.message(line)

    def _show_status(self) -> None:
        if self.status is None:
            return
        estop = {"estop": True, "estop_unknown": None, "starting": None}.get(
            self._hold_reason, False
        )
        state = getattr(self.operator, "state_text", lambda: "")()
        last = getattr(self.operator, "last_input", "")
        self.status.show(status_text(self._episode, state, estop, last))

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
        if self.status is not None:
            self.status.close()


def main(args: list[str] | None = None) -> None:
    run_node(TeleopNode, args)


if __name__ == "__main__":
    main()
