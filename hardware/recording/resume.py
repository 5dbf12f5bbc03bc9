"""Resume recording into an existing bag (R17): keep its verified prefix, continue with
episode N.

Run: `twinbridge record --robot fetch --out demo.mcap --resume`

`resume_bag(path, ...)` reads the file record by record (a truncated file is salvaged as
`twinbridge bag recover` would), and checks its episodes: indices 0..N-1 in order, each
closed before the next starts, log times per topic non-decreasing inside each episode,
the same robot and task. Anything else is refused with what is wrong and what to do; the
file is then left untouched. Otherwise it writes the prefix up to the last closed
episode's end marker into a temp file next to it, dropping a trailing incomplete episode
and whatever followed the last end (reported), renames the temp file over the original
atomically, and returns a `BagWriter` that continues with episode N. So a resumed bag
never holds a mixed episode: an episode is either wholly from one run or absent.

R17: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mcap.records import Channel, Message, Metadata, Schema

from hardware.recording.episodes import (
    EPISODES_TOPIC,
    EpisodeTracker,
    parse_marker,
    string_from_cdr,
)
from hardware.recording.errors import EpisodeOrderError, ResumeRefusedError
from hardware.recording.scan import NotMcapError, RecordScanner
from hardware.recording.writer import SESSION_METADATA, BagWriter, BagWriterConfig

NEW_FILE_HINT = "record into a new file (another --out), or drop --resume"


@dataclass
class ResumeReport:
    """What resuming kept and dropped."""

    path: Path
    episodes_kept: int = 0  # the next episode is this index
    messages_kept: int = 0
    messages_dropped: int = 0
    incomplete_episode: int | None = None  # dropped: it had no end marker
    damage: str = ""  # why the file's tail was unreadable, if it was

    def describe(self) -> str:
        lines = [
            f"{self.path}: resuming after {self.episodes_kept} complete episodes "
            f"({self.messages_kept} messages kept); the next episode is {self.episodes_kept}"
        ]
        if self.damage:
            lines.append(f"the file was damaged ({self.damage}); its sound prefix was kept")
        if self.incomplete_episode is not None:
            lines.append(f"dropped episode {self.incomplete_episode}: it has no end marker")
        if self.messages_dropped:
            lines.append(
                f"dropped {self.messages_dropped} messages recorded after the last "
                "complete episode"
            )
        return "\n".join(lines)


@dataclass
class _Plan:
    """The first pass: markers, the cut, and what makes the file unsafe to continue."""

    topics: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)
    metadata: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    messages: int = 0
    cut: int = 0  # messages (file order) to keep
    tracker: EpisodeTracker = field(default_factory=EpisodeTracker)
    problems: list[str] = field(default_factory=list)
    last_time: dict[int, int] = field(default_factory=dict)  # per channel, this episode
    marker_time: int = 0


def resume_bag(
    path: Path | str,
    config: BagWriterConfig | None = None,
    *,
    robot: str,
    task: str = "",
    session: dict[str, str] | None = None,
) -> tuple[BagWriter, ResumeReport]:
    """A writer continuing `path` with its next episode, and what was kept/dropped."""
    path = Path(path)
    plan, scanner = _plan(path)
    _check(path, plan, robot, task)
    report = ResumeReport(path, plan.tracker.next_index, plan.cut, plan.messages - plan.cut)
    report.incomplete_episode = plan.tracker.open_index
    report.damage = scanner.damage.reason if scanner.damage and not scanner.finished else ""
    extra = {"resumed_at_episode": str(report.episodes_kept), **(session or {})}
    temp = path.with_name(f".{path.name}.resuming-{os.getpid()}")
    temp.unlink(missing_ok=True)
    writer = BagWriter(
        temp,
        config,
        robot=robot,
        task=task,
        session=extra,
        next_episode=report.episodes_kept,
        metadata=plan.metadata,
    )
    try:
        _copy_prefix(path, plan, writer)
        writer.move_to(path)
    except BaseException:
        writer.close()
        temp.unlink(missing_ok=True)
        raise
    return writer, report


def _plan(path: Path) -> tuple[_Plan, RecordScanner]:
    if not path.is_file():
        raise ResumeRefusedError(f"{path}: no such file to resume; drop --resume to start it")
    plan = _Plan()
    scanner = RecordScanner(path)
    schemas: dict[int, Schema] = {}
    try:
        for item in scanner.items():
            if isinstance(item, Schema):
                schemas[item.id] = item
            elif isinstance(item, Channel):
                schema = schemas.get(item.schema_id)
                name, text = (schema.name, schema.data.decode()) if schema else ("", "")
                qos = item.metadata.get("offered_qos_profiles", "")
                plan.topics[item.id] = (item.topic, name, text, qos)
            elif isinstance(item, Metadata):
                plan.metadata.append((item.name, dict(item.metadata)))
            elif isinstance(item, Message):
                _observe(plan, item)
    except NotMcapError as e:
        raise ResumeRefusedError(f"{e}; {NEW_FILE_HINT}") from e
    if plan.tracker.open_index is None and plan.tracker.next_index == 0:
        plan.cut = plan.messages  # no episode yet: everything is outside episodes
    return plan, scanner


def _observe(plan: _Plan, message: Message) -> None:
    plan.messages += 1
    topic = plan.topics.get(message.channel_id, ("",))[0]
    if topic != EPISODES_TOPIC:
        _check_monotonic(plan, message, topic)
        return
    fields = parse_marker(string_from_cdr(message.data) or "")
    if fields is None:
        plan.problems.append(f"message {plan.messages} on {EPISODES_TOPIC} is not a marker")
        return
    index = fields["episode"]
    if message.log_time < plan.marker_time:
        plan.problems.append(f"episode {index}'s {fields['event']} marker goes back in time")
    plan.marker_time = message.log_time
    try:
        if fields["event"] == "start":
            if plan.tracker.open_index is None and index == 0 and not plan.tracker.next_index:
                plan.cut = plan.messages - 1  # what precedes episode 0 is kept
            plan.tracker.start(index)
            plan.last_time.clear()
        else:
            plan.tracker.end(index)
            plan.cut = plan.messages
    except EpisodeOrderError as e:
        plan.problems.append(str(e))


def _check_monotonic(plan: _Plan, message: Message, topic: str) -> None:
    if plan.tracker.open_index is None:
        return
    last = plan.last_time.get(message.channel_id)
    if last is not None and message.log_time < last:
        plan.problems.append(
            f"episode {plan.tracker.open_index}: log times on {topic} go back in time"
        )
    plan.last_time[message.channel_id] = message.log_time


def _check(path: Path, plan: _Plan, robot: str, task: str) -> None:
    if plan.problems:
        shown = "; ".join(dict.fromkeys(plan.problems))
        raise ResumeRefusedError(
            f"{path}: cannot resume: {shown}. Its episodes must be numbered 0..N-1, each "
            f"closed before the next, with log times in order. The file is unchanged; "
            f"{NEW_FILE_HINT}"
        )
    sessions = [fields for name, fields in plan.metadata if name == SESSION_METADATA]
    for key, wanted in (("robot", robot), ("task", task)):
        found = {s.get(key, "") for s in sessions}
        if sessions and found != {wanted}:
            raise ResumeRefusedError(
                f"{path} was recorded with {key} {' + '.join(sorted(found))!r}, not "
                f"{wanted!r}: cannot resume it; {NEW_FILE_HINT}"
            )


def _copy_prefix(path: Path, plan: _Plan, writer: BagWriter) -> None:
    """The first `plan.cut` messages (file order) of `path` into `writer`."""
    for topic, name, text, qos in plan.topics.values():
        if topic != EPISODES_TOPIC and name:
            writer.add_topic(topic, name, qos, definition=text or None)
    copied, registered = 0, set(writer.topics)
    for item in RecordScanner(path).items():
        if copied >= plan.cut:
            break
        if isinstance(item, Message):
            copied += 1
            topic = plan.topics.get(item.channel_id, ("",))[0]
            if topic in registered:
                writer._append(topic, item.data, item.log_time, item.publish_time)
