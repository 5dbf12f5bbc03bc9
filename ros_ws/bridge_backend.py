"""Bridge backend: a vendor robot stack that already speaks ROS topics, as a `RobotInterface`.

Run: as driver_node's backend, e.g. `python -m ros_ws.driver_node --ros-args -r __ns:=/fetch -p backend:=bridge -p port:=none -p bridge_state_topic:=/joint_states -p bridge_command_topic:=/arm_controller/command`

The stock Fetch and Shadow drivers are ROS 1 (the Shadow hand's EtherCAT driver too). Run
`ros1_bridge dynamic_bridge` next to them: their `joint_states` (sensor_msgs/JointState) and
their joint_trajectory_controller's `command` topic (trajectory_msgs/JointTrajectory; Fetch
`/arm_controller/command`, Shadow `/rh_trajectory_controller/command`) then appear in ROS 2,
and this backend reads the one and writes the other. Our safety layer still runs first:
the vendor controller only ever receives rate-limited, in-limit, fresh targets. Enable and
torque-off stay with the vendor stack (its runstop); disabling here stops sending, and the
vendor controller holds its last point. Servo positions are computed from joint positions
through the model's transmission matrix; the vendor reports no servo efforts (its own
controller enforces them), so the effort monitor sees zeros.
"""  # noqa: E501

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from hardware.backends import BackendRequest, register_backend
from hardware.interface import ConnectionFailed, Measurement, RobotInterface
from ros_ws import adapters
from ros_ws.qos import control_qos

DISCOVERY_TIMEOUT_S = 5.0
LINK_TIMEOUT_S = 0.2  # vendor stacks publish at 25-100 Hz: 5+ periods of silence = lost


class BridgeRobot(RobotInterface):
    """A vendor stack's JointState topic in, its JointTrajectory topic out."""

    backend = "bridge"

    def __init__(self, request: BackendRequest):
        super().__init__(request.robot, request.safety, limit_overrides=request.limit_overrides)
        options = request.options
        self.node: Node = options["node"]
        self.state_topic = options.get("state_topic") or "joint_states_vendor"
        self.command_topic = options.get("command_topic") or "joint_command_vendor"
        self.rate_hz = float(options.get("rate_hz", 25.0))
        self.discovery_timeout_s = float(options.get("discovery_timeout_s", DISCOVERY_TIMEOUT_S))
        self._lock = threading.Lock()
        self._latest: JointState | None = None
        self._fresh = False
        self._last_state_ns = 0
        self._subscription: Any = None
        self._publisher: Any = None
        self._enabled = False
        self._index: np.ndarray | None = None

    @property
    def measurement_period_s(self) -> float:
        return 1.0 / self.rate_hz

    def _connect(self) -> None:
        qos = control_qos(self.rate_hz)
        self._subscription = self.node.create_subscription(
            JointState, self.state_topic, self._on_state, qos
        )
        self._publisher = self.node.create_publisher(JointTrajectory, self.command_topic, qos)
        self._wait_for_vendor()
        self._last_state_ns = self.clock_ns()

    def _wait_for_vendor(self) -> None:
        deadline = time.monotonic() + self.discovery_timeout_s
        while time.monotonic() < deadline:
            if self.node.count_publishers(self._resolved(self.state_topic)) > 0:
                return
            time.sleep(0.05)
        raise ConnectionFailed(
            f"no publisher on {self._resolved(self.state_topic)} within "
            f"{self.discovery_timeout_s} s: "
            "is the vendor driver running, and ros1_bridge bridging its joint_states?"
        )

    def _resolved(self, topic: str) -> str:
        return self.node.resolve_topic_name(topic)

    def _on_state(self, msg: JointState) -> None:
        with self._lock:
            self._latest, self._fresh = msg, True
            self._last_state_ns = self.clock_ns()

    def _enable(self, enabled: bool) -> None:
        self._enabled = enabled

    def _read(self) -> Measurement | None:
        with self._lock:
            msg, fresh, last_ns = self._latest, self._fresh, self._last_state_ns
            self._fresh = False
        silent_s = (self.clock_ns() - last_ns) * 1e-9
        if silent_s > LINK_TIMEOUT_S:
            self._link_lost(silent_s)
            return None
        if self.error.startswith("link lost"):
            self.error = ""
            self.counters["reconnects"] += 1
        if msg is None or not fresh:
            return None
        return self._measurement(msg, last_ns)

    def _link_lost(self, silent_s: float) -> None:
        if not self.error:
            self.error = f"link lost: no {self.state_topic} for {silent_s * 1e3:.0f} ms"
            self.counters["link_lost"] += 1
            self._restart_from_measured()

    def _measurement(self, msg: JointState, received_ns: int) -> Measurement | None:
        index = self._joint_index(list(msg.name))
        if index is None:
            return None
        positions = np.asarray(msg.position, dtype=np.float64)[index]
        velocities = _optional(msg.velocity, index)
        efforts = _optional(msg.effort, index)
        servo = self.tables.servo_from_joints
        return Measurement(
            stamp_ns=received_ns,
            joint_names=self.tables.joint_names,
            positions=positions,
            velocities=velocities,
            efforts=efforts,
            servo_positions=servo @ positions,
            servo_velocities=servo @ velocities,
            servo_efforts=np.zeros(servo.shape[0]),
        )

    def _joint_index(self, names: list[str]) -> np.ndarray | None:
        """Where each of our joints is in the vendor's message; a missing one is an error."""
        missing = [n for n in self.tables.joint_names if n not in names]
        if missing:
            self.error = (
                f"vendor {self.state_topic} lacks joints {missing}: is it the {self.robot}? "
                "Fix: remap the topic to this robot's driver"
            )
            self.counters["wrong_vendor_joints"] += 1
            return None
        return np.array([names.index(n) for n in self.tables.joint_names], dtype=np.intp)

    def _send(self, positions: np.ndarray) -> None:
        if not self._enabled or self._publisher is None:
            return
        with self._lock:  # the vendor's own clock: its controller checks stamps against it
            stamp_ns = adapters.stamp_ns(self._latest.header.stamp) if self._latest else 0
        names = self.limits.names
        period = self.safety.config.period_s
        self._publisher.publish(adapters.trajectory_msg(names, positions, stamp_ns, 2 * period))

    def _estop(self) -> None:
        m = self.last_measurement
        if m is not None and self._publisher is not None:
            hold = np.clip(m.servo_positions, self.limits.position_min, self.limits.position_max)
            self._send(hold)

    def _reset_fault(self) -> None:
        self._last_target = None

    def _close(self) -> None:
        if self._subscription is not None:
            self.node.destroy_subscription(self._subscription)
        if self._publisher is not None:
            self.node.destroy_publisher(self._publisher)
        self._subscription = self._publisher = None


def _optional(values, index: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[index] if array.size else np.zeros(len(index))


register_backend("bridge", BridgeRobot)
