"""`BagReader`: a finished Twinbridge MCAP bag, its topics, messages, episodes and identity.

Run: `twinbridge bag info FILE.mcap` (prints what this reads).

API (stable; used by `twinbridge bag`, export and replay):

    reader = BagReader("demo.mcap")          # BagFileError if not an MCAP / unfinished
    reader.topics()                          # {topic: TopicInfo(type, count)}
    reader.require_topics(["/fetch/joint_states"])  # MissingTopicError naming the file
    reader.check_identity(robot="fetch", task="fetch-pick-and-place")  # BagIdentityError
    for topic, log_time_ns, msg in reader.messages(["/fetch/joint_states"]): ...
    reader.episodes()                        # [EpisodeSpan], incomplete ones flagged
    reader.verify()                          # full read: every chunk, data and summary CRC

Messages are decoded by `mcap_ros2`'s decoder from the schemas in the file (objects with
the message's fields as attributes), so no ROS install is needed to read a bag.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.reader import McapReader, make_reader
from mcap.records import Message
from mcap.summary import Summary
from mcap_ros2.decoder import DecoderFactory

from hardware.recording.episodes import EPISODES_TOPIC, EpisodeSpan, episode_spans, parse_marker
from hardware.recording.errors import BagFileError, BagIdentityError, MissingTopicError
from hardware.recording.scan import MAGIC, NotMcapError, RecordScanner
from hardware.recording.writer import SESSION_METADATA


@dataclass(frozen=True)
class TopicInfo:
    type: str  # "sensor_msgs/msg/JointState"
    count: int  # messages in the bag


@dataclass(frozen=True)
class RawMessage:
    """One message as stored: CDR bytes and its times (ns)."""

    topic: str
    type: str
    log_time_ns: int
    publish_time_ns: int
    data: bytes


class BagReader:
    """Read access to one finished bag; opening checks it is an MCAP with a summary."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._summary = _summary(self.path)

    # -- contents --------------------------------------------------------------------
    def topics(self) -> dict[str, TopicInfo]:
        """Every recorded topic with its type and message count."""
        summary = self._summary
        counts = summary.statistics.channel_message_counts if summary.statistics else {}
        return {
            channel.topic: TopicInfo(
                summary.schemas[channel.schema_id].name, counts.get(channel.id, 0)
            )
            for channel in summary.channels.values()
        }

    @property
    def message_count(self) -> int:
        stats = self._summary.statistics
        return stats.message_count if stats else 0

    @property
    def time_range_ns(self) -> tuple[int, int]:
        """(first, last) message log time."""
        stats = self._summary.statistics
        return (stats.message_start_time, stats.message_end_time) if stats else (0, 0)

    def sessions(self) -> list[dict[str, str]]:
        """The recorder's session records (one per recording run; more after a resume)."""
        with open(self.path, "rb") as f:
            return [
                dict(m.metadata) for m in _reader(f).iter_metadata() if m.name == SESSION_METADATA
            ]

    def session(self) -> dict[str, str]:
        """The first session record (robot, task, recorder, writer_config, ...)."""
        sessions = self.sessions()
        return sessions[0] if sessions else {}

    def messages(
        self, topics: Iterable[str] | None = None, log_time_order: bool = True
    ) -> Iterator[tuple[str, int, Any]]:
        """(topic, log time ns, decoded message) for `topics` (default: all)."""
        with open(self.path, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            wanted = list(topics) if topics is not None else None
            for _, channel, message, decoded in reader.iter_decoded_messages(
                topics=wanted, log_time_order=log_time_order
            ):
                yield channel.topic, message.log_time, decoded

    def raw_messages(
        self, topics: Iterable[str] | None = None, log_time_order: bool = True
    ) -> Iterator[RawMessage]:
        """Messages as stored, without decoding."""
        with open(self.path, "rb") as f:
            wanted = list(topics) if topics is not None else None
            for schema, channel, message in _reader(f).iter_messages(
                topics=wanted, log_time_order=log_time_order
            ):
                yield RawMessage(
                    channel.topic,
                    schema.name if schema else "",
                    message.log_time,
                    message.publish_time,
                    message.data,
                )

    def episodes(self) -> list[EpisodeSpan]:
        """The bag's episodes from its markers (file order); `complete` is False for an
        episode whose end marker is missing."""
        markers = []
        for _, log_time, msg in self.messages([EPISODES_TOPIC], log_time_order=False):
            fields = parse_marker(msg.data)
            if fields is not None:
                markers.append((log_time, fields))
        return episode_spans(markers)

    # -- checks ----------------------------------------------------------------------
    def require_topics(self, topics: Iterable[str]) -> None:
        """MissingTopicError naming the file and each wanted topic it has no message on."""
        have = {t for t, info in self.topics().items() if info.count > 0}
        missing = [t for t in topics if t not in have]
        if missing:
            raise MissingTopicError(
                f"{self.path}: no messages on {', '.join(missing)}; it has: "
                f"{', '.join(sorted(have)) or 'no messages at all'}"
            )

    def check_identity(self, robot: str | None = None, task: str | None = None) -> None:
        """BagIdentityError if the bag was recorded on another robot or for another task."""
        sessions = self.sessions()
        if not sessions:
            raise BagIdentityError(
                f"{self.path}: no {SESSION_METADATA} metadata: not recorded by Twinbridge, "
                "so its robot and task are unknown"
            )
        for key, wanted in (("robot", robot), ("task", task)):
            found = {s.get(key, "") for s in sessions}
            if wanted is not None and found != {wanted}:
                raise BagIdentityError(
                    f"{self.path} was recorded with {key} {' + '.join(sorted(found))!r}, "
                    f"not {wanted!r}: use a bag of {key} {wanted!r}"
                )

    def verify(self) -> int:
        """Read every record, checking chunk, data-section and summary CRCs; the number of
        messages. BagFileError naming the damage otherwise."""
        scanner = RecordScanner(self.path)
        count = sum(1 for item in scanner.items() if isinstance(item, Message))
        if not scanner.finished or scanner.damage is not None:
            reason = scanner.damage.reason if scanner.damage else "unfinished"
            offset = scanner.damage.offset if scanner.damage else scanner.file_size
            raise BagFileError(self.path, f"damaged at byte {offset}: {reason}")
        return count


def _reader(f: Any) -> McapReader:
    return make_reader(f)


def _summary(path: Path) -> Summary:
    """The summary section, or BagFileError saying what is wrong with the file."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise NotMcapError("no MCAP magic at the start")
            f.seek(0)
            summary = make_reader(f).get_summary()
    except FileNotFoundError as e:
        raise BagFileError(path, "no such file", recoverable=False) from e
    except NotMcapError as e:
        raise BagFileError(path, f"not an MCAP file ({e})", recoverable=False) from e
    except (McapError, ValueError, EOFError, OSError) as e:
        raise BagFileError(path, "truncated or unfinished (no valid MCAP footer)") from e
    if summary is None:
        raise BagFileError(path, "unfinished: it has no summary section")
    return summary


__all__ = ["BagReader", "EpisodeSpan", "RawMessage", "TopicInfo"]
