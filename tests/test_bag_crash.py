"""R14 and R16 with real processes and real signals: a recorder (tests/bag_producer.py:
BagWriter fed 100 Hz joint states, 30 Hz 640x480 images and 25 Hz commands in real time)
is SIGKILLed at uniformly random times, or SIGTERMed with a large unflushed backlog.

R14: after `recover` every file reads back (exit 3, never 1), at most 1.0 s of log time
is lost against what the producer had handed to the writer (half the trials have no
images: only the 0.5 s time-based flush bounds their loss), every episode it had ended
is intact (both markers, only its own messages), and RSS stays bounded.
R16: SIGTERM finishes the file within 5 s; it passes a full read with summary and every
CRC, and its episode indices have no gaps.

R14, R16: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

from bag_crash_helpers import episode_messages, run_producer
from rosbags.highlevel import AnyReader

from hardware.recording.reader import BagReader
from hardware.recording.recover import EXIT_RECOVERED, recover

TRIALS = 20
MAX_LOSS_S = 1.0
CHUNK_BYTES = 1024 * 1024
IMAGE_BYTES = 640 * 480 * 3
# The writer holds one open chunk (<= chunk size + one message), its compressed copy and
# zstd's work space; above the RSS at READY, allow twice the configured cache (chunk +
# largest message) plus 8 MiB of allocator slack.
MAX_RSS_GROWTH = 2 * (CHUNK_BYTES + IMAGE_BYTES) + 8 * 2**20


def test_sigkill_at_random_times_loses_at_most_one_second(tmp_path: Path) -> None:
    rng = random.Random(14)
    growths = []
    for trial in range(TRIALS):
        path = tmp_path / f"kill-{trial}.mcap"
        config = {"path": str(path), "run": f"T{trial}", "chunk_size_bytes": CHUNK_BYTES}
        if trial % 2:  # no images: chunks never fill, only the 0.5 s time flush bounds loss
            config["image_hz"] = 0.0
        run = run_producer(config, rng.uniform(0.2, 1.6), signal.SIGKILL)
        assert run.returncode == -signal.SIGKILL and run.handed
        report = recover(path, tmp_path / f"kill-{trial}.recovered.mcap")
        assert report.exit_code == EXIT_RECOVERED, report.describe()
        # Killed before the first flush: nothing kept, the loss is all that was handed over.
        last_kept = report.last_log_ns if report.last_log_ns is not None else min(run.handed)
        loss_s = (max(run.handed) - last_kept) * 1e-9
        assert loss_s <= MAX_LOSS_S, f"trial {trial}: lost {loss_s:.3f} s"
        assert report.output is not None
        _check_closed_episodes_intact(report.output, run.ended, f"T{trial}")
        growths.append(run.rss_end - run.rss_ready)
        path.unlink()
        report.output.unlink()
    assert max(growths) <= MAX_RSS_GROWTH, f"RSS grew by {max(growths) / 2**20:.1f} MiB"


def _check_closed_episodes_intact(path: Path, ended: list[int], run: str) -> None:
    reader = BagReader(path)
    assert reader.verify() == reader.message_count  # every chunk, data and summary CRC
    spans = {span.index: span for span in reader.episodes()}
    by_episode = episode_messages(reader)
    for index in ended:
        span = spans[index]
        assert span.complete and span.success == (index % 2 == 0)
        frames = {frame for _, frame, _ in by_episode.get(index, [])}
        assert frames == {f"{run}:{index}"}, f"episode {index} holds {frames}"
    with AnyReader([path]) as bag:  # an independent reader: rosbags, every message decoded
        count = sum(1 for c, _, raw in bag.messages() if bag.deserialize(raw, c.msgtype))
    assert count == reader.message_count


def test_sigterm_with_a_large_backlog_finishes_the_file_within_5_s(tmp_path: Path) -> None:
    path = tmp_path / "term.mcap"
    # No flush for 30 s, chunks up to 128 MiB: at SIGTERM ~2 s of images (~55 MB) wait
    # in the open chunk and must be compressed, written and indexed on the way out.
    config = {
        "path": str(path),
        "flush_period_s": 30.0,
        "chunk_size_bytes": 128 * 2**20,
        "episode_s": 0.3,
    }
    run = run_producer(config, 2.0, signal.SIGTERM)
    assert run.returncode == 0 and run.lines[-1].startswith("CLOSED")
    assert run.stop_s < 5.0, f"took {run.stop_s:.2f} s to finish after SIGTERM"
    assert recover(path).exit_code == 0  # intact: nothing to salvage
    reader = BagReader(path)
    assert reader.verify() == reader.message_count == int(run.lines[-1].split()[1])
    indices = [span.index for span in reader.episodes()]
    assert indices == list(range(len(indices))) and len(indices) >= 3
    assert all(span.complete for span in reader.episodes()[:-1])
    assert reader.topics()["/fetch/camera_0/image_raw"].count >= 50
