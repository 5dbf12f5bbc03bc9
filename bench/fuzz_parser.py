"""Fuzz the serial protocol's receive path: FrameParser -> decode -> StatePlausibility.

Run: `.venv/bin/python bench/fuzz_parser.py` (10^6 executions; `--executions 100000` for a
quick run, `--engine atheris` for coverage-guided fuzzing, `--json` for machines).

Executions alternate between two kinds (PROTOCOL.md sections 8 and 9):

- raw: a random byte stream (random bytes, sync pairs, headers with a valid CRC-8 and any
  length, whole, cut and bit-flipped valid frames) fed in random chunks at random times into
  one long-lived FrameParser;
- hostile: one frame with valid CRCs carrying either random bytes under a random type, or a
  well-formed message with arbitrary values (any float32 including NaN, inf and huge ones,
  wrong counts, any time and status bits), or such a payload with a few bytes mutated, fed to
  a fresh parser; each decoded State goes through one long-lived StatePlausibility.

A crash is any exception other than ImplausibleState escaping that pipeline, or a parser
buffer above MAX_PAYLOAD + 11 bytes after a feed. Reported: executions/s, crashes (0
expected; the first ones with their input), the largest buffer seen, peak traced memory
(tracemalloc, which slows the run; `--no-tracemalloc` for raw speed), frame and error
counters. Exit status 1 on any crash.

`--engine atheris` (pip install atheris; wheels exist for CPython 3.11 on x86-64 Linux)
instruments hardware/protocol.py and hardware/plausibility.py and lets libFuzzer choose the
inputs: the first byte picks raw (the rest is the stream), hostile (a type and a payload) or
frames (a stream of frames whose CRCs the harness computes, some then damaged). `--engine auto`
uses atheris when it imports and the seeded random engine otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import struct
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run as a script from a checkout
sys.path.insert(0, str(BENCH_DIR))  # the shared bench/report.py

from report import emit  # noqa: E402

import hardware.plausibility as plausibility  # noqa: E402
import hardware.protocol as protocol  # noqa: E402
from hardware.plausibility import ImplausibleState, StatePlausibility  # noqa: E402
from hardware.protocol import (  # noqa: E402
    MAX_PAYLOAD,
    MESSAGES,
    SYNC,
    Ack,
    Command,
    CommandChannel,
    DeviceInfo,
    Enable,
    FrameParser,
    Heartbeat,
    ObjectPose,
    State,
    crc8,
    crc16,
    encode_frame,
)

BUFFER_LIMIT = MAX_PAYLOAD + 11
# A Fetch-like device: 7 arm joints and a gripper servo driving two finger joints.
ARM: tuple[str, ...] = ("shoulder_pan", "shoulder_lift", "upperarm_roll", "elbow_flex")
ARM += ("forearm_roll", "wrist_flex", "wrist_roll")
INFO = DeviceInfo(
    model="fuzz-arm",
    firmware=(1, 0, 0),
    calibration_hash=0xC0FFEE,
    watchdog_ms=30,
    state_period_ms=10,
    state_joints=(*ARM, "l_finger", "r_finger"),
    commands=(
        *(CommandChannel(name, -1.6, 1.6, 1.5, 33.0) for name in ARM),
        CommandChannel("gripper", 0.0, 0.05, 0.05, 60.0),
    ),
    reports_object_pose=True,
)
N_JOINTS, N_SERVOS = len(INFO.state_joints), len(INFO.commands)
POSITION_MIN = np.array([c.position_min for c in INFO.commands])
POSITION_MAX = np.array([c.position_max for c in INFO.commands])
VELOCITY_MAX = np.array([c.velocity_max for c in INFO.commands])


def frame(kind: int, seq: int, payload: bytes) -> bytes:
    """A frame with valid CRCs around any type and payload (PROTOCOL.md section 3)."""
    header = struct.pack("<BBHH", 1, kind, seq & 0xFFFF, len(payload))
    body = header + bytes([crc8(header)]) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


def false_header(kind: int, length: int) -> bytes:
    """A header with a valid CRC-8 and any length: makes a receiver wait (or reject it)."""
    header = struct.pack("<BBHH", 1, kind, 0, length)
    return SYNC + header + bytes([crc8(header)])


@dataclass
class Harness:
    """The pipeline under test and what it saw; `run_*` execute one input each."""

    parser: FrameParser = field(default_factory=FrameParser)
    check: StatePlausibility = field(default_factory=lambda: StatePlausibility(INFO))
    raw_check: StatePlausibility = field(default_factory=lambda: StatePlausibility(INFO))
    now_s: float = 0.0
    raw_now_s: float = 0.0
    executions: int = 0
    max_buffer: int = 0
    crashes: list[tuple[str, str]] = field(default_factory=list)
    crash_count: int = 0
    counters: Counter[str] = field(default_factory=Counter)

    def run(self, kind: str, data: Any, consume: Callable[[Any], None]) -> None:
        self.executions += 1
        try:
            consume(data)
        except Exception as e:  # the thing we count: anything escaping the receive path
            self.crash_count += 1
            if len(self.crashes) < 5:
                shown = data.hex() if isinstance(data, bytes) else repr(data)
                self.crashes.append((f"{kind}: {type(e).__name__}: {e}", shown[:400]))

    def feed(
        self, parser: FrameParser, data: bytes, now_s: float, check: StatePlausibility
    ) -> None:
        for fr in parser.feed(data, now_s):
            self.counters[type(fr.message).__name__] += 1
            if isinstance(fr.message, State):
                self.plausible(check, fr.message, now_s)
        self.max_buffer = max(self.max_buffer, len(parser._buffer))
        if len(parser._buffer) > BUFFER_LIMIT:
            raise AssertionError(f"parser buffer {len(parser._buffer)} B > {BUFFER_LIMIT}")

    def plausible(self, check: StatePlausibility, state: State, now_s: float) -> None:
        try:
            check.check(state, now_s)
        except ImplausibleState as e:
            self.counters[f"implausible:{e.reason}"] += 1
        else:
            self.counters["plausible"] += 1

    def raw(self, chunks: list[tuple[bytes, float]]) -> None:
        for data, dt in chunks:
            self.raw_now_s += dt
            self.feed(self.parser, data, self.raw_now_s, self.raw_check)

    def hostile(self, data: bytes) -> None:
        self.now_s += 0.01
        self.feed(FrameParser(), data, self.now_s, self.check)

    def parser_counters(self) -> dict[str, int]:
        return dict(sorted(self.parser.counters.items()))


# -- the random engine ---------------------------------------------------------------------
class RandomInputs:
    """Seeded generators of raw streams and hostile frames."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.seq = 0
        self.q = (POSITION_MIN + POSITION_MAX) / 2
        self.pool = [encode_frame(m, i) for i, m in enumerate(self._messages(200))]

    def _messages(self, count: int) -> list[protocol.Message]:
        out: list[protocol.Message] = [INFO, Heartbeat(7), Enable(True), Ack(0x21, 3, 0, "ok")]
        while len(out) < count:
            out.append(self.state(plausible=True))
            out.append(ObjectPose(self.seq, self.rng.normal(size=3), self.rng.normal(size=4)))
            out.append(Command(self.rng.uniform(-1, 1, N_SERVOS)))
        return out

    def floats(self, n: int) -> np.ndarray:
        if self.rng.random() < 0.5:
            return self.rng.uniform(-1.7, 1.7, n)
        bits = self.rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        with np.errstate(invalid="ignore"):  # signalling NaNs among them
            return bits.view(np.float32).astype(np.float64)  # NaN, inf, denormals, 1e38

    def state(self, plausible: bool = False) -> State:
        """The next State of a plausible trajectory, or (2 in 3 unless `plausible`) one with
        one to three attacks on it: wrong counts, arbitrary floats, time back or far ahead,
        reserved status bits, a servo jump."""
        self.seq += 1
        step = self.rng.uniform(-1, 1, N_SERVOS) * VELOCITY_MAX * 0.01
        self.q = np.clip(self.q + step, POSITION_MIN, POSITION_MAX)
        f: dict[str, Any] = {"time": self.seq * 10_000, "status": 1}
        f["joints"] = [self.rng.normal(0, 0.5, N_JOINTS) for _ in range(3)]
        f["servos"] = [self.q.copy(), step * 100, self.rng.normal(0, 5, N_SERVOS)]
        if not plausible and self.rng.random() < 2 / 3:
            for _ in range(int(self.rng.integers(1, 4))):
                self.attack(f)
        return State(f["time"], f["status"], self.u(16), *f["joints"], *f["servos"])

    def attack(self, f: dict[str, Any]) -> None:
        which = int(self.rng.integers(6))
        group = f["joints"] if self.rng.random() < 0.5 else f["servos"]
        if which == 0:  # wrong count
            n = int(self.rng.integers(0, 40))
            group[:] = [self.floats(n) for _ in range(3)]
        elif which == 1:  # arbitrary values in one array
            k = int(self.rng.integers(3))
            group[k] = self.floats(len(group[k]))
        elif which == 2:
            f["time"] = self.u(64)
        elif which == 3:
            f["status"] = self.u(16)
        elif which == 4 and len(f["servos"][0]):  # a jump
            f["servos"][0] = f["servos"][0] + self.rng.normal(0, 0.2, len(f["servos"][0]))
        else:
            f["time"] = max(0, f["time"] - int(self.rng.integers(0, 30_000)))

    def u(self, bits: int) -> int:
        return int(self.rng.integers(0, 2**bits - 1, dtype=np.uint64, endpoint=True))

    def raw_stream(self) -> list[tuple[bytes, float]]:
        pieces = [self.piece() for _ in range(int(self.rng.integers(1, 9)))]
        stream = b"".join(pieces)
        cuts = np.sort(self.rng.integers(0, len(stream) + 1, int(self.rng.integers(0, 4))))
        bounds = [0, *cuts.tolist(), len(stream)]
        dts = self.rng.choice([0.0, 0.002, 0.01, 0.03, 0.06], len(bounds) - 1).tolist()
        return [(stream[a:b], dt) for a, b, dt in zip(bounds[:-1], bounds[1:], dts, strict=True)]

    def piece(self) -> bytes:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.bytes(int(self.rng.integers(0, 64)))
        if r < 0.4:
            return [SYNC, b"\xa5", SYNC + b"\x01"][int(self.rng.integers(3))]
        good = self.pool[int(self.rng.integers(len(self.pool)))]
        if r < 0.7:
            return good
        if r < 0.8:
            return good[: int(self.rng.integers(1, len(good)))]
        if r < 0.9:
            damaged = bytearray(good)
            bit = int(self.rng.integers(len(good) * 8))
            damaged[bit // 8] ^= 1 << (bit % 8)
            return bytes(damaged)
        return false_header(int(self.rng.integers(256)), int(self.rng.integers(0, 0x10000)))

    def hostile_frame(self) -> bytes:
        r = self.rng.random()
        if r < 0.3:
            kind = int(self.rng.integers(256)) if self.rng.random() < 0.3 else self.known_type()
            return frame(kind, 0, self.rng.bytes(int(self.rng.integers(0, MAX_PAYLOAD + 1))))
        payload = bytearray(self.state().payload() if r < 0.8 else self.other_payload())
        if self.rng.random() < 0.3 and payload:  # structure-aware mutation
            for _ in range(int(self.rng.integers(1, 5))):
                payload[int(self.rng.integers(len(payload)))] = int(self.rng.integers(256))
        kind = State.TYPE if r < 0.8 else self.known_type()
        return frame(kind, 0, bytes(payload[:MAX_PAYLOAD]))

    def known_type(self) -> int:
        return list(MESSAGES)[int(self.rng.integers(len(MESSAGES)))]

    def other_payload(self) -> bytes:
        return self.pool[int(self.rng.integers(len(self.pool)))][9:-2]


def run_random(harness: Harness, executions: int, seed: int, progress: tqdm) -> None:
    inputs = RandomInputs(seed)
    for i in range(executions):
        if i % 2:
            harness.run("hostile", inputs.hostile_frame(), harness.hostile)
        else:
            harness.run("raw", inputs.raw_stream(), harness.raw)
        if i % 1000 == 999:
            progress.update(1000)
    progress.update(executions % 1000)


# -- the atheris engine --------------------------------------------------------------------
def _instrument(atheris: Any, module: Any) -> None:
    """Coverage instrumentation for every function and method defined in `module`."""
    for value in list(vars(module).values()):
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if isinstance(value, type):
            for name, attr in list(vars(value).items()):
                if isinstance(attr, classmethod):
                    setattr(value, name, classmethod(atheris.instrument_func(attr.__func__)))
                elif callable(attr) and hasattr(attr, "__code__"):
                    setattr(value, name, atheris.instrument_func(attr))
        elif callable(value) and hasattr(value, "__code__"):
            setattr(module, value.__name__, atheris.instrument_func(value))


def run_atheris(
    harness: Harness, executions: int, progress: tqdm, finish: Callable[[], int]
) -> None:
    import atheris

    for module in (protocol, plausibility):
        _instrument(atheris, module)

    def one_input(data: bytes) -> None:
        if not data:
            return
        mode = data[0] % 3
        if mode == 0:
            harness.run("raw", _atheris_chunks(atheris, data[1:]), harness.raw)
        elif mode == 1:
            kind = data[1] if len(data) > 1 else 0
            harness.run("hostile", frame(kind, 0, data[2 : 2 + MAX_PAYLOAD]), harness.hostile)
        else:
            harness.run("frames", _atheris_frames(atheris, data[1:]), harness.raw)
        if harness.executions % 1000 == 0:
            progress.update(1000)
        if harness.executions >= executions:
            progress.update(harness.executions % 1000)
            sys.stdout.flush()
            os._exit(finish())  # libFuzzer never returns; report and leave here

    argv = [sys.argv[0], f"-runs={executions + 1000}", "-max_len=4096", "-print_final_stats=1"]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def _atheris_frames(atheris: Any, data: bytes) -> list[tuple[bytes, float]]:
    """Frames with valid CRCs built from the fuzzer's bytes (it cannot solve CRCs itself),
    some damaged by one byte, fed in chunks: the parser's paths past the checksums."""
    provider = atheris.FuzzedDataProvider(data)
    chunks = []
    while provider.remaining_bytes():
        kind = provider.ConsumeIntInRange(0, 255)
        payload = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 200))
        one = bytearray(frame(kind, provider.ConsumeIntInRange(0, 0xFFFF), payload))
        if provider.ConsumeBool():
            one[provider.ConsumeIntInRange(0, len(one) - 1)] = provider.ConsumeIntInRange(0, 255)
        chunks.append((bytes(one), provider.ConsumeIntInRange(0, 70) * 1e-3))
    return chunks


