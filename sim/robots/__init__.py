"""Robot models, built with `mujoco.MjSpec`, looked up by robot and scene name.

Each robot lives in `sim/robots/<robot>/` (builder code, our own XML, provenance README)
and registers itself here. `load_model` compiles once per process and hands out copies, so
randomization may edit a model without touching anyone else's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import mujoco

from sim.errors import ModelCompileError, UnknownNameError


@dataclass(frozen=True)
class RobotModel:
    """One robot: its scenes and the function that builds a scene's MjSpec."""

    name: str
    scenes: tuple[str, ...]
    build_spec: Callable[[str], mujoco.MjSpec]
    source: str  # where the geometry comes from, for error messages


_ROBOTS: dict[str, RobotModel] = {}


def register_robot(robot: RobotModel) -> None:
    """Add a robot to the registry (called by each robot package on import)."""
    _ROBOTS[robot.name] = robot


def robots() -> dict[str, RobotModel]:
    """All registered robots by name."""
    _import_builtin_robots()
    return dict(_ROBOTS)


def get_robot(name: str) -> RobotModel:
    """The registered robot called `name`, or an error listing the valid names."""
    registry = robots()
    if name not in registry:
        raise UnknownNameError("robot", name, registry)
    return registry[name]


def build_spec(robot: str, scene: str) -> mujoco.MjSpec:
    """A fresh, editable MjSpec of `robot` in `scene`."""
    entry = get_robot(robot)
    if scene not in entry.scenes:
        raise UnknownNameError(f"{robot} scene", scene, entry.scenes)
    return entry.build_spec(scene)


def spec_from_file(path: str | Path) -> mujoco.MjSpec:
    """Parse an MJCF file into an editable MjSpec; a parse error names the file."""
    try:
        return mujoco.MjSpec.from_file(str(path))
    except Exception as e:
        raise ModelCompileError(f"MJCF {path} failed to load: {e}") from e


def compile_spec(spec: mujoco.MjSpec, what: str) -> mujoco.MjModel:
    """Compile `spec`, turning MuJoCo's error into one that names the model and its source."""
    try:
        return spec.compile()
    except Exception as e:  # MuJoCo raises ValueError with its own message
        raise ModelCompileError(f"{what} failed to compile: {e}") from e


@cache
def _compiled(robot: str, scene: str) -> mujoco.MjModel:
    entry = get_robot(robot)
    return compile_spec(build_spec(robot, scene), f"{robot}/{scene} (from {entry.source})")


def load_model(robot: str, scene: str) -> mujoco.MjModel:
    """A private copy of the compiled model of `robot` in `scene`."""
    return copy.copy(_compiled(robot, scene))


def _import_builtin_robots() -> None:
    # Imported lazily: each robot package calls register_robot when imported.
    import sim.robots.fetch
    import sim.robots.shadow_hand  # noqa: F401
