"""`RecorderNodeConfig`: recorder_node's parameters (one documented dataclass, as the other
nodes' in ros_ws/node_configs.py, which may absorb it; no rclpy here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.recording.errors import RecordingError
from hardware.recording.topics import recorded_topics
from hardware.recording.writer import BagWriterConfig
from sim.robots import ROBOT_FOLDERS
from sim.tasks import TASKS


@dataclass(frozen=True)
class RecorderNodeConfig:
    """recorder_node: the robot's contract topics into a crash-safe MCAP bag."""

    output_path: str = ""  # the .mcap file (required); an existing file only with `resume`
    robot: str = "fetch"  # stored in the bag; readers check it (BagReader.check_identity)
    task: str = ""  # "" if unknown; stored and checked like robot
    cameras: str = ""  # twin_node's `cameras`: records camera_<i>/image_raw + camera_info
    extra_topics: str = ""  # "name:pkg/msg/Type[:qos kind],..." relative to the namespace
    resume: bool = False  # continue an existing file after its last complete episode
    flush_period_s: float = 0.5  # a SIGKILL loses at most about this much
    chunk_size_bytes: int = 1048576
    compression: str = "zstd"  # zstd | lz4 | none
    fsync: bool = True
    topic_timeout_s: float = 10.0  # topics silent this long after start are reported missing
    diagnostics_rate_hz: float = 2.0

    def __post_init__(self) -> None:
        if self.output_path and not self.output_path.endswith(".mcap"):
            raise ValueError(f"output_path must end in .mcap, got {self.output_path!r}")
        if self.robot not in ROBOT_FOLDERS:
            raise ValueError(f"robot {self.robot!r} is not one of {ROBOT_FOLDERS}")
        if self.task and self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not registered; valid: {sorted(TASKS)}")
        for name in ("topic_timeout_s", "diagnostics_rate_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.writer_config()  # flush_period_s, chunk_size_bytes, compression
        try:
            recorded_topics(self.cameras, self.extra_topics)  # extra_topics' syntax
        except RecordingError as e:
            raise ValueError(f"extra_topics: {e}") from e

    def writer_config(self) -> BagWriterConfig:
        return BagWriterConfig(
            self.flush_period_s, self.chunk_size_bytes, self.compression, self.fsync
        )