def _atheris_chunks(atheris: Any, data: bytes) -> list[tuple[bytes, float]]:
    provider = atheris.FuzzedDataProvider(data)
    chunks = []
    while provider.remaining_bytes():
        size = provider.ConsumeIntInRange(0, 300)
        dt = provider.ConsumeIntInRange(0, 70) * 1e-3
        chunks.append((provider.ConsumeBytes(size), dt))
    return chunks


# -- report --------------------------------------------------------------------------------
def report(harness: Harness, engine: str, elapsed_s: float, traced: bool) -> dict[str, Any]:
    peak = tracemalloc.get_traced_memory()[1] if traced else None
    counters = dict(sorted(harness.counters.items()))
    return {
        "engine": engine,
        "executions": harness.executions,
        "elapsed_s": round(elapsed_s, 2),
        "executions_per_s": round(harness.executions / max(elapsed_s, 1e-9)),
        "tracemalloc": traced,
        "crashes": harness.crash_count,
        "first_crashes": harness.crashes,
        "max_buffer_bytes": harness.max_buffer,
        "buffer_limit_bytes": BUFFER_LIMIT,
        "peak_traced_memory_bytes": peak,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "raw_stream_parser_counters": harness.parser_counters(),
        "decoded_and_plausibility": counters,
        "python": platform.python_version(),
        "failures": [f"{harness.crash_count} crashes"] if harness.crash_count else [],
    }


