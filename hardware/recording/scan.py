"""`RecordScanner`: an MCAP file read record by record, up to its first damaged record.

The one sequential reader under `twinbridge bag recover` (salvage), resume (the verified
prefix) and `BagReader.verify` (a full read with every CRC checked). Unlike the `mcap`
package's readers it does not stop with an exception at a torn tail: it yields what is
sound (schemas, channels, messages of chunks whose CRC checks, metadata, attachments, in
file order) and then says where and why it stopped (`stop_offset`, `damage`).

Checked on the way: record lengths against the file size, each chunk's decompression and
uncompressed CRC, the data section CRC (DataEnd), the summary CRC (Footer) and the
closing magic.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.records import (
    Attachment,
    Channel,
    Chunk,
    DataEnd,
    Footer,
    Header,
    McapRecord,
    Message,
    Metadata,
    Schema,
)
from mcap.stream_reader import breakup_chunk

from sim.errors import TwinbridgeError

MAGIC = b"\x89MCAP0\r\n"
RECORD_PREFIX = struct.Struct("<BQ")
Item = Schema | Channel | Message | Metadata | Attachment
_READERS = {
    Opcode.HEADER: Header,
    Opcode.SCHEMA: Schema,
    Opcode.CHANNEL: Channel,
    Opcode.METADATA: Metadata,
    Opcode.ATTACHMENT: Attachment,
    Opcode.DATA_END: DataEnd,
    Opcode.FOOTER: Footer,
}


@dataclass
class ScanDamage:
    """Where a scan stopped before the end of a finished file, and why."""

    offset: int  # byte offset of the first record not used
    reason: str


class NotMcapError(TwinbridgeError, ValueError):
    """The file does not start with the MCAP magic and a Header record."""


class RecordScanner:
    """Iterate `items()` once; then `header`, `finished`, `damage`, `file_size` are set."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.header: Header | None = None
        self.finished = False  # footer and closing magic read, every CRC checked
        self.has_summary = False
        self.damage: ScanDamage | None = None
        self.file_size = self.path.stat().st_size
        self.sound_bytes = 0  # bytes of the file up to the end of the last sound record
        self._header_end = 0

    def items(self) -> Iterator[Item]:
        """Sound records in file order (chunks broken up into their records)."""
        with open(self.path, "rb") as f:
            crc = self._start(f)
            offset = self._header_end
            in_summary = False  # after DataEnd: repeated schemas/channels, indexes
            while True:
                prefix = f.read(RECORD_PREFIX.size)
                if not prefix:
                    self._damaged(offset, "the file ends without a footer (unfinished)")
                    return
                if len(prefix) < RECORD_PREFIX.size:
                    self._damaged(offset, "a record is cut off (truncated)")
                    return
                opcode, length = RECORD_PREFIX.unpack(prefix)
                if offset + RECORD_PREFIX.size + length > self.file_size:
                    self._damaged(offset, f"record {_name(opcode)} is cut off (truncated)")
                    return
                body = f.read(length)
                try:
                    record = _parse(opcode, body)
                    children = _children(record)
                except Exception as e:  # any malformed body is damage, reported not raised
                    self._damaged(offset, f"record {_name(opcode)} is damaged ({e})")
                    return
                if isinstance(record, DataEnd) and record.data_section_crc not in (0, crc):
                    self._damaged(offset, "the data section CRC does not match")
                    return
                if isinstance(record, Footer):
                    self._finish(f, record, offset)
                    return
                in_summary = in_summary or isinstance(record, DataEnd)
                crc = zlib.crc32(body, zlib.crc32(prefix, crc))
                offset += RECORD_PREFIX.size + length
                self.sound_bytes = offset
                if not in_summary:
                    yield from children

    def _start(self, f: BinaryIO) -> int:
        """Read the magic and the Header; the data section CRC of both."""
        if f.read(len(MAGIC)) != MAGIC:
            raise NotMcapError(f"{self.path}: not an MCAP file (no MCAP magic at the start)")
        prefix = f.read(RECORD_PREFIX.size)
        if len(prefix) < RECORD_PREFIX.size or prefix[0] != Opcode.HEADER:
            raise NotMcapError(f"{self.path}: not an MCAP file (no Header record)")
        length = RECORD_PREFIX.unpack(prefix)[1]
        body = f.read(length)
        if len(body) < length:
            raise NotMcapError(f"{self.path}: its MCAP Header record is cut off")
        try:
            self.header = Header.read(ReadDataStream(BytesIO(body)))
        except Exception as e:
            raise NotMcapError(f"{self.path}: not an MCAP file (damaged Header: {e})") from e
        self._header_end = len(MAGIC) + RECORD_PREFIX.size + length
        self.sound_bytes = self._header_end
        return zlib.crc32(body, zlib.crc32(prefix, zlib.crc32(MAGIC)))

    def _finish(self, f: BinaryIO, footer: Footer, offset: int) -> None:
        end = offset + RECORD_PREFIX.size + 20
        f.seek(end)
        if f.read(len(MAGIC)) != MAGIC or end + len(MAGIC) != self.file_size:
            self._damaged(offset, "the closing magic is missing or followed by other bytes")
            return
        if footer.summary_start and footer.summary_crc:
            f.seek(footer.summary_start)
            covered = f.read(end - 4 - footer.summary_start)
            if zlib.crc32(covered) != footer.summary_crc:
                self._damaged(offset, "the summary CRC does not match")
                return
        self.has_summary = bool(footer.summary_start)
        self.finished = True

    def _damaged(self, offset: int, reason: str) -> None:
        self.damage = ScanDamage(offset, reason)


def _parse(opcode: int, body: bytes) -> McapRecord | None:
    stream = ReadDataStream(BytesIO(body))
    if opcode == Opcode.MESSAGE:
        return Message.read(stream, len(body))
    if opcode == Opcode.CHUNK:
        return Chunk.read(stream)
    reader = _READERS.get(opcode)  # type: ignore[call-overload]
    return reader.read(stream) if reader is not None else None  # indexes, summary: skipped


def _children(record: McapRecord | None) -> list[Item]:
    if isinstance(record, Chunk):
        return [r for r in breakup_chunk(record, validate_crc=True) if isinstance(r, Item)]
    if isinstance(record, Schema | Channel | Message | Metadata | Attachment):
        return [record]
    return []


def _name(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"0x{opcode:02x}"
