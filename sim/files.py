"""Writing policy-side files so that a reader never sees half of one.

Run: `python -c "from pathlib import Path; from sim.files import atomic_write; atomic_write(Path('/tmp/x'), b'1')"`
"""  # noqa: E501

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename over `path` (atomic on POSIX): a
    crash leaves the old file or the new one, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
