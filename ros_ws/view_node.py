"""view_node: the live web view of a robot namespace's contract topics (core: LiveView).

Run: `python -m ros_ws.view_node --ros-args -r __ns:=/fetch -p task:=fetch-push`
(or `twinbridge view`, or `--view` on `twinbridge sim`, `teleop`, `robot`); the page's URL
is in the log. Subscribes to joint_states, joint_command, joint_command_applied,
object_pose, goal, estop_state, diagnostics and the `cameras`' image_raw, with QoS never
stricter than the contract's publishers (so it never breaks a running graph), and stamps
each sample with its receipt time. The mirrored twin is drawn on a timer at
`render_rate_hz`, in this process: nothing here is on the robot's control path.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from hardware.view.live_view import LiveView
from ros_ws import adapters
from ros_ws.node_configs import ViewNodeConfig
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import diagnostics_qos, image_qos, latched_qos

GOAL_VALUES = 7  # the contract's PoseStamped goal: position + wxyz quaternion


def _reader(depth: int, latched: bool = False) -> QoSProfile:
    """Reliable, no deadline or liveliness: compatible with every contract publisher."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class ViewNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("view_node", ViewNodeConfig)
        self.view = LiveView.serve(self.config.view)
        self.get_logger().info(f"live view: {self.view.url}")
        control = _reader(10)
        sub = self.contract_subscription
        sub(JointState, "joint_states", self._on_joint_state, control)
        sub(JointTrajectory, "joint_command", lambda m: self._on_command(m, False), control)
        sub(JointTrajectory, "joint_command_applied", lambda m: self._on_command(m, True), control)
        sub(PoseStamped, "object_pose", self._on_pose, control)
        sub(PoseStamped, "goal", self._on_goal, latched_qos())
        sub(Bool, "estop_state", self._on_estop, _reader(1, latched=True))
        sub(DiagnosticArray, "diagnostics", self._on_diagnostics, diagnostics_qos())
        for camera in self.config.view.camera_names:
            topic = f"camera_{camera}/image_raw"
            sub(Image, topic, lambda m, c=camera: self._on_image(c, m), image_qos())
        self.steady_timer(1.0 / self.config.view.render_rate_hz, self._render)

    def _on_joint_state(self, msg: JointState) -> None:
        _, names, positions, velocities = adapters.joint_state_fields(msg)
        self.view.joint_state(time.time_ns(), names, positions, velocities)

    def _on_command(self, msg: JointTrajectory, applied: bool) -> None:
        if msg.points:
            targets = list(msg.points[-1].positions)
            self.view.command(time.time_ns(), list(msg.joint_names), targets, applied)

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = adapters.pose_from_msg(msg)
        self.view.object_pose(time.time_ns(), pose.position_m, pose.quaternion_wxyz)

    def _on_goal(self, msg: PoseStamped) -> None:
        self.view.goal(time.time_ns(), adapters.goal_from_msg(msg, GOAL_VALUES))

    def _on_estop(self, msg: Bool) -> None:
        self.view.estop(time.time_ns(), bool(msg.data))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.time_ns()
        for name, _, values in adapters.diagnostics_values(msg):
            self.view.diagnostics(now, name, values)

    def _on_image(self, camera: str, msg: Image) -> None:
        if msg.encoding != "rgb8":
            self.counters[f"image_encoding_not_rgb8_{camera}"] += 1
            return
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
        self.view.camera_image(
            time.time_ns(), camera, rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
        )

    def _render(self) -> None:
        self.view.render(time.time_ns())

    def diagnostics_values(self) -> dict[str, object]:
        return {
            "url": self.view.url,
            "renders": self.view.renders,
            "joint_states_not_mirrored": self.view.rejected,
        }

    def close(self) -> None:
        view = getattr(self, "view", None)
        if view is not None:
            view.close()


def main(args: list[str] | None = None) -> None:
    run_node(ViewNode, args)


if __name__ == "__main__":
    main()
