"""Test helpers for the crash tests: run tests/bag_producer.py as a real process, kill it
with a real signal, and judge the bag it leaves behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.recording.reader import BagReader

PRODUCER = Path(__file__).resolve().parent / "bag_producer.py"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES


@dataclass
class ProducerRun:
    """What the producer said before it died: messages handed over, episodes ended."""

    lines: list[str]
    rss_ready: int = 0
    rss_end: int = 0
    returncode: int = 0
    stop_s: float = 0.0
    handed: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.handed = [int(x[2:]) for x in self.lines if x.startswith("W ")]
        self.ended = [int(x[2:]) for x in self.lines if x.startswith("E ")]


def run_producer(config: dict[str, Any], seconds: float, sig: int) -> ProducerRun:
    """Start the producer, let it record `seconds` after READY, then send `sig`."""
    process = subprocess.Popen(
        [sys.executable, str(PRODUCER), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    if first.strip() not in ("READY",) and not first.startswith("RESUMED"):
        process.kill()
        raise AssertionError(f"producer did not start: {first!r} {process.stderr.read()}")
    lines = [first.strip()]
    if first.startswith("RESUMED"):
        lines.append(process.stdout.readline().strip())
    rss_ready = rss_bytes(process.pid)
    time.sleep(seconds)
    rss_end = rss_bytes(process.pid)
    sent = time.monotonic()
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    run = ProducerRun(lines + out.splitlines(), rss_ready, rss_end, process.returncode)
    run.stop_s = time.monotonic() - sent
    if sig != signal.SIGKILL and process.returncode != 0:
        raise AssertionError(f"producer failed ({process.returncode}): {err[-2000:]}")
    return run


def episode_messages(reader: BagReader) -> dict[int, list[tuple[str, str, int]]]:
    """Per episode index: (topic, frame_id, log time) of each message between its markers,
    in file order; messages outside episodes are under -1."""
    current = -1
    found: dict[int, list[tuple[str, str, int]]] = {}
    for topic, log_time, msg in reader.messages(log_time_order=False):
        if topic == "/twinbridge/episodes":
            marker = json.loads(msg.data)
            current = marker["episode"] if marker["event"] == "start" else -1
            continue
        frame = getattr(getattr(msg, "header", None), "frame_id", "")
        found.setdefault(current, []).append((topic, frame, log_time))
    return found
