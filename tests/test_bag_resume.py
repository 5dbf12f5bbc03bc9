"""R17: a recorder killed between or inside episodes, then resumed into the same file.

Each trial: tests/bag_producer.py records run A (fast episodes, flushed often) and is
SIGKILLed at a random time; then the file is resumed (in this process) as run B, which
records two more episodes. The result must have episode indices
0..N-1, every episode complete, wholly from one run (never a mix of A and B messages),
with monotonic log times; every episode A had ended is kept. A gapped or non-monotonic
file is refused with instructions and left unchanged.

R17: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from bag_crash_helpers import episode_messages, run_producer
from bag_producer import Streams
from mcap.writer import Writer

from hardware.recording.episodes import EPISODES_TOPIC, marker_cdr
from hardware.recording.errors import ResumeRefusedError
from hardware.recording.reader import BagReader
from hardware.recording.resume import ResumeReport, resume_bag
from hardware.recording.schemas import ros2msg_definition

TRIALS = 30
FAST = {
    "joint_hz": 400.0,
    "image_hz": 0.0,
    "command_hz": 100.0,
    "episode_s": 0.08,
    "gap_s": 0.03,
    "flush_period_s": 0.05,
}


def test_resume_after_kills_keeps_whole_episodes_only(tmp_path: Path) -> None:
    rng = random.Random(17)
    inside = between = 0
    for trial in range(TRIALS):
        path = tmp_path / f"resume-{trial}.mcap"
        first = run_producer({"path": str(path), "run": "A", **FAST}, rng.uniform(0.0, 0.5),
                             signal.SIGKILL)  # fmt: skip
        report = _resume_with_two_episodes(path)
        kept = report.episodes_kept
        assert kept >= len(first.ended), f"trial {trial}: lost an ended episode"
        _check(path, kept, trial)
        inside += report.incomplete_episode is not None
        between += report.incomplete_episode is None
        path.unlink()
    assert inside >= 5 and between >= 3, "the kills must land both inside and between episodes"


def _resume_with_two_episodes(path: Path) -> ResumeReport:
    """Run B, in this process: resume, two episodes of joint states, close."""
    writer, report = resume_bag(path, robot="fetch", task="fetch-pick-and-place")
    streams = Streams({"image_px": [4, 4]})
    topic = "/fetch/joint_states"
    writer.add_topic(topic, "sensor_msgs/msg/JointState")
    for index in (report.episodes_kept, report.episodes_kept + 1):
        writer.start_episode(index, time.time_ns(), run="B")
        for k in range(20):
            writer.write(topic, streams.message(topic, f"B:{index}", k), time.time_ns())
        writer.end_episode(index, time.time_ns(), success=True)
    writer.close()
    return report


def _check(path: Path, kept: int, trial: int) -> None:
    reader = BagReader(path)
    assert reader.verify() == reader.message_count
    spans = reader.episodes()
    assert [s.index for s in spans] == list(range(kept + 2)), f"trial {trial}"
    assert all(s.complete for s in spans)
    for index, messages in episode_messages(reader).items():
        if index < 0:
            continue
        run = "A" if index < kept else "B"
        assert {frame for _, frame, _ in messages} == {f"{run}:{index}"}, f"trial {trial}"
        for topic in {t for t, _, _ in messages}:
            times = [t for name, _, t in messages if name == topic]
            assert times == sorted(times), f"trial {trial}: episode {index} {topic}"
    assert [s.start_fields["run"] for s in spans] == ["A"] * kept + ["B", "B"]


def _bag_with_markers(path: Path, markers: list[tuple[str, int, int]]) -> None:
    """An MCAP written with the plain `mcap` writer: the given markers (event, episode,
    log time) and joint states, as a foreign or damaged recorder could leave it."""
    with open(path, "wb") as f:
        writer = Writer(f)
        writer.start("ros2", "test")
        schema = writer.register_schema(
            "std_msgs/msg/String", "ros2msg", ros2msg_definition("std_msgs/msg/String").encode()
        )
        channel = writer.register_channel(EPISODES_TOPIC, "cdr", schema)
        for event, index, log_time in markers:
            fields = {"success": True} if event == "end" else {}
            writer.add_message(channel, log_time, marker_cdr(event, index, fields), log_time)
        writer.finish()


@pytest.mark.parametrize(
    ("markers", "why"),
    [
        ([("start", 0, 1), ("end", 0, 2), ("start", 2, 3), ("end", 2, 4)], "next episode"),
        ([("start", 0, 1), ("start", 1, 2), ("end", 1, 3)], "still open"),
        ([("start", 0, 5), ("end", 0, 6), ("start", 1, 3), ("end", 1, 4)], "back in time"),
    ],
    ids=["gap", "unclosed", "time-reversed"],
)
def test_a_gapped_or_disordered_file_is_refused_and_left_unchanged(
    tmp_path: Path, markers: list, why: str
) -> None:
    path = tmp_path / "bad.mcap"
    _bag_with_markers(path, markers)
    before = path.read_bytes()
    with pytest.raises(ResumeRefusedError, match=why) as refused:
        resume_bag(path, robot="fetch", task="")
    assert "record into a new file" in str(refused.value) and str(path) in str(refused.value)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_a_file_that_is_not_an_mcap_or_of_another_robot_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"not a bag at all")
    with pytest.raises(ResumeRefusedError, match="not an MCAP"):
        resume_bag(junk, robot="fetch")
    path = tmp_path / "fetch.mcap"
    run_producer({"path": str(path), **FAST}, 0.3, signal.SIGTERM)
    with pytest.raises(ResumeRefusedError, match="robot 'fetch', not 'shadow_hand'"):
        resume_bag(path, robot="shadow_hand", task="fetch-pick-and-place")
