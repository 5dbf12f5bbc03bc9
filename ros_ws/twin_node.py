"""twin_node: the MuJoCo twin as the robot at the bottom of the graph (core: sim.TwinLoop).

Run: `python -m ros_ws.twin_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml`

Sim time is published on `/clock`. Each control period the twin applies the newest valid
`joint_command`, steps, and publishes `joint_states` + `object_pose`. With `real_time` the
period is paced by a wall timer; without, the twin steps as soon as the command answering
the current state arrives (lockstep, as fast as the loop runs), holding after
`lockstep_timeout_s`. After a reset it waits for the episode's goal before stepping (at
most `goal_timeout_s`: a reset from outside sends no goal). Resets follow the contract's
rules (sim/contract/episode_gate.py): refused while the e-stop is latched or an episode runs.
"""

from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from ros_ws import adapters, health
from ros_ws.camera_publisher import CameraPublisher
from ros_ws.node_configs import TwinNodeConfig
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import control_qos, estop_qos, latched_qos
from sim.camera_calibration import load_rig
from sim.contract.command_rules import CommandRejected
from sim.contract.episode_gate import ResetRefused
from sim.latency import LatencyTracker
from sim.twin_loop import TwinLoop
from sim.video import BackgroundVideo


class TwinNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("twin_node", TwinNodeConfig)
        cfg: TwinNodeConfig = self.config
        self.loop = TwinLoop(cfg.task, cfg.seed)
        if cfg.calibration_path:  # the rig's calibrated cameras (twinbridge calibrate cameras)
            self.loop.twin.use_calibration(load_rig(cfg.calibration_path), self.loop.task.robot)
        period = self.loop.control_period_s
        self.rules = self.loop.command_rules(cfg.command_max_age_s, cfg.allow_partial_joints_goal)
        self.latency = LatencyTracker(deadline_s=period)
        qos = control_qos(1.0 / period)
        self.state_pub = self.contract_publisher(JointState, "joint_states", qos)
        self.pose_pub = self.contract_publisher(PoseStamped, "object_pose", qos)
        self.estop_pub = self.contract_publisher(Bool, "estop_state", estop_qos())
        # What the actuators were given each period: the command after clamping (or the
        # e-stop's hold), stamped with the state it answers; recordings keep both.
        self.applied_pub = self.create_publisher(JointTrajectory, "joint_command_applied", qos)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.contract_subscription(JointTrajectory, "joint_command", self._on_command, qos)
        self.create_subscription(PoseStamped, "goal", self._on_goal, latched_qos())
        self.create_service(Trigger, "reset", self._on_reset)
        self.create_service(SetBool, "estop", self._on_estop)
        self.create_service(Trigger, "enable", self._on_enable)
        self._command: tuple[int, dict[str, float]] | None = None
        self._reset_wall_s = 0.0
        self._last_publish_wall = time.monotonic()
        self._video = _video(self.loop, cfg) if cfg.video_path else None
        self._cameras = CameraPublisher(self, self.loop, cfg)
        self.timer = self.steady_timer(period if cfg.real_time else 0.05, self._on_timer)
        self.steady_timer(0.1, self._publish_estop)
        if self._cameras.names:
            self.steady_timer(1.0 / cfg.camera_rate_hz, self._cameras.capture)
        self._publish_state()
        self._publish_estop()

    # -- the control period --------------------------------------------------------
    def _on_timer(self) -> None:
        if self.loop.gate.holding:
            self._goal_overdue()
        elif self.config.real_time:
            self._advance()
        elif time.monotonic() - self._last_publish_wall > self.config.lockstep_timeout_s:
            self.counters["lockstep_timeouts"] += 1
            self._advance()

    def _advance(self) -> None:
        """Apply the newest command, step one control period, publish the new state."""
        if self.loop.gate.holding:
            return
        if self._command is not None and not self.loop.estopped:
            self.loop.apply(self._command[1])
        self.applied_pub.publish(
            adapters.trajectory_msg(
                self.loop.io.command_names,
                self.loop.applied_targets(),
                self.loop.stamp_ns,
                self.loop.control_period_s,
            )
        )
        self.loop.step()
        if self.loop.estopped:
            self.counters["estop_holds"] += 1
        self._publish_state()

    def _publish_state(self) -> None:
        if self._video is not None:
            self._video.capture(self.loop.overlay())
        sample = self.loop.joint_state()
        self.clock_pub.publish(Clock(clock=adapters.to_time(sample.stamp_ns)))
        now = time.monotonic()
        self.latency.published(self.loop.stamp_ns, now, awaited=not self.loop.estopped)
        self._last_publish_wall = now
        self.state_pub.publish(adapters.joint_state_msg(sample))
        pose = self.loop.object_pose()
        if pose is not None:
            self.pose_pub.publish(adapters.pose_msg(pose))

    # -- inputs ----------------------------------------------------------------------
    def _on_command(self, msg: JointTrajectory) -> None:
        now = time.monotonic()
        try:
            targets = adapters.trajectory_targets(msg, self.loop.stamp_s, self.rules)
            stamp = adapters.stamp_ns(msg.header.stamp)
            self.loop.check_command(stamp)
        except CommandRejected as e:
            self.reject(e)
            return
        self.latency.answered(stamp, now)
        self._command = (stamp, targets)
        self.counters["commands_accepted"] += 1
        if not self.config.real_time and stamp == self.loop.stamp_ns:
            self._advance()

    def _on_goal(self, msg: PoseStamped) -> None:
        if not self.loop.gate.awaiting_goal:
            return
        if self.loop.is_episode_goal(adapters.goal_from_msg(msg, self.loop.task.goal_dim)):
            self._start_episode()
        else:
            self.counters["goals_of_another_episode"] += 1

    def _goal_overdue(self) -> None:
        """No goal came (a reset from outside the task node): step again, so the robot
        never stops publishing; the episode starts only with its goal."""
        if time.monotonic() - self._reset_wall_s > self.config.goal_timeout_s:
            self.counters["goal_timeouts"] += 1
            self.loop.gate.goal_overdue()
            self._resume()

    def _start_episode(self) -> None:
        self.loop.goal_received()
        self._resume()

    def _resume(self) -> None:
        self.timer.reset()  # a full control period for the first command
        self._publish_state()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        try:
            plan = self.loop.reset()
        except ResetRefused as e:
            self.counters[f"reset_refused_{e.reason}"] += 1
            response.success, response.message = False, str(e)
            return response
        if plan.move:
            self._command = None
            self.latency.forget_pending()
            self._reset_wall_s = time.monotonic()
            if not self.config.wait_for_goal:
                self._start_episode()
        # The stamp of the episode's first state: older states still in flight are not it.
        response.success = True
        response.message = f"seed={plan.seed} stamp_ns={self.loop.episode_start_ns}"
        return response

    def _on_estop(self, request: SetBool.Request, response: SetBool.Response):
        response.success, response.message = self.loop.estop_request(request.data)
        if response.success:
            self.get_logger().warning("e-stop engaged: holding every actuator")
            self._publish_estop()
        return response

    def _on_enable(self, request: Trigger.Request, response: Trigger.Response):
        self.loop.release_estop()
        self._publish_estop()
        response.success, response.message = True, "enabled; holding the last positions"
        return response

    # -- periodic outputs -----------------------------------------------------------
    def _publish_estop(self) -> None:
        self.estop_pub.publish(Bool(data=self.loop.estopped))

    def diagnostics_values(self) -> dict[str, object]:
        summary = self.latency.summary()
        return {
            **self.loop.diagnostics(),
            "latency_samples": summary.samples,
            "latency_p50_ms": summary.p50_ms,
            "latency_p99_ms": summary.p99_ms,
            "latency_max_ms": summary.max_ms,
            "deadline_misses": summary.deadline_misses,
            "video_frames_dropped": self._video.dropped if self._video else 0,
            "camera_frames_dropped": self._cameras.dropped,
        }

    def diagnostics_level(self) -> int:
        """ERROR while the e-stop is latched here; WARN while an episode waits long for
        its goal (the twin publishes no state then); ros_ws/health.py defines them."""
        if self.loop.estopped:
            return health.ERROR
        waited = time.monotonic() - self._reset_wall_s
        return health.WARN if self.loop.gate.holding and waited > 0.5 else health.OK

    def close(self) -> None:
        cameras = getattr(self, "_cameras", None)
        if cameras is not None:
            cameras.close()
        if self._video is not None:
            self._video.close()
            print(f"{self._video.summary()}; {self._video.dropped} dropped", flush=True)
        self.loop.twin.close()


def _video(loop: TwinLoop, cfg: TwinNodeConfig) -> BackgroundVideo:
    """Real time drops frames the renderer cannot keep up with; lockstep waits for it."""
    fps = 1.0 / loop.control_period_s
    camera = loop.task.video_camera
    return BackgroundVideo(loop.twin, camera, cfg.video_path, fps, drop_when_behind=cfg.real_time)


def main(args: list[str] | None = None) -> None:
    run_node(TwinNode, args)


if __name__ == "__main__":
    main()
