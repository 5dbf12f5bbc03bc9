"""`CalibrationClient`: drives a robot through a calibration's poses over the topic contract
and records each capture to MCAP (core: calibration.motion.PoseSequencer).

Used by `twinbridge calibrate cameras` (ros_ws/calibrate_bringup.py), against driver_node
on the emulator or on the robot. It publishes `joint_command` at the driver's control rate
(so its watchdog never fires while the arm stands for a capture), stamped with the newest
joint state as a policy's are; the driver's safety layer applies its limits to every
command. It never calls `enable`: a latched e-stop stops the run (nothing is published
after it) and is the operator's to release. The bag holds every joint state, the capture
markers and, per capture, each camera's first image and camera_info after the marker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from calibration.motion import Phase, PoseSequencer
from calibration.session import CAPTURE_TOPIC
from hardware.recording.writer import BagWriter, BagWriterConfig
from ros_ws import adapters
from ros_ws.qos import control_qos, estop_qos, image_qos
from sim.errors import TwinbridgeError

CONTROL_RATE_HZ = 25.0  # the policy's rate: the driver's joint_command deadline is set for it
# A capture's joints: the mean of this many joint states while the arm stood still (the
# sequencer's settle time covers them), so the encoders' noise shrinks by its square root.
STILL_SAMPLES = 8


class CalibrationAborted(TwinbridgeError):
    """The run stopped before its last pose (an e-stop, a silent robot)."""


class CalibrationClient:
    """One calibration run over ROS: wait for the robot and cameras, walk the poses,
    capture, write the bag. `run(sequencer_factory)` returns the captures recorded."""

    def __init__(
        self, robot: str, namespace: str, command_names: tuple[str, ...], cameras: int, bag: Path
    ):
        self._context = Context()
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("calibration_client", context=self._context)
        self._node, self._ns, self._names = node, f"/{namespace}", command_names
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        reader = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT
        )
        node.create_subscription(JointState, f"{self._ns}/joint_states", self._on_state, reader)
        node.create_subscription(Bool, f"{self._ns}/estop_state", self._on_estop, estop_qos())
        for i in range(cameras):
            topic = f"{self._ns}/camera_{i}"
            node.create_subscription(
                Image, f"{topic}/image_raw", lambda m, i=i: self._on_image(i, m), image_qos()
            )
            node.create_subscription(
                CameraInfo, f"{topic}/camera_info", lambda m, i=i: self._on_info(i, m), image_qos()
            )
        self._command_pub = node.create_publisher(
            JointTrajectory, f"{self._ns}/joint_command", control_qos(CONTROL_RATE_HZ)
        )
        self._cameras = cameras
        self.state: JointState | None = None
        self._state_received = 0.0  # monotonic time of the newest joint state
        self._recent: deque[np.ndarray] = deque(maxlen=STILL_SAMPLES)
        self.estopped = False
        self._images: dict[int, Image] = {}
        self._infos: dict[int, CameraInfo] = {}
        self._bag = BagWriter(bag, BagWriterConfig(), robot=robot, task="calibration")
        self._add_topics()
        self.captures = 0

    def _add_topics(self) -> None:
        add = self._bag.add_topic
        add(f"{self._ns}/joint_states", "sensor_msgs/msg/JointState")
        add(f"{self._ns}/{CAPTURE_TOPIC}", "sensor_msgs/msg/JointState")
        add(f"{self._ns}/joint_command", "trajectory_msgs/msg/JointTrajectory")
        for i in range(self._cameras):
            add(f"{self._ns}/camera_{i}/image_raw", "sensor_msgs/msg/Image")
            add(f"{self._ns}/camera_{i}/camera_info", "sensor_msgs/msg/CameraInfo")

    # -- inputs -----------------------------------------------------------------------
    def _on_state(self, msg: JointState) -> None:
        self.state, self._state_received = msg, time.monotonic()
        self._recent.append(np.asarray(msg.position, dtype=np.float64))
        self._bag.write(f"{self._ns}/joint_states", serialize_message(msg), time.time_ns())

    def _on_estop(self, msg: Bool) -> None:
        self.estopped = self.estopped or bool(msg.data)

    def _on_image(self, index: int, msg: Image) -> None:
        self._images[index] = msg

    def _on_info(self, index: int, msg: CameraInfo) -> None:
        self._infos[index] = msg

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the cameras' images (the largest, if they differ)."""
        return max((m.width, m.height) for m in self._images.values())

    # -- the run -------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float) -> dict[str, float]:
        """Spin until a joint state and an image from every camera arrived; the measured
        joints by name. Refuses to start on a latched e-stop."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._executor.spin_once(timeout_sec=0.05)
            if self.estopped:
                raise CalibrationAborted(
                    f"the e-stop of {self._ns} is latched: release it (the `enable` service) "
                    "once the arm's surroundings are clear, then calibrate"
                )
            if self.state is not None and len(self._images) == self._cameras:
                return dict(zip(self.state.name, self.state.position, strict=True))
        missing = [f"camera_{i}" for i in range(self._cameras) if i not in self._images]
        heard = "no joint_states" if self.state is None else f"nothing from {missing}"
        raise CalibrationAborted(
            f"{heard} in {self._ns} after {timeout_s:.0f} s: is the robot's driver (and each "
            "camera's driver) running on this ROS domain?"
        )

    def run(
        self,
        sequencer: PoseSequencer,
        joints: Callable[[JointState], tuple],
        progress: Callable[[int], None] = lambda done: None,
    ) -> None:
        """Walk `sequencer`'s poses; `joints(state)` gives the measured (arm positions, arm
        speeds) it needs; `progress(poses done)` is called as poses finish. Raises
        CalibrationAborted on an e-stop or a silent robot."""
        period = 1.0 / CONTROL_RATE_HZ
        next_tick = time.monotonic()
        self._state_received = next_tick  # planning took a while; the robot gets 1 s again
        marker_ns = 0
        while sequencer.phase != Phase.DONE:
            self._spin_until(next_tick)
            next_tick += period
            self._check_alive(sequencer)
            state = self.state
            if state is None:  # wait_ready saw one; kept for the type checker
                continue
            positions, speeds = joints(state)
            before = sequencer.phase
            command = sequencer.tick(time.monotonic(), positions, speeds)
            self._publish(command, adapters.stamp_ns(state.header.stamp))
            if sequencer.phase == Phase.CAPTURING and before != Phase.CAPTURING:
                marker_ns = self._mark_capture(state)
            elif sequencer.phase == Phase.CAPTURING and self._record_images(marker_ns):
                sequencer.captured()
            progress(len(sequencer.captured_poses) + len(sequencer.skipped))

    def _spin_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            self._executor.spin_once(timeout_sec=left)

    def _check_alive(self, sequencer: PoseSequencer) -> None:
        where = f"pose {sequencer.index + 1} of {sequencer.poses}"
        if self.estopped:
            raise CalibrationAborted(
                f"e-stop latched at {where}: no command was sent after it; {self.captures} "
                "captures are in the bag (solve them with --bag if they are enough)"
            )
        if self.state is not None:
            age = time.monotonic() - self._state_received
            if age > 1.0:
                raise CalibrationAborted(
                    f"joint_states of {self._ns} stopped {age:.1f} s ago at {where}; the run "
                    "stopped sending commands (the driver holds the arm)"
                )

    def _publish(self, command: np.ndarray, stamp_ns: int) -> None:
        msg = adapters.trajectory_msg(self._names, command, stamp_ns, 1.0 / CONTROL_RATE_HZ)
        self._command_pub.publish(msg)
        self._bag.write(f"{self._ns}/joint_command", serialize_message(msg), time.time_ns())

    def _mark_capture(self, state: JointState) -> int:
        """The capture marker: the measured joints (the mean of the last STILL_SAMPLES
        states, all while the arm stood still), stamped now (images must be newer)."""
        marker = JointState()
        now_ns = time.time_ns()
        marker.header.stamp = adapters.to_time(now_ns)
        marker.name = list(state.name)
        marker.position = np.mean(np.stack(self._recent), axis=0).tolist()
        self._bag.write(f"{self._ns}/{CAPTURE_TOPIC}", serialize_message(marker), now_ns)
        return now_ns

    def _record_images(self, marker_ns: int) -> bool:
        """Once every camera has an image stamped after the marker: write them, True."""
        fresh = {
            i: msg
            for i, msg in self._images.items()
            if adapters.stamp_ns(msg.header.stamp) >= marker_ns
        }
        if len(fresh) < self._cameras:
            return False
        now = time.time_ns()
        for i, msg in fresh.items():
            self._bag.write(f"{self._ns}/camera_{i}/image_raw", serialize_message(msg), now)
            if i in self._infos:
                info = serialize_message(self._infos[i])
                self._bag.write(f"{self._ns}/camera_{i}/camera_info", info, now)
        self._bag.flush()
        self.captures += 1
        return True

    def close(self) -> None:
        self._bag.close()
        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)

    def __enter__(self) -> CalibrationClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
