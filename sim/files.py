"""The one way Twinbridge replaces a file, so that a reader never sees half of one.

Run: `python -c "from sim.files import atomic_write; atomic_write('/tmp/x.json', '{}')"`

Cards, ONNX graphs, checkpoints, dataset episodes, recovered bags and the e-stop latch file
all go through `atomic_open` (streaming) or `atomic_write` (whole contents): a temporary
sibling is written, fsynced, renamed over the target, and the directory is fsynced, so a
crash or power loss leaves the old file or the new one, never a torn or missing one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class Discard(Exception):
    """Raise inside `atomic_open` to keep the old file: the temporary one is removed."""


@contextmanager
def atomic_open(path: Path | str) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` durably when the block ends normally; on an
    exception (or `Discard`, which is not re-raised) `path` is left as it was."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except Discard:
        temporary.unlink(missing_ok=True)
        return
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Replace `path` with `data` (str is written as UTF-8) atomically and durably."""
    with atomic_open(path) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)


def fsync_directory(directory: Path | str) -> None:
    """Make a rename in `directory` survive power loss (POSIX keeps names in the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
