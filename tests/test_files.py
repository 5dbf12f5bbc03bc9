"""The one atomic writer: a reader sees the old file or the new one, never a torn one.

Run: `.venv/bin/python -m pytest -q tests/test_files.py`
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.files import Discard, atomic_open, atomic_write


def test_atomic_write_replaces_bytes_or_text_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    atomic_write(path, b"old")
    atomic_write(path, "new \u00b5")
    assert path.read_text(encoding="utf-8") == "new \u00b5"
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_an_error_or_a_discard_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "episode.npz"
    atomic_write(path, b"old")
    with pytest.raises(RuntimeError), atomic_open(path) as file:
        file.write(b"half")
        raise RuntimeError("crash mid-write")
    with atomic_open(path) as file:
        file.write(b"unwanted")
        raise Discard
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["episode.npz"]
