"""task_node: episodes, goals and success, judged exactly as the env does (core: EpisodeJudge).

Run: `python -m ros_ws.task_node --ros-args -r __ns:=/fetch --params-file ros_ws/config/sim.yaml`

Each episode: call the robot's `reset` (the twin answers with the seed it used), publish
the episode's goal on `goal` (latched), watch `joint_states` + `object_pose` until the
episode's last control step, judge success, and report it on `diagnostics` as status
`task_node/episode` (its start, with task, seed and goal, as `task_node/episode_start`,
the markers a recorder keeps); after `episodes` episodes, report `task_node/done` and exit 0.
"""

from __future__ import annotations

import json
import time

from geometry_msgs.msg import PoseStamped
from rclpy.client import Client
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from hardware.commands import CommandRejected, validate_joint_state
from ros_ws import adapters
from ros_ws.node_configs import TaskNodeConfig
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import control_qos, latched_qos
from sim.episodes import EpisodeJudge, EpisodeResult
from sim.mirror import ObjectPose

COMMANDER_SETTLE_S = 0.5


class TaskNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("task_node", TaskNodeConfig)
        cfg: TaskNodeConfig = self.config
        self.judge = EpisodeJudge(cfg.task)
        qos = control_qos(1.0 / self.judge.mirror.dt)
        self.goal_pub = self.create_publisher(PoseStamped, "goal", latched_qos())
        self.contract_subscription(JointState, "joint_states", self._on_joint_state, qos)
        if self.judge.mirror.has_object:
            self.contract_subscription(PoseStamped, "object_pose", self._on_pose, qos)
        self.reset_client: Client = self.create_client(Trigger, "reset")
        self._states: dict[int, tuple] = {}
        self._poses: dict[int, ObjectPose] = {}
        self._pending_reset: Future | None = None
        self._started = time.monotonic()
        self._commander_seen: float | None = None
        self.steady_timer(0.05, self._next_episode)

    def _next_episode(self) -> None:
        """Start an episode when none runs and no reset is under way."""
        if self.finished or self.judge.running or self._pending_reset is not None:
            return
        if not self.reset_client.service_is_ready():
            if time.monotonic() - self._started > self.config.reset_timeout_s:
                self.fail(f"no 'reset' service after {self.config.reset_timeout_s} s")
            return
        if not self.judge.results and not self._commander_ready():
            return
        self._pending_reset = self.reset_client.call_async(Trigger.Request())
        self._pending_reset.add_done_callback(self._on_reset_done)

    def _commander_ready(self) -> bool:
        """Before the first episode: wait until a node publishes `joint_command` (policy or
        teleop), and COMMANDER_SETTLE_S more for it to discover the robot, so the episode's
        first state is answered rather than held (a recording would lose that episode).
        After reset_timeout_s the episode starts anyway (a commander outside the graph)."""
        now = time.monotonic()
        if self.count_publishers("joint_command") == 0:
            self._commander_seen = None
            return now - self._started > self.config.reset_timeout_s
        if self._commander_seen is None:
            self._commander_seen = now
        return now - self._commander_seen >= COMMANDER_SETTLE_S

    def _on_reset_done(self, future) -> None:
        self._pending_reset = None
        response = future.result()
        fields = _reset_fields(response)
        if fields is None:
            self.fail(f"the robot's reset failed or did not say its seed: {response}")
            return
        goal = self.judge.start(fields["seed"], first_stamp_s=fields.get("stamp_ns", 0) * 1e-9)
        self._states.clear()
        self._poses.clear()
        self.goal_pub.publish(adapters.goal_msg(goal, self.get_clock().now().nanoseconds))
        # The episode's start marker for recorders: which episode, task, seed and goal.
        start = {
            "episode": len(self.judge.results),
            "seed": fields["seed"],
            "task": self.config.task,
            "robot": self.judge.mirror.robot,
            "goal": json.dumps([round(float(v), 9) for v in goal]),
            "first_stamp_ns": fields.get("stamp_ns", 0),
        }
        self.publish_diagnostics(name="task_node/episode_start", values=start)

    def _on_joint_state(self, msg: JointState) -> None:
        stamp, names, positions, velocities = adapters.joint_state_fields(msg)
        try:
            pos, vel = validate_joint_state(
                names, positions, velocities, self.judge.mirror.io.joint_names
            )
        except CommandRejected as e:
            self.reject(e)
            return
        self._states[stamp] = (stamp * 1e-9, pos, vel)
        self._judge()

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = adapters.pose_from_msg(msg)
        self._poses[pose.stamp_ns] = pose
        self._judge()

    def _judge(self) -> None:
        """Feed every state whose joint state and object pose (if any) both arrived, in
        stamp order; what is older than the newest judged state can no longer pair."""
        paired = sorted(
            k for k in self._states if not self.judge.mirror.has_object or k in self._poses
        )
        for key in paired:
            stamp, pos, vel = self._states.pop(key)
            result = self.judge.observe(stamp, pos, vel, self._poses.pop(key, None))
            if result is not None:
                self._report(result)
        if paired:
            newest = paired[-1]
            self._states = {k: v for k, v in self._states.items() if k > newest}
            self._poses = {k: v for k, v in self._poses.items() if k > newest}

    def _report(self, result: EpisodeResult) -> None:
        self.get_logger().info(
            f"episode {result.index}: {'success' if result.success else 'failure'} "
            f"(seed {result.seed}, distance {result.final_distance:.3f})"
        )
        values = {
            "episode": result.index,
            "seed": result.seed,
            "success": result.success,
            "final_distance": round(result.final_distance, 5),
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
            "success_rate": self.judge.success_rate,
        }


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
