"""Which topics a recorder records, with their message types and QoS kinds (no ROS here).

The default list is the topic contract of one robot namespace plus what teleoperation
adds; each topic's QoS kind says how the recorder must subscribe so that it is never
incompatible with the contract's publisher (ros_ws/qos.py) and loses nothing it could
keep: control streams reliable, `goal`/`estop_state` reliable + transient local (the
current value even if published before the recorder started), images best effort
(their publishers are), all with a deeper queue than the publisher and no deadline.

Each topic also says when the running graph should carry it (`expect`), so that a recorder
warns about a silent topic only when the task has it: the contract every task has
("always"), a stream only some sessions publish - the operator's `teleop/action`, cameras,
extra topics - when a node publishes it ("published"), `object_pose` when another node
reads it (task_node and the controllers do in tasks with an object: "consumed").
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.recording.errors import RecordingError
from hardware.recording.schemas import full_type_name

QOS_KINDS = ("control", "latched", "image", "diagnostics", "best_effort")
EXPECT_KINDS = ("always", "published", "consumed")


@dataclass(frozen=True)
class RecordedTopic:
    name: str  # relative to the robot namespace, e.g. "joint_states"
    type: str  # "sensor_msgs/msg/JointState"
    qos: str  # one of QOS_KINDS
    expect: str = "always"  # one of EXPECT_KINDS: when the graph should carry it

    def __post_init__(self) -> None:
        if self.qos not in QOS_KINDS:
            raise RecordingError(f"topic {self.name}: QoS kind {self.qos!r} not in {QOS_KINDS}")
        if self.expect not in EXPECT_KINDS:
            raise RecordingError(f"topic {self.name}: {self.expect!r} not in {EXPECT_KINDS}")

    def expected(self, publishers: int, readers: int) -> bool:
        """Whether the running graph should carry this topic, given the other nodes that
        publish it and read it: a silent expected topic deserves a warning."""
        return {"always": True, "published": publishers > 0, "consumed": readers > 0}[self.expect]


CONTRACT_TOPICS = (
    RecordedTopic("joint_states", "sensor_msgs/msg/JointState", "control"),
    RecordedTopic("joint_command", "trajectory_msgs/msg/JointTrajectory", "control"),
    RecordedTopic("joint_command_applied", "trajectory_msgs/msg/JointTrajectory", "control"),
    RecordedTopic("teleop/action", "sensor_msgs/msg/JointState", "control", "published"),
    RecordedTopic("object_pose", "geometry_msgs/msg/PoseStamped", "control", "consumed"),
    RecordedTopic("goal", "geometry_msgs/msg/PoseStamped", "latched"),
    RecordedTopic("diagnostics", "diagnostic_msgs/msg/DiagnosticArray", "diagnostics"),
    RecordedTopic("estop_state", "std_msgs/msg/Bool", "latched"),
)


def camera_topics(count: int) -> list[RecordedTopic]:
    """`camera_<i>/image_raw` + `camera_info` for i < count (twin_node's numbering)."""
    topics = []
    for i in range(count):
        image, info = f"camera_{i}/image_raw", f"camera_{i}/camera_info"
        topics.append(RecordedTopic(image, "sensor_msgs/msg/Image", "image", "published"))
        topics.append(RecordedTopic(info, "sensor_msgs/msg/CameraInfo", "image", "published"))
    return topics


def parse_topics(text: str) -> list[RecordedTopic]:
    """ "name:pkg/msg/Type[:qos],..." (qos default best_effort: compatible with any
    publisher) as RecordedTopics."""
    topics = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise RecordingError(f"topic {item!r}: expected name:pkg/msg/Type[:qos kind]")
        qos = parts[2] if len(parts) == 3 else "best_effort"
        name, type_name = parts[0].strip("/"), full_type_name(parts[1])
        topics.append(RecordedTopic(name, type_name, qos, "published"))
    return topics


def recorded_topics(cameras: str = "", extra: str = "") -> list[RecordedTopic]:
    """The contract topics, the cameras named in `cameras` (comma-separated, as twin_node's
    `cameras`) and `extra`, each once."""
    count = len([name for name in cameras.split(",") if name.strip()])
    topics: dict[str, RecordedTopic] = {}
    for topic in [*CONTRACT_TOPICS, *camera_topics(count), *parse_topics(extra)]:
        topics.setdefault(topic.name, topic)
    return list(topics.values())
