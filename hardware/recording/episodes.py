"""Episode markers: JSON in std_msgs/msg/String messages on `/twinbridge/episodes`.

A start marker is `{"event": "start", "episode": 3, ...fields}` (robot, task, seed, ...),
an end marker `{"event": "end", "episode": 3, "success": true, ...fields}`. Markers are
ordinary messages of the bag, so any rosbag2 tool shows them, and a bag's episodes are
the spans between them (`episode_spans`). `EpisodeTracker` is the rule book the writer
enforces: indices 0, 1, 2, ... with no gaps, at most one episode open, an end only for
the open one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hardware.recording.errors import EpisodeOrderError

EPISODES_TOPIC = "/twinbridge/episodes"
MARKER_TYPE = "std_msgs/msg/String"
CDR_LE_HEADER = b"\x00\x01\x00\x00"  # CDR encapsulation: plain CDR, little endian


def string_cdr(text: str) -> bytes:
    """A std_msgs/msg/String serialized as rclpy does: header, uint32 length (with the
    terminating NUL), the UTF-8 bytes and the NUL."""
    data = text.encode()
    return CDR_LE_HEADER + struct.pack("<I", len(data) + 1) + data + b"\x00"


def string_from_cdr(data: bytes) -> str | None:
    """The text of a little-endian std_msgs/msg/String CDR message, or None if malformed."""
    if len(data) < 9 or data[:4] != CDR_LE_HEADER:
        return None
    (length,) = struct.unpack_from("<I", data, 4)
    if length < 1 or 8 + length > len(data):
        return None
    try:
        return data[8 : 8 + length - 1].decode()
    except UnicodeDecodeError:
        return None


def marker_cdr(event: str, index: int, fields: Mapping[str, Any]) -> bytes:
    """One marker message's CDR bytes; `fields` must be JSON-serializable."""
    try:
        text = json.dumps({"event": event, "episode": index, **fields}, sort_keys=False)
    except (TypeError, ValueError) as e:
        raise EpisodeOrderError(f"episode {index} marker fields are not JSON: {e}") from e
    return string_cdr(text)


def parse_marker(text: str) -> dict[str, Any] | None:
    """The marker's fields, or None if `text` is not a start/end marker."""
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    if not isinstance(fields, dict) or fields.get("event") not in ("start", "end"):
        return None
    if not isinstance(fields.get("episode"), int):
        return None
    return fields


@dataclass
class EpisodeSpan:
    """One episode of a bag: its markers' log times and fields. `end_ns` and `success` are
    None for an incomplete episode (no end marker: the recording stopped inside it)."""

    index: int
    start_ns: int
    end_ns: int | None = None
    success: bool | None = None
    start_fields: dict[str, Any] = field(default_factory=dict)
    end_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.end_ns is not None

    @property
    def fields(self) -> dict[str, Any]:
        """Start and end fields merged (the end's win), without "event"."""
        merged = {**self.start_fields, **self.end_fields}
        merged.pop("event", None)
        return merged


def episode_spans(markers: Iterable[tuple[int, dict[str, Any]]]) -> list[EpisodeSpan]:
    """Spans from (log time ns, marker fields) in file order. Markers that break the rules
    (an end without its start, a repeated start) are kept as they are: `check_order`
    judges them."""
    spans: list[EpisodeSpan] = []
    for log_time, fields in markers:
        index = fields["episode"]
        if fields["event"] == "start":
            spans.append(EpisodeSpan(index, log_time, start_fields=dict(fields)))
        elif spans and spans[-1].index == index and spans[-1].end_ns is None:
            span = spans[-1]
            span.end_ns, span.end_fields = log_time, dict(fields)
            success = fields.get("success")
            span.success = success if isinstance(success, bool) else None
        else:
            # An end whose start is missing: a span that starts and ends here.
            spans.append(EpisodeSpan(index, log_time, log_time, None, {}, dict(fields)))
    return spans


class EpisodeTracker:
    """The marker rules: contiguous indices from `next_index`, one open episode at a time."""

    def __init__(self, next_index: int = 0):
        self.next_index = next_index
        self.open_index: int | None = None

    def start(self, index: int) -> None:
        if self.open_index is not None:
            raise EpisodeOrderError(
                f"cannot start episode {index}: episode {self.open_index} is still open "
                "(end it first)"
            )
        if index != self.next_index:
            raise EpisodeOrderError(
                f"cannot start episode {index}: the next episode of this bag is "
                f"{self.next_index} (indices are contiguous from 0)"
            )
        self.open_index = index

    def end(self, index: int) -> None:
        if self.open_index != index:
            state = "none" if self.open_index is None else f"episode {self.open_index}"
            raise EpisodeOrderError(f"cannot end episode {index}: the open episode is {state}")
        self.open_index = None
        self.next_index = index + 1


# task_node's statuses on `diagnostics` (ros_ws/task_node.py): an episode's start and end.
START_STATUS, END_STATUS = "task_node/episode_start", "task_node/episode"


def marker_from_status(name: str, values: Mapping[str, str]) -> tuple[str, int, dict] | None:
    """("start" | "end", task_node's episode index, typed fields) from a diagnostics status,
    or None if it is not an episode status. Values arrive as strings; numbers, booleans
    and JSON lists get their types back."""
    event = {START_STATUS: "start", END_STATUS: "end"}.get(name)
    if event is None or "episode" not in values:
        return None
    fields = {key: _typed(value) for key, value in values.items()}
    index = fields.pop("episode")
    if not isinstance(index, int):
        return None
    return event, index, fields


def _typed(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
