"""Which topics a recorder records, with their message types and QoS kinds (no ROS here).

The default list is the topic contract of one robot namespace plus what teleoperation
adds; each topic's QoS kind says how the recorder must subscribe so that it is never
incompatible with the contract's publisher (ros_ws/qos.py) and loses nothing it could
keep: control streams reliable, `goal`/`estop_state` reliable + transient local (the
current value even if published before the recorder started), images best effort
(their publishers are), all with a deeper queue than the publisher and no deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.recording.errors import RecordingError
from hardware.recording.schemas import full_type_name

QOS_KINDS = ("control", "latched", "image", "diagnostics", "best_effort")


@dataclass(frozen=True)
class RecordedTopic:
    name: str  # relative to the robot namespace, e.g. "joint_states"
    type: str  # "sensor_msgs/msg/JointState"
    qos: str  # one of QOS_KINDS

    def __post_init__(self) -> None:
        if self.qos not in QOS_KINDS:
            raise RecordingError(f"topic {self.name}: QoS kind {self.qos!r} not in {QOS_KINDS}")


CONTRACT_TOPICS = (
    RecordedTopic("joint_states", "sensor_msgs/msg/JointState", "control"),
    RecordedTopic("joint_command", "trajectory_msgs/msg/JointTrajectory", "control"),
    RecordedTopic("joint_command_applied", "trajectory_msgs/msg/JointTrajectory", "control"),
    RecordedTopic("teleop/action", "sensor_msgs/msg/JointState", "control"),
    RecordedTopic("object_pose", "geometry_msgs/msg/PoseStamped", "control"),
    RecordedTopic("goal", "geometry_msgs/msg/PoseStamped", "latched"),
    RecordedTopic("diagnostics", "diagnostic_msgs/msg/DiagnosticArray", "diagnostics"),
    RecordedTopic("estop_state", "std_msgs/msg/Bool", "latched"),
)


def camera_topics(count: int) -> list[RecordedTopic]:
    """`camera_<i>/image_raw` + `camera_info` for i < count (twin_node's numbering)."""
    topics = []
    for i in range(count):
        topics.append(RecordedTopic(f"camera_{i}/image_raw", "sensor_msgs/msg/Image", "image"))
        topics.append(
            RecordedTopic(f"camera_{i}/camera_info", "sensor_msgs/msg/CameraInfo", "image")
        )
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
        topics.append(RecordedTopic(parts[0].strip("/"), full_type_name(parts[1]), qos))
    return topics


def recorded_topics(cameras: str = "", extra: str = "") -> list[RecordedTopic]:
    """The contract topics, the cameras named in `cameras` (comma-separated, as twin_node's
    `cameras`) and `extra`, each once."""
    count = len([name for name in cameras.split(",") if name.strip()])
    topics: dict[str, RecordedTopic] = {}
    for topic in [*CONTRACT_TOPICS, *camera_topics(count), *parse_topics(extra)]:
        topics.setdefault(topic.name, topic)
    return list(topics.values())
