"""`BagWriter`: a crash-safe rosbag2-profile MCAP writer for already-serialized messages.

Run: `twinbridge record --robot fetch --out demo.mcap` (the recorder node is its user).

Crash safety: a chunk is finished (compressed, CRC'd, written with its message indexes,
and fsynced if configured) when it reaches `chunk_size_bytes` OR `flush_period_s` after
its first message, so a SIGKILL (or power loss, with fsync) loses at most one flush period;
`twinbridge bag recover` turns the unfinished file into a valid one. An episode's end
marker is itself a flush, so an episode that ended before a kill is always intact.

Built on `mcap.writer.Writer` (mcap==1.6.0) through its public API only: its own
size-based chunking is disabled (chunk size 2**62) and every chunk is finished by the
public `Writer.flush()`, which this class calls on size or time. No private members.

API (stable; used by the recorder node, `twinbridge bag`, export and replay):

    writer = BagWriter(path, BagWriterConfig(), robot="fetch", task="fetch-pick-and-place")
    writer.add_topic("/fetch/joint_states", "sensor_msgs/msg/JointState")
    writer.write("/fetch/joint_states", cdr_bytes, log_time_ns)  # raw=True rclpy bytes
    writer.start_episode(0, log_time_ns, seed=17)
    writer.end_episode(0, log_time_ns, success=True, final_distance=0.01)
    writer.flush_if_due()  # call from a timer when messages may stop arriving
    writer.close()         # summary, statistics, indexes, CRCs

Not thread-safe: call it from one thread (the node's executor).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from mcap.writer import LIBRARY_IDENTIFIER, CompressionType, Writer

from hardware.recording.episodes import (
    EPISODES_TOPIC,
    MARKER_TYPE,
    EpisodeTracker,
    marker_cdr,
)
from hardware.recording.errors import BagFileError, RecordingError, UnknownTopicError
from hardware.recording.schemas import (
    MESSAGE_ENCODING,
    PROFILE,
    SCHEMA_ENCODING,
    full_type_name,
    ros2msg_definition,
)
from sim.files import fsync_directory

SESSION_METADATA = "twinbridge_session"
COMPRESSIONS = {
    "zstd": CompressionType.ZSTD,
    "lz4": CompressionType.LZ4,
    "none": CompressionType.NONE,
}
MESSAGE_RECORD_OVERHEAD = 9 + 22  # opcode + length + channel/sequence/log/publish time
_NEVER = 2**62  # mcap's own chunk size: chunks are finished only by `flush()`


def recorder_version() -> str:
    try:
        return f"twinbridge-recorder/{version('twinbridge')}"
    except PackageNotFoundError:
        return "twinbridge-recorder/0+unknown"


@dataclass(frozen=True)
class BagWriterConfig:
    """How the writer trades loss on a crash against compression and disk traffic."""

    flush_period_s: float = 0.5  # a chunk is finished at most this long after its 1st message
    chunk_size_bytes: int = 1024 * 1024  # ... or once it holds this many bytes
    compression: str = "zstd"  # zstd | lz4 | none (per chunk)
    fsync: bool = True  # fsync after each chunk: also survives power loss, not only kills

    def __post_init__(self) -> None:
        if not 0.0 < self.flush_period_s <= 60.0:
            raise ValueError(f"flush_period_s must be in (0, 60], got {self.flush_period_s!r}")
        if not 1024 <= self.chunk_size_bytes <= 256 * 1024 * 1024:
            raise ValueError(
                f"chunk_size_bytes must be in [1 KiB, 256 MiB], got {self.chunk_size_bytes!r}"
            )
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"compression must be one of {sorted(COMPRESSIONS)}, got {self.compression!r}"
            )


class BagWriter:
    """Writes one MCAP file (profile ros2) of CDR messages and episode markers."""

    def __init__(
        self,
        path: Path | str,
        config: BagWriterConfig | None = None,
        *,
        robot: str,
        task: str = "",
        session: dict[str, str] | None = None,
        next_episode: int = 0,
        metadata: Sequence[tuple[str, dict[str, str]]] = (),
    ):
        """Create `path` (never overwrites). `session` adds fields to the session metadata
        record; `metadata` records (name, fields) go before it and `next_episode` sets the
        next index: both for a resumed recording (hardware/recording/resume.py)."""
        self.path = Path(path)
        self.config = config or BagWriterConfig()
        self.robot, self.task = robot, task
        self.episodes = EpisodeTracker(next_episode)
        self.messages_written: Counter[str] = Counter()
        self.bytes_written = 0  # message payload bytes handed to the file
        self.last_flush_monotonic = time.monotonic()
        self.closed = False
        self._file = _create(self.path)
        self._writer = Writer(
            self._file,
            chunk_size=_NEVER,
            compression=COMPRESSIONS[self.config.compression],
            enable_data_crcs=True,
        )
        self._channels: dict[str, int] = {}
        self._schemas: dict[str, int] = {}
        self._chunk_bytes = 0
        self._chunk_started: float | None = None
        self._writer.start(profile=PROFILE, library=f"{recorder_version()} {LIBRARY_IDENTIFIER}")
        for name, fields in metadata:
            self._writer.add_metadata(name, dict(fields))
        self._writer.add_metadata(SESSION_METADATA, self._session_record(session or {}))
        self.add_topic(EPISODES_TOPIC, MARKER_TYPE)
        self.flush()

    # -- topics and messages ---------------------------------------------------------
    def add_topic(
        self,
        topic: str,
        type_name: str,
        offered_qos_profiles: str = "",
        definition: str | None = None,
    ) -> None:
        """Register `topic` with its message type; the schema is built from the installed
        .msg files unless `definition` (ros2msg text, e.g. from an existing bag) is given."""
        if topic in self._channels:
            return
        type_name = full_type_name(type_name)
        schema_id = self._schemas.get(type_name)
        if schema_id is None:
            text = ros2msg_definition(type_name) if definition is None else definition
            schema_id = self._writer.register_schema(type_name, SCHEMA_ENCODING, text.encode())
            self._schemas[type_name] = schema_id
        metadata = {"offered_qos_profiles": offered_qos_profiles} if offered_qos_profiles else {}
        self._channels[topic] = self._writer.register_channel(
            topic, MESSAGE_ENCODING, schema_id, metadata
        )

    @property
    def topics(self) -> list[str]:
        return list(self._channels)

    def write(
        self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None
    ) -> None:
        """Append one serialized message (CDR with its 4-byte encapsulation header)."""
        if topic == EPISODES_TOPIC:
            raise RecordingError(f"{EPISODES_TOPIC} is written by start_episode/end_episode")
        self._append(topic, data, log_time_ns, publish_time_ns)

    def _append(
        self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None
    ) -> None:
        if self.closed:
            raise RecordingError(f"{self.path}: the writer is closed")
        channel = self._channels.get(topic)
        if channel is None:
            raise UnknownTopicError(
                f"{self.path}: topic {topic!r} is not registered (add_topic first); "
                f"registered: {sorted(self._channels)}"
            )
        publish = log_time_ns if publish_time_ns is None else publish_time_ns
        self._writer.add_message(channel, int(log_time_ns), bytes(data), int(publish))
        self.messages_written[topic] += 1
        self.bytes_written += len(data)
        self._chunk_bytes += len(data) + MESSAGE_RECORD_OVERHEAD
        now = time.monotonic()
        if self._chunk_started is None:
            self._chunk_started = now
        if self._chunk_bytes >= self.config.chunk_size_bytes:
            self.flush()
        else:
            self.flush_if_due(now)

    # -- episodes --------------------------------------------------------------------
    @property
    def next_episode(self) -> int:
        return self.episodes.next_index

    @property
    def open_episode(self) -> int | None:
        return self.episodes.open_index

    def start_episode(self, index: int, log_time_ns: int, **fields: Any) -> None:
        """Mark the start of episode `index` (the next one); fields go into the marker."""
        self.episodes.start(index)
        try:
            self._append(EPISODES_TOPIC, marker_cdr("start", index, fields), log_time_ns)
        except RecordingError:
            self.episodes.open_index = None
            raise

    def end_episode(self, index: int, log_time_ns: int, success: bool, **fields: Any) -> None:
        """Mark the end of the open episode and flush: an ended episode survives a kill."""
        if self.episodes.open_index != index:
            self.episodes.end(index)  # raises the typed error
        marker = marker_cdr("end", index, {"success": bool(success), **fields})
        self._append(EPISODES_TOPIC, marker, log_time_ns)
        self.episodes.end(index)
        self.flush()

    # -- durability ------------------------------------------------------------------
    def flush_if_due(self, now: float | None = None) -> bool:
        """Finish the open chunk if its first message is `flush_period_s` old."""
        if self._chunk_started is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._chunk_started < self.config.flush_period_s:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        """Finish the open chunk, write it out and (if configured) fsync."""
        if self.closed:
            return
        self._writer.flush()
        if self.config.fsync:
            os.fsync(self._file.fileno())
        self._chunk_bytes, self._chunk_started = 0, None
        self.last_flush_monotonic = time.monotonic()

    def move_to(self, path: Path | str) -> None:
        """Atomically rename the file being written to `path` (replacing it), durably."""
        self.flush()
        path = Path(path)
        os.replace(self.path, path)
        fsync_directory(path.parent)
        self.path = path

    def close(self) -> None:
        """Finish the file (summary, statistics, indexes, CRCs); idempotent. An episode
        still open stays without an end marker: readers report it as incomplete."""
        if self.closed:
            return
        try:
            self._writer.finish()
            self._file.flush()
            if self.config.fsync:
                os.fsync(self._file.fileno())
        finally:
            self.closed = True
            self._file.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session_record(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "robot": self.robot,
            "task": self.task,
            "recorder": recorder_version(),
            "started_ns": str(time.time_ns()),
            "writer_config": json.dumps(asdict(self.config)),
            **{str(k): str(v) for k, v in extra.items()},
        }


def _create(path: Path) -> IO[bytes]:
    """A new file; an existing bag is never overwritten (resume it or choose another path)."""
    try:
        return open(path, "xb")  # closed by BagWriter.close
    except FileExistsError as e:
        raise BagFileError(
            path, "already exists: resume it (--resume) or choose another path", False
        ) from e
    except OSError as e:
        raise BagFileError(path, f"cannot create: {e.strerror}", False) from e
