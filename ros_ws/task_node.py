"""task_node: episodes, goals and success, judged exactly as the env does (core: EpisodeJudge).

Run: `python -m ros_ws.task_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml`

Each episode: call the robot's `reset` (the twin answers with the seed it used), publish
the episode's goal on `goal` (latched), watch `joint_states` + `object_pose` until the
episode's last control step, judge success, and report it on `diagnostics` as status
`task_node/episode` (its start, with task, seed and goal, as `task_node/episode_start`,
the markers a recorder keeps); after `episodes` episodes, report `task_node/done` and exit 0.

An episode is judged from its first state that a commander answered (a `joint_command`
stamped with it; sim.episodes.EpisodeTracker), so a policy that joins late costs nothing.
An episode during which the e-stop latches is not judged: it is reported as
`task_node/episode_interrupted` and does not count. When the first episode starts, and
why none can (a refused reset is retried; the node says why in its diagnostics, WARN):
sim.episode_schedule.EpisodeSchedule.
"""

from __future__ import annotations

import time

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


class TaskNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("task_node", TaskNodeConfig)
        cfg: TaskNodeConfig = self.config
        self.judge = EpisodeJudge(cfg.task)
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
        self._pending_reset: Future | None = None
        self.schedule = EpisodeSchedule(cfg.reset_timeout_s, cfg.report_readers, time.monotonic())
        self._estopped = False
        self.interrupted = 0
        self.steady_timer(0.05, self._next_episode)

    def _next_episode(self) -> None:
        """Start an episode when none runs and no reset is under way."""
        if self.finished or self.judge.running or self._pending_reset is not None:
            return
        now = time.monotonic()
        if self._estopped:
            self._say(self.schedule.wait(now, ESTOP_WAIT))
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
        self._estopped = bool(msg.data)
        if self._estopped and self.judge.running:
            self._interrupt("the e-stop latched")

    def _interrupt(self, why: str) -> None:
        """An episode the robot could not finish is not the policy's failure: not judged."""
        seed = self.tracker.abort()
        self.interrupted += 1
        self.get_logger().warning(f"episode {len(self.judge.results)} (seed {seed}): {why}")
        values = {"episode": len(self.judge.results), "seed": seed, "reason": why}
        self.publish_diagnostics(name="task_node/episode_interrupted", values=values)

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
        self.get_logger().info(
            f"episode {result.index}: {'success' if result.success else 'failure'} "
            f"(seed {result.seed}, distance {result.final_distance:.3f})"
        )
        values = result.report(self.judge.successes)
        self.publish_diagnostics(name="task_node/episode", values=values)
        if self.config.episodes and len(self.judge.results) >= self.config.episodes:
            self.publish_diagnostics(name="task_node/done", values=self.judge.summary())
            self.finished = True

    def diagnostics_values(self) -> dict[str, object]:
        return {
            "episodes_done": len(self.judge.results),
            "episodes_interrupted": self.interrupted,
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
