"""task_node: episodes, goals and success, judged exactly as the env does (core: EpisodeJudge).

Run: `python -m ros_ws.task_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml`

Each episode: call the robot's `reset` (the twin answers with the seed it used), publish
the episode's goal on `goal` (latched), watch `joint_states` + `object_pose` until the
episode's last control step, judge success, and report it on `diagnostics` as status
`task_node/episode` (its start, with task, seed and goal, as `task_node/episode_start`,
the markers a recorder keeps); after `episodes` episodes, report `task_node/done` and exit 0.

An episode is judged from its first state that a commander answered (a `joint_command`
stamped with it; sim.episodes.EpisodeTracker), so a policy that joins late costs nothing.
It lasts `episode_seconds` (0: the task's registered length), or until an operator calls
the `finish_episode` service (std_srvs/Trigger: judged on the newest state). While the
e-stop is latched the episode clock is paused (nothing counted, nothing judged); on
release the episode continues. `episode_status` (diagnostic_msgs/DiagnosticArray, 5 Hz)
says where the episode is, for an operator's status line. When the first episode starts,
and why none can (a refused reset is retried; the node says why in its diagnostics, WARN):
sim.episode_schedule.EpisodeSchedule.
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.client import Client
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ros_ws import adapters, health
from ros_ws.node_configs import TaskNodeConfig
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import control_qos, estop_qos, latched_qos
from sim.contract.command_rules import CommandRejected, validate_joint_state
from sim.episode_schedule import EpisodeSchedule
from sim.episodes import EpisodeJudge, EpisodeResult, EpisodeTracker, parse_reset_answer

ESTOP_WAIT = "the e-stop is latched; release it with the robot's 'enable' service"
PAUSED = "the e-stop is latched: the episode clock is paused; release it with 'enable'"
STATUS_PERIOD_S = 0.2


class TaskNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("task_node", TaskNodeConfig)
        cfg: TaskNodeConfig = self.config
        self.judge = EpisodeJudge(cfg.task, episode_s=cfg.episode_seconds)
        names = self.judge.mirror.io.command_names
        self.tracker = EpisodeTracker(self.judge, names, cfg.reset_timeout_s)
        qos = control_qos(1.0 / self.judge.mirror.dt)
        self.goal_pub = self.create_publisher(PoseStamped, "goal", latched_qos())
        self.contract_subscription(JointState, "joint_states", self._on_joint_state, qos)
        if self.judge.mirror.has_object:
            self.contract_subscription(PoseStamped, "object_pose", self._on_pose, qos)
        self.contract_subscription(JointTrajectory, "joint_command", self._on_command, qos)
        self.contract_subscription(Bool, "estop_state", self._on_estop_state, estop_qos())
        self.reset_client: Client = self.create_client(Trigger, "reset")
        self.create_service(Trigger, "finish_episode", self._on_finish)
        self.status_pub = self.create_publisher(DiagnosticArray, "episode_status", 10)
        self._pending_reset: Future | None = None
        self.schedule = EpisodeSchedule(cfg.reset_timeout_s, cfg.report_readers, time.monotonic())
        self._estopped = False
        self.steady_timer(0.05, self._next_episode)
        self.steady_timer(STATUS_PERIOD_S, self._publish_status)

    def _next_episode(self) -> None:
        """Start an episode when none runs and no reset is under way."""
        now = time.monotonic()
        if self._estopped and not self.finished:
            self._say(self.schedule.wait(now, PAUSED if self.judge.running else ESTOP_WAIT))
            return
        if self.finished or self.judge.running or self._pending_reset is not None:
            return
        if not self.schedule.may_ask(now):
            return
        if not self.reset_client.service_is_ready():
            if self.schedule.timed_out(now):
                self.fail(f"no 'reset' service after {self.config.reset_timeout_s} s")
            return
        if not self.judge.results and not self._first_episode_ready(now):
            return
        self._pending_reset = self.reset_client.call_async(Trigger.Request())
        self._pending_reset.add_done_callback(self._on_reset_done)

    def _first_episode_ready(self, now: float) -> bool:
        commander = self.schedule.commander_ready(now, bool(self._commanders()))
        matched = self._diagnostics.get_subscription_count()
        readers, waived = self.schedule.readers_ready(now, matched)
        self._say(waived or None)
        return commander and readers

    def _commanders(self) -> set[tuple[str, str]]:
        def nodes(infos) -> set[tuple[str, str]]:
            return {(i.node_namespace, i.node_name) for i in infos}

        ns = self.get_namespace().rstrip("/")
        publishing = nodes(self.get_publishers_info_by_topic(f"{ns}/joint_command"))
        return publishing & nodes(self.get_subscriptions_info_by_topic(f"{ns}/goal"))

    def _on_reset_done(self, future) -> None:
        self._pending_reset = None
        response = future.result()
        if response is not None and not response.success:
            self._say(self.schedule.refused(time.monotonic(), response.message))
            return
        fields = parse_reset_answer(response.message) if response is not None else None
        if fields is None:
            self.fail(f"the robot's reset did not say its seed: {response}")
            return
        self.schedule.started()
        seed, stamp_ns = fields["seed"], fields.get("stamp_ns", 0)
        goal = self.tracker.start(seed, stamp_ns, time.monotonic())
        self.goal_pub.publish(adapters.goal_msg(goal, self.get_clock().now().nanoseconds))
        start = self.judge.start_report(seed, goal, stamp_ns)  # the recorders' marker
        self.publish_diagnostics(name="task_node/episode_start", values=start)

    def _say(self, line: str | None) -> None:
        if line:
            self.get_logger().warning(line)

    def _on_estop_state(self, msg: Bool) -> None:
        """Latched: the episode clock pauses; released: the episode continues."""
        latched, was = bool(msg.data), self._estopped
        self._estopped = latched
        if latched and not was and self.judge.running:
            self.tracker.pause()
            self.get_logger().warning(f"episode {len(self.judge.results)}: paused (e-stop)")
        elif was and not latched:
            self.tracker.resume(time.monotonic())
            self.schedule.started()  # no wait any more

    def _on_finish(self, request: Trigger.Request, response: Trigger.Response):
        """The operator ends the episode now: judged as the task judges the newest state."""
        result = None if self._estopped else self.tracker.finish(time.monotonic())
        if result is None:
            why = "the e-stop is latched" if self._estopped else "no episode is running"
            response.success, response.message = False, f"not finished: {why}"
            return response
        self._report(result)
        response.success = True
        response.message = f"episode {result.index}: {result.line()}"
        return response

    def _publish_status(self) -> None:
        values = {**self.judge.status(), "episodes": self.config.episodes}
        values["paused"] = bool(values["paused"]) or self._estopped
        stamp = self.get_clock().now().nanoseconds
        self.status_pub.publish(adapters.diagnostics_msg(stamp, "task_node/status", values))

    def _on_command(self, msg: JointTrajectory) -> None:
        stamp = adapters.stamp_ns(msg.header.stamp)
        self._report(self.tracker.on_command(stamp, list(msg.joint_names), time.monotonic()))

    def _on_joint_state(self, msg: JointState) -> None:
        stamp, names, positions, velocities = adapters.joint_state_fields(msg)
        try:
            pos, vel = validate_joint_state(
                names, positions, velocities, self.judge.mirror.io.joint_names
            )
        except CommandRejected as e:
            self.reject(e)
            return
        self._report(self.tracker.on_state(stamp, pos, vel, time.monotonic()))

    def _on_pose(self, msg: PoseStamped) -> None:
        self._report(self.tracker.on_pose(adapters.pose_from_msg(msg), time.monotonic()))

    def _report(self, result: EpisodeResult | None) -> None:
        if result is None:
            return
        self.get_logger().info(f"episode {result.index}: {result.line()}")
        values = result.report(self.judge.successes)
        self.publish_diagnostics(name="task_node/episode", values=values)
        if self.config.episodes and len(self.judge.results) >= self.config.episodes:
            self.publish_diagnostics(name="task_node/done", values=self.judge.summary())
            self.finished = True

    def diagnostics_values(self) -> dict[str, object]:
        return {
            "episodes_done": len(self.judge.results),
            "episodes_judged_unanswered": self.tracker.unanswered_episodes,
            "success_rate": self.judge.success_rate,
            "waiting": self.schedule.said,
        }

    def diagnostics_level(self) -> int:
        return health.WARN if self.schedule.said else health.OK


def main(args: list[str] | None = None) -> None:
    run_node(TaskNode, args)


if __name__ == "__main__":
    main()
