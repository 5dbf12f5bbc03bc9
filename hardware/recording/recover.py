"""Salvage a truncated or unfinished MCAP bag (what `twinbridge bag recover` runs).

Run: `twinbridge bag recover FILE.mcap [-o OUT.mcap | --in-place]`

A recording killed mid-write ends in a torn chunk and has no summary. `recover` reads the
file record by record (hardware/recording/scan.py), keeps every complete record before
the first damaged one (chunks only if their CRC checks), and writes them into a new,
finished MCAP (summary, statistics, chunk and message indexes, CRCs). Exit codes follow
the Go `mcap recover`: 0 the file was intact (nothing written unless -o, then a copy),
3 recovered with a lost tail (how much was kept is printed), 1 nothing recoverable (not
an MCAP). The input is never modified unless `--in-place`, which replaces it atomically
(through `sim.files`: a temp file in the same directory, fsync, rename).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mcap.records import Attachment, Channel, Message, Metadata, Schema
from mcap.writer import CompressionType, Writer

from hardware.recording.errors import RecordingError
from hardware.recording.scan import NotMcapError, RecordScanner
from sim.files import Discard, atomic_open

EXIT_INTACT, EXIT_RECOVERED, EXIT_UNRECOVERABLE = 0, 3, 1
OUTPUT_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass
class RecoveryReport:
    """What `recover` found and kept."""

    source: Path
    output: Path | None  # None when nothing was written
    status: str  # "intact" | "recovered" | "unrecoverable"
    messages: int = 0
    first_log_ns: int | None = None
    last_log_ns: int | None = None
    bytes_kept: int = 0
    bytes_lost: int = 0
    damage: str = ""

    @property
    def exit_code(self) -> int:
        return {"intact": EXIT_INTACT, "recovered": EXIT_RECOVERED}.get(
            self.status, EXIT_UNRECOVERABLE
        )

    @property
    def duration_s(self) -> float:
        if self.first_log_ns is None or self.last_log_ns is None:
            return 0.0
        return (self.last_log_ns - self.first_log_ns) * 1e-9

    def describe(self) -> str:
        """One or two lines for the terminal."""
        if self.status == "unrecoverable":
            return f"nothing recoverable: {self.damage}"
        if self.status == "intact":
            copy = f"; copied to {self.output}" if self.output else ""
            return f"{self.source}: intact ({self.messages} messages), nothing to recover{copy}"
        last = "none" if self.last_log_ns is None else f"{self.last_log_ns} ns"
        return (
            f"{self.source}: {self.damage} at byte {self.bytes_kept}; lost the last "
            f"{self.bytes_lost} bytes.\nrecovered {self.messages} messages covering "
            f"{self.duration_s:.3f} s, last good log time {last} -> {self.output}"
        )


def default_output(source: Path) -> Path:
    return source.with_name(f"{source.stem}.recovered.mcap")


def recover(
    source: Path | str, output: Path | str | None = None, in_place: bool = False
) -> RecoveryReport:
    """Check `source`; if it is damaged or unfinished, write what is sound to `output`
    (default FILE.recovered.mcap; `in_place`: the source itself, atomically)."""
    source = Path(source)
    if in_place and output is not None:
        raise RecordingError("give either an output path or --in-place, not both")
    target = source if in_place else Path(output) if output else default_output(source)
    if target.resolve() == source.resolve() and not in_place:
        raise RecordingError(f"{target}: the output would overwrite the input; use --in-place")
    if not source.is_file():
        raise RecordingError(f"{source}: no such file")
    with atomic_open(target) as f:
        report = _salvage(source, f)
        if report.status != "recovered":
            raise Discard  # the target keeps what it had
        report.output = target
    if report.status == "intact" and output is not None:
        shutil.copyfile(source, target)
        report.output = target
    return report


def _salvage(source: Path, f: BinaryIO) -> RecoveryReport:
    scanner = RecordScanner(source)
    report = RecoveryReport(source, None, "recovered")
    writer = Writer(
        f, chunk_size=OUTPUT_CHUNK_BYTES, compression=CompressionType.ZSTD, enable_data_crcs=True
    )
    try:
        _copy(scanner, writer, report)
    except NotMcapError as e:
        return RecoveryReport(source, None, "unrecoverable", damage=str(e))
    writer.finish()
    report.bytes_kept = scanner.sound_bytes
    report.bytes_lost = scanner.file_size - scanner.sound_bytes
    if scanner.finished and scanner.has_summary:
        report.status, report.bytes_lost = "intact", 0
    else:
        report.damage = scanner.damage.reason if scanner.damage else "no summary section"
    return report


def _copy(scanner: RecordScanner, writer: Writer, report: RecoveryReport) -> None:
    """Every sound item of `scanner` into `writer`, with schema and channel ids remapped."""
    schemas: dict[int, int] = {0: 0}
    channels: dict[int, int] = {}
    started = False
    for item in scanner.items():
        if not started:
            header = scanner.header
            writer.start(header.profile if header else "", header.library if header else "")
            started = True
        if isinstance(item, Message):
            channel = channels.get(item.channel_id)
            if channel is None:
                continue  # a message whose channel was in a lost record: undecodable
            writer.add_message(channel, item.log_time, item.data, item.publish_time, item.sequence)
            report.messages += 1
            if report.first_log_ns is None:
                report.first_log_ns = item.log_time
            report.first_log_ns = min(report.first_log_ns, item.log_time)
            report.last_log_ns = max(report.last_log_ns or 0, item.log_time)
        elif isinstance(item, Schema) and item.id not in schemas:
            schemas[item.id] = writer.register_schema(item.name, item.encoding, item.data)
        elif isinstance(item, Channel) and item.id not in channels:
            channels[item.id] = writer.register_channel(
                item.topic, item.message_encoding, schemas.get(item.schema_id, 0), item.metadata
            )
        elif isinstance(item, Metadata):
            writer.add_metadata(item.name, item.metadata)
        elif isinstance(item, Attachment):
            writer.add_attachment(
                item.create_time, item.log_time, item.name, item.media_type, item.data
            )
    if not started:  # a header and nothing else
        header = scanner.header
        writer.start(header.profile if header else "", header.library if header else "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the MCAP file to check and salvage")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-o", "--output", type=Path, default=None, help="write here (default FILE.recovered.mcap)"
    )
    where.add_argument(
        "--in-place", action="store_true", help="replace FILE atomically (temp file + rename)"
    )


def run(args: argparse.Namespace) -> int:
    """Exit 0 intact, 3 recovered with a lost tail, 1 nothing recoverable."""
    report = recover(args.file, args.output, args.in_place)
    print(report.describe(), file=sys.stderr if report.exit_code == 1 else sys.stdout)
    return report.exit_code