def table(rep: dict[str, Any]) -> str:
    peak = rep["peak_traced_memory_bytes"]
    lines = [
        f"engine {rep['engine']}: {rep['executions']} executions in {rep['elapsed_s']} s = "
        f"{rep['executions_per_s']} exec/s (tracemalloc {'on' if rep['tracemalloc'] else 'off'})",
        f"crashes: {rep['crashes']}",
        f"max parser buffer: {rep['max_buffer_bytes']} B (limit {rep['buffer_limit_bytes']} B)",
        f"peak traced memory: {peak / 1e6:.2f} MB" if peak is not None else "peak traced: off",
        f"max RSS: {rep['max_rss_mb']} MB",
        f"raw-stream parser counters: {rep['raw_stream_parser_counters']}",
        f"decoded messages and plausibility verdicts: {rep['decoded_and_plausibility']}",
    ]
    lines += [f"CRASH {what}\n  input {data}" for what, data in rep["first_crashes"]]
    return "\n".join(lines)


def _atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("auto", "random", "atheris"), default="random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, table on stderr")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even with crashes")
    args = parser.parse_args()
    engine = args.engine
    if engine in ("auto", "atheris") and not _atheris_available():
        if engine == "atheris":
            print("atheris is not installed: falling back to the random engine", file=sys.stderr)
        engine = "random"
    elif engine == "auto":
        engine = "atheris"
    traced = not args.no_tracemalloc
    if traced:
        tracemalloc.start()
    harness = Harness()
    progress = tqdm(total=args.executions, unit="exec", mininterval=1.0, file=sys.stderr)
    start = time.perf_counter()

    def finish() -> int:
        progress.close()
        rep = report(harness, engine, time.perf_counter() - start, traced)
        return emit(rep, table(rep), args.json, args.no_fail)

    if engine == "atheris":
        run_atheris(harness, args.executions, progress, finish)  # exits the process
    else:
        run_random(harness, args.executions, args.seed, progress)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
