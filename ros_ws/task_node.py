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
`task_node/episode_interrupted` and does not count. A reset the robot refuses (e-stop
latched, an episode another caller started still running) is retried every RETRY_S; the
node says why in its diagnostics (WARN).
"""

from __future__ import annotations

import json
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
from sim.episodes import EpisodeJudge, EpisodeResult, EpisodeTracker

COMMANDER_SETTLE_S = 2.0  # for the rest of the graph (robot, recorders) to discover it
RETRY_S = 0.1  # a refused reset is asked again this often
WAIT_LOG_S = 1.0


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
        self._started = time.monotonic()
        self._commander_seen: float | None = None
        self._readers_waived = False
        self._estopped = False
        self._waiting = ""  # why no episode runs now (a refused reset), for diagnostics
        self._waiting_since, self._wait_logged = 0.0, False
        self._retry_after = 0.0
        self.interrupted = 0
        self.steady_timer(0.05, self._next_episode)

    def _next_episode(self) -> None:
        """Start an episode when none runs and no reset is under way."""
        if self.finished or self.judge.running or self._pending_reset is not None:
            return
        if self._estopped:
            self._wait("the e-stop is latched; release it with the robot's 'enable' service")
            return
        if time.monotonic() < self._retry_after:
            return
        if not self.reset_client.service_is_ready():
            if time.monotonic() - self._started > self.config.reset_timeout_s:
                self.fail(f"no 'reset' service after {self.config.reset_timeout_s} s")
            return
        if not self.judge.results:
            commander, readers = self._commander_ready(), self._readers_ready()
            if not (commander and readers):
                return
        self._pending_reset = self.reset_client.call_async(Trigger.Request())
        self._pending_reset.add_done_callback(self._on_reset_done)

    def _commander_ready(self) -> bool:
        """Before the first episode: wait until a commander (a node that publishes
        `joint_command` and reads `goal`: policy or teleop, not any tool that joined) is
        up, and COMMANDER_SETTLE_S more for it to discover the robot. After
        reset_timeout_s the episode starts anyway (a commander outside the graph); either
        way it is judged from its first answered state."""
        now = time.monotonic()
        if not self._commanders():
            self._commander_seen = None
            return now - self._started > self.config.reset_timeout_s
        if self._commander_seen is None:
            self._commander_seen = now
        return now - self._commander_seen >= COMMANDER_SETTLE_S

    def _readers_ready(self) -> bool:
        """Before the first episode: wait until `report_readers` readers of `diagnostics`
        (the bringup's observer) are matched, so no episode report goes unseen; after
        reset_timeout_s start anyway, and say so."""
        wanted = self.config.report_readers
        if not wanted or self._readers_waived:
            return True
        if self._diagnostics.get_subscription_count() >= wanted:
            return True
        if time.monotonic() - self._started > self.config.reset_timeout_s:
            self._readers_waived = True
            self.get_logger().warning(
                f"only {self._diagnostics.get_subscription_count()} of {wanted} report "
                f"readers after {self.config.reset_timeout_s} s; starting anyway"
            )
            return True
        return False

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
            self._retry_after = time.monotonic() + RETRY_S
            self._wait(response.message)
            return
        fields = _reset_fields(response)
        if fields is None:
            self.fail(f"the robot's reset did not say its seed: {response}")
            return
        self._waiting = ""
        stamp_ns = fields.get("stamp_ns", 0)
        goal = self.tracker.start(fields["seed"], stamp_ns, time.monotonic())
        self.goal_pub.publish(adapters.goal_msg(goal, self.get_clock().now().nanoseconds))
        # The episode's start marker for recorders: which episode, task, seed and goal.
        start = {
            "episode": len(self.judge.results),
            "seed": fields["seed"],
            "task": self.config.task,
            "robot": self.judge.mirror.robot,
            "goal": json.dumps([round(float(v), 9) for v in goal]),
            "first_stamp_ns": stamp_ns,
        }
        self.publish_diagnostics(name="task_node/episode_start", values=start)

    def _wait(self, why: str) -> None:
        """No episode can start now: once the wait lasts WAIT_LOG_S, say why in the log
        and in diagnostics (WARN) (a reset refused just before the robot's episode ends is
        normal: it is asked again RETRY_S later)."""
        now = time.monotonic()
        if not self._waiting:
            self._waiting_since, self._wait_logged = now, False
        self._waiting = why
        if not self._wait_logged and now - self._waiting_since >= WAIT_LOG_S:
            self._wait_logged = True
            self.get_logger().warning(f"waiting: {why}")

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
        values = {
            "episode": result.index,
            "seed": result.seed,
            "success": result.success,
            "final_distance": round(result.final_distance, 5),
            "answered_states": result.answered_states,
            "first_judged_stamp_ns": result.first_stamp_ns,
            "successes": self._successes(),  # all so far: a late reader misses nothing
        }
        self.publish_diagnostics(name="task_node/episode", values=values)
        if self.config.episodes and len(self.judge.results) >= self.config.episodes:
            summary = {
                "episodes": len(self.judge.results),
                "success_rate": self.judge.success_rate,
                "successes": self._successes(),
            }
            self.publish_diagnostics(name="task_node/done", values=summary)
            self.finished = True

    def _successes(self) -> str:
        return "".join("1" if r.success else "0" for r in self.judge.results)

    def diagnostics_values(self) -> dict[str, object]:
        return {
            "episodes_done": len(self.judge.results),
            "episodes_interrupted": self.interrupted,
            "episodes_judged_unanswered": self.tracker.unanswered_episodes,
            "success_rate": self.judge.success_rate,
            "waiting": self._waiting if self._wait_logged else "",  # a wait that lasts
        }

    def diagnostics_level(self) -> int:
        return health.WARN if self._waiting and self._wait_logged else health.OK


def _reset_fields(response) -> dict[str, int] | None:
    """`seed=<n> [stamp_ns=<t>]` from a reset answer, or None."""
    if response is None or not response.success:
        return None
    try:
        fields = dict(item.split("=", 1) for item in response.message.split())
        return {key: int(value) for key, value in fields.items()}
    except ValueError:
        return None


def main(args: list[str] | None = None) -> None:
    run_node(TaskNode, args)


if __name__ == "__main__":
    main()
