"""Locate the MJCF and meshes shipped by gymnasium-robotics without importing its env code.

gymnasium-robotics is a dependency for its assets only: its environments do not run on
MuJoCo >= 3.17, and importing the package would register them. We find its folder on disk.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from sim.errors import ModelCompileError


@cache
def gymnasium_robotics_assets() -> Path:
    """The `envs/assets` folder of the installed gymnasium-robotics distribution."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModelCompileError(
            "gymnasium-robotics is not installed; its MJCF assets are needed to build the "
            "Fetch and Shadow-hand models. Install the project with `pip install -e .`."
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets"
    if not root.is_dir():
        raise ModelCompileError(f"gymnasium-robotics is installed but {root} is missing")
    return root


def asset_file(relative: str) -> Path:
    """Path of one shipped asset file, e.g. `fetch/push.xml`, with a clear error if missing."""
    path = gymnasium_robotics_assets() / relative
    if not path.is_file():
        raise ModelCompileError(
            f"asset {relative!r} not found under {gymnasium_robotics_assets()}"
        )
    return path
