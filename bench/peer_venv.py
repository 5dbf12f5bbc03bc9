"""Separate venvs for the peers the benchmarks compare against, built on first use.

Each peer pins its own packages (e.g. MuJoCo 3.3.7 for Gymnasium-Robotics' env code), so it
lives in its own venv under `bench/`, marked with the requirement list it was built from:
a venv whose list differs is rebuilt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


class PeerVenvError(RuntimeError):
    """The peer venv cannot be built (no python3.11, no network, a pin that does not exist)."""


def ensure_venv(venv: Path, requirements: tuple[str, ...], minutes: str = "~1 min") -> Path:
    """The venv's python, creating the venv with `requirements` if it is missing or stale."""
    python = venv / "bin" / "python"
    marker = venv / ".twinbridge-requirements"
    wanted = " ".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    base = shutil.which("python3.11") or (
        sys.executable if sys.version_info[:2] == (3, 11) else None
    )
    if base is None:
        raise PeerVenvError(f"python3.11 not found; it is needed for the peer venv {venv}")
    print(f"creating {venv} with {wanted} (first run only, {minutes})", file=sys.stderr)
    try:
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *requirements], check=True)
    except subprocess.CalledProcessError as e:
        raise PeerVenvError(f"could not create the peer venv {venv}: {e}") from e
    marker.write_text(wanted)
    return python
