"""R26 link self-test: random frames host -> pty -> device parser -> re-encode -> pty -> host.

Run: `.venv/bin/python bench/emulator_selftest.py` (10^6 frames, a few minutes; `--frames
10000 --json` for the quick version the tests run).

Two processes, as in use: this one is the host (pyserial on the pty slave, like the driver);
a child (`--serve`) is the device side, a `PtyLink` in raw mode whose bytes go through
`FrameParser`, are re-encoded and sent back through the emulator's reply path
(`LinkInjector` with no faults). Every frame must come back byte-identical (0 mismatches,
0 parser errors on either side), which also proves the raw mode: the frames carry every
byte value, 0x03 0x0A 0x0D 0x11 0x13 included (counted). The round-trip time of each frame
(host write -> complete echo read, one monotonic clock) gives p50/p99/max; the goal is
p99 < 1 ms. Exit status 1 on any mismatch or parser error; the latency goal is reported.

R26: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware.faults import LinkInjector, ReplyFaults  # noqa: E402
from hardware.protocol import (  # noqa: E402
    MESSAGES,
    Ack,
    Command,
    CommandChannel,
    DeviceInfo,
    Enable,
    EStop,
    Fault,
    FrameParser,
    Heartbeat,
    Hello,
    Message,
    ObjectPose,
    ResetFault,
    SceneReset,
    State,
    encode_frame,
)
from hardware.pty_link import PtyLink  # noqa: E402

CONTROL_BYTES = (0x03, 0x0A, 0x0D, 0x11, 0x13)
GOAL_P99_US = 1000.0
_LETTERS = [*"abcdefghijklmnopqrstuvwxyz_:0123456789", "é", "ü", "中"]


class RandomMessages:
    """Random, valid messages of every type (float32-exact values, incl. inf and NaN)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self._makers: dict[type[Message], Callable[[], Message]] = {
            Hello: lambda: Hello(self.integer(256)),
            DeviceInfo: self.device_info,
            State: self.state,
            ObjectPose: lambda: ObjectPose(self.integer(2**63), self.floats(3), self.floats(4)),
            Command: lambda: Command(self.floats(self.integer(65))),
            Enable: lambda: Enable(bool(self.integer(2))),
            EStop: EStop,
            Heartbeat: lambda: Heartbeat(self.integer(2**32)),
            ResetFault: ResetFault,
            SceneReset: lambda: SceneReset(self.integer(2**32)),
            Ack: lambda: Ack(
                self.integer(256), self.integer(2**16), self.integer(256), self.text()
            ),
            Fault: lambda: Fault(self.integer(2**16), self.integer(256), self.text()),
        }

    def integer(self, high: int) -> int:
        return int(self.rng.integers(0, high, dtype=np.uint64))

    def floats(self, n: int) -> np.ndarray:
        values = self.rng.standard_normal(n) * 10.0 ** self.rng.integers(-3, 4, n)
        special = self.rng.random(n) < 0.02
        values[special] = self.rng.choice([np.inf, -np.inf, np.nan, 0.0, -0.0], special.sum())
        return values.astype(np.float32).astype(np.float64)

    def text(self, longest: int = 20) -> str:
        return "".join(self.rng.choice(_LETTERS, self.integer(longest + 1)))

    def state(self) -> State:
        n, m = self.integer(25), self.integer(21)
        joints = (self.floats(n) for _ in range(3))
        servos = (self.floats(m) for _ in range(3))
        return State(
            self.integer(2**63), self.integer(2**16), self.integer(2**16), *joints, *servos
        )

    def device_info(self) -> DeviceInfo:
        channels = tuple(
            CommandChannel(self.text(12), *self.floats(4)) for _ in range(self.integer(9))
        )
        joints = tuple(self.text(12) for _ in range(self.integer(9)))
        firmware = (self.integer(256), self.integer(256), self.integer(256))
        return DeviceInfo(
            self.text(),
            firmware,
            self.integer(2**32),
            self.integer(2**16),
            self.integer(2**16),
            joints,
            channels,
            bool(self.integer(2)),
            bool(self.integer(2)),
        )

    def frame(self, seq: int) -> bytes:
        kind = list(MESSAGES.values())[self.integer(len(MESSAGES))]
        return encode_frame(self._makers[kind](), seq)


def serve() -> int:
    """Device side: echo every decoded frame, re-encoded, through the no-fault reply path."""
    parser = FrameParser()
    rng = np.random.default_rng(0)
    reply = LinkInjector(ReplyFaults(), rng, lambda kind, **_: None, "tx")
    with PtyLink() as link:
        print(f"device: {link.device_path}", flush=True)
        fd = link.master_fd
        if fd is None:
            return 1
        while True:
            readable = select.select([fd, sys.stdin], [], [])[0]
            if sys.stdin in readable:
                break  # the host closed our stdin: done
            for frame in parser.feed(link.read(), time.monotonic()):
                for _, chunk in reply.outgoing(encode_frame(frame.message, frame.seq)):
                    _write_all(link, chunk)
    print(json.dumps(dict(parser.counters)), flush=True)
    return 0


def _write_all(link: PtyLink, data: bytes) -> None:
    while data:
        data = data[link.write(data) :]


def run_host(frames: int, seed: int) -> dict[str, object]:
    """Host side: spawn the device, send `frames` random frames one at a time, check echoes."""
    import serial

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    if child.stdout is None or child.stdin is None:
        raise RuntimeError("the device process has no pipes")
    path = child.stdout.readline().decode().split()[1]
    port = serial.Serial(path, timeout=1.0)
    messages, parser = RandomMessages(seed), FrameParser()
    times_us, mismatches, control, sent_bytes = [], 0, 0, 0
    for i in range(frames):
        data = messages.frame(i)
        start = time.perf_counter_ns()
        port.write(data)
        echo = port.read(len(data))
        times_us.append((time.perf_counter_ns() - start) / 1000)
        mismatches += echo != data
        parser.feed(echo, time.monotonic())
        control += sum(data.count(bytes([b])) for b in CONTROL_BYTES)
        sent_bytes += len(data)
    port.close()
    child.stdin.close()
    device_counters = json.loads(child.stdout.readline() or "{}")
    child.wait(timeout=10)
    return _summary(frames, sent_bytes, mismatches, control, times_us, parser, device_counters)


def _summary(
    frames: int,
    sent_bytes: int,
    mismatches: int,
    control: int,
    times_us: list[float],
    parser: FrameParser,
    device_counters: dict[str, int],
) -> dict[str, object]:
    device_errors = sum(v for k, v in device_counters.items() if k not in ("bytes", "frames"))
    p50, p99 = np.percentile(times_us, [50, 99]) if times_us else (0.0, 0.0)
    return {
        "frames": frames,
        "bytes": sent_bytes,
        "mismatched_frames": mismatches,
        "host_parser_errors": parser.errors,
        "host_frames_decoded": parser.counters["frames"],
        "device_parser_errors": device_errors,
        "device_frames_decoded": device_counters.get("frames", 0),
        "control_bytes_passed": control,
        "round_trip_p50_us": round(float(p50), 1),
        "round_trip_p99_us": round(float(p99), 1),
        "round_trip_max_us": round(max(times_us, default=0.0), 1),
        "goal_p99_us": GOAL_P99_US,
        "goal_met": bool(p99 < GOAL_P99_US),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    summary = run_host(args.frames, args.seed)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:24s} {value}")
    clean = not (summary["mismatched_frames"] or summary["host_parser_errors"])
    return 0 if clean and not summary["device_parser_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
