"""recorder_node: the robot's contract topics into a crash-safe MCAP bag (core: BagWriter).

Run: `python -m ros_ws.recorder_node --ros-args -r __ns:=/fetch -p output_path:=out/demo.mcap`

Subscribes with `raw=True` (the CDR bytes are written as received, never re-serialized)
and logs each message at its receipt time (`time.time_ns()`). QoS per topic kind
(hardware/recording/topics.py) is compatible with every contract publisher. Episode
markers come from task_node's `task_node/episode_start` and `task_node/episode`
statuses on `diagnostics` (hardware/recording/relay.py). Once it has met the graph (the
robot's `joint_states` received, a commander and a task node seen: GRAPH) it subscribes to
the statuses and prints that it is ready: only episodes that start after that are
recorded, and a task node that waits for its report readers waits for it. Topics the
session's task has (RecordedTopic.expected) but silent for `topic_timeout_s` are named
in the log and diagnostics. SIGINT/SIGTERM: what
is queued is written first (until quiet for 0.3 s, at most 3 s: the bringups stop the
publishers before the recorder), then the file is finished (summary, indexes, CRCs) (R16).

R16: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from hardware.recording.errors import EpisodeOrderError
from hardware.recording.relay import EpisodeRelay
from hardware.recording.resume import resume_bag
from hardware.recording.topics import RecordedTopic, recorded_topics
from hardware.recording.writer import BagWriter
from ros_ws import adapters, health
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.recorder_config import RecorderNodeConfig
from sim.errors import ConfigError

_RELIABLE, _BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
_VOLATILE, _LATCHED = DurabilityPolicy.VOLATILE, DurabilityPolicy.TRANSIENT_LOCAL
# (reliability, durability, depth) per QoS kind; no deadline or liveliness: never stricter
# than a publisher, so never incompatible.
QOS = {
    "control": (_RELIABLE, _VOLATILE, 1000),
    "latched": (_RELIABLE, _LATCHED, 10),
    "image": (_BEST_EFFORT, _VOLATILE, 10),
    "diagnostics": (_RELIABLE, _VOLATILE, 1000),
    "best_effort": (_BEST_EFFORT, _VOLATILE, 100),
}


# Ready when these are met: before, an episode's first states could go unrecorded.
GRAPH = (("robot (joint_states)", "joint_states"), ("commander (joint_command)", "joint_command"),
         ("task node (diagnostics)", "diagnostics"))  # fmt: skip
# Stopping: keep writing until the queues are quiet this long, but no longer than the budget.
DRAIN_QUIET_S = 0.3
DRAIN_BUDGET_S = 3.0


class RecorderNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("recorder_node", RecorderNodeConfig)
        cfg: RecorderNodeConfig = self.config
        if not cfg.output_path:
            raise ConfigError("recorder_node needs output_path (the .mcap file to write)")
        self.writer = self._open_writer(cfg)
        self.relay = EpisodeRelay(self.writer)
        self.relay.ready = False  # until the graph is met: no half episode
        self._recorded: dict[str, RecordedTopic] = {}
        self._last_message_s = time.monotonic()
        try:
            for topic in recorded_topics(cfg.cameras, cfg.extra_topics):
                self._record(topic)
        except BaseException:
            self.writer.close()  # run_node has no node to close yet: finish the file here
            raise
        self.steady_timer(cfg.flush_period_s / 4, lambda: self.writer.flush_if_due())
        self._ready_timer = self.steady_timer(0.1, self._check_ready)
        self._missing_reported = False
        self._missing_timer = self.steady_timer(cfg.topic_timeout_s, self._report_missing)

    def _open_writer(self, cfg: RecorderNodeConfig) -> BagWriter:
        session = {"namespace": self.get_namespace(), "node": self.get_fully_qualified_name()}
        path, config, robot, task = cfg.output_path, cfg.writer_config(), cfg.robot, cfg.task
        if cfg.resume and Path(path).exists():
            writer, report = resume_bag(path, config, robot=robot, task=task, session=session)
            self.get_logger().info(report.describe())
            return writer
        return BagWriter(path, config, robot=robot, task=task, session=session)

    def _record(self, topic: RecordedTopic) -> None:
        name = self.resolve_topic_name(topic.name)
        self.writer.add_topic(name, topic.type)
        package, _, type_name = topic.type.split("/")
        msg_class = getattr(importlib.import_module(f"{package}.msg"), type_name)
        reliability, durability, depth = QOS[topic.qos]
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                         durability=durability)  # fmt: skip
        write = lambda data: self._write(name, data)  # noqa: E731
        self.contract_subscription(msg_class, name, write, qos, raw=True)
        self._recorded[name] = topic

    def _write(self, topic: str, data: bytes) -> None:
        self.writer.write(topic, data, time.time_ns())
        self._last_message_s = time.monotonic()

    def drained(self, stop_requested_s: float) -> bool:
        """Asked to stop: first write what is still queued (the publishers stopped first),
        until nothing arrived for DRAIN_QUIET_S, within DRAIN_BUDGET_S (R16: 5 s in all)."""
        now = time.monotonic()
        quiet = now - max(self._last_message_s, stop_requested_s) >= DRAIN_QUIET_S
        return quiet or now - stop_requested_s >= DRAIN_BUDGET_S

    def _endpoints(self, name: str) -> tuple[int, int]:
        """(publishers, subscriptions) of topic `name` in nodes other than this one."""
        me = (self.get_namespace(), self.get_name())
        ends = self.get_publishers_info_by_topic(name), self.get_subscriptions_info_by_topic(name)
        pubs, subs = (sum((i.node_namespace, i.node_name) != me for i in e) for e in ends)
        return pubs, subs

    def _not_met(self) -> list[str]:
        """Who of the graph is not met yet: joint_states received (the robot's path to this
        node works), another node publishing joint_command and diagnostics."""
        written = self.writer.messages_written[self.resolve_topic_name("joint_states")]
        return [who for who, topic in GRAPH if not (written if topic == "joint_states" else
                self._endpoints(self.resolve_topic_name(topic))[0])]  # fmt: skip

    def _check_ready(self) -> bool:
        """Ready once it has met the robot, a commander and the task node (`_not_met`)."""
        if not self.relay.ready and not self._not_met():
            # Subscribed only now: a task node waiting for its report readers (the
            # bringups' recorder) starts no episode before this one is ready.
            self.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, 100)
            self.relay.ready = True
            self._ready_timer.cancel()
            print(f"recorder: ready: recording {len(self._recorded)} topics of "
                  f"{self.get_namespace()} into {self.writer.path}; episodes that start from "
                  "now on are recorded", flush=True)  # fmt: skip
        return self.relay.ready

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.time_ns()
        for name, _, values in adapters.diagnostics_values(msg):
            try:
                self.relay.on_status(name, values, now)
            except EpisodeOrderError as e:
                self.counters["episode_marker_errors"] += 1
                self.get_logger().error(f"episode marker not recorded: {e}")

    def _report_missing(self) -> None:
        """Once, `topic_timeout_s` after start: name the task's topics nothing arrived on."""
        self._missing_timer.cancel()
        self._missing_reported, timeout = True, self.config.topic_timeout_s
        if not self._check_ready():
            self.get_logger().warning(
                f"no {' or '.join(self._not_met())} in {self.get_namespace()} after {timeout} "
                "s: no episode is recorded until it runs; is it on this ROS domain?"
            )
        if missing := self.missing_topics():
            self.get_logger().warning(f"no message within {timeout} s on: {', '.join(missing)}")

    def missing_topics(self) -> list[str]:
        """The recorded topics this session's task has (RecordedTopic.expected, from who
        publishes and who reads them) that nothing arrived on."""
        written = self.writer.messages_written
        return [n for n, topic in self._recorded.items()
                if not written[n] and topic.expected(*self._endpoints(n))]  # fmt: skip

    def diagnostics_values(self) -> dict[str, object]:
        writer = self.writer
        values: dict[str, object] = {
            "output_path": str(writer.path),
            "bytes_written": writer.bytes_written,
            "last_flush_age_s": round(time.monotonic() - writer.last_flush_monotonic, 3),
            "episodes_closed": writer.next_episode,
            "missing_topics": ",".join(self.missing_topics()) if self._missing_reported else "",
        }
        values.update({f"messages_{t}": writer.messages_written[t] for t in self._recorded})
        return {**values, **self.relay.counters}

    def diagnostics_level(self) -> int:
        missing = self._missing_reported and self.missing_topics()
        return health.WARN if missing else health.OK

    def close(self) -> None:
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close()
            total = sum(writer.messages_written.values())
            print(f"recorder: {total} messages, {writer.next_episode} episodes -> {writer.path}")


def main(args: list[str] | None = None) -> None:
    run_node(RecorderNode, args, drain=True)


if __name__ == "__main__":
    main()
