"""`twinbridge bag info`: what a bag holds (session, topics, episodes), optionally verified.

Run: `twinbridge bag info out/demo.mcap [--verify]`
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hardware.recording.reader import BagReader


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a finished MCAP bag")
    parser.add_argument(
        "--verify", action="store_true", help="read every record and check every CRC"
    )


def run(args: argparse.Namespace) -> int:
    reader = BagReader(args.file)
    start, end = reader.time_range_ns
    session = reader.session()
    print(f"file:     {args.file} ({args.file.stat().st_size / 2**20:.1f} MiB)")
    print(f"recorded: robot {session.get('robot', '?')!r}, task {session.get('task', '?')!r}, "
          f"by {session.get('recorder', '?')} ({len(reader.sessions())} session(s))")  # fmt: skip
    print(f"messages: {reader.message_count} over {(end - start) * 1e-9:.3f} s")
    for topic, info in sorted(reader.topics().items()):
        print(f"  {topic:40} {info.type:38} {info.count:>9}")
    episodes = reader.episodes()
    print(f"episodes: {len(episodes)}")
    for span in episodes:
        outcome = {True: "success", False: "failure", None: "incomplete"}[span.success]
        length = f"{(span.end_ns - span.start_ns) * 1e-9:.2f} s" if span.end_ns else "-"
        print(f"  {span.index:>4} {outcome:10} {length:>9}  seed {span.fields.get('seed', '?')}")
    if args.verify:
        print(f"verified: {reader.verify()} messages, every CRC checks")
    return 0
