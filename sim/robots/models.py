"""Robot models, built with `mujoco.MjSpec` by each robot folder's `builder.py`.

Run: `python -c "from sim.robots.models import load_model; print(load_model('fetch', 'push').nu)"`

`load_model` compiles once per process and hands out copies, so randomization may edit a
model without touching anyone else's. The robot registry itself is `sim.robots` (no MuJoCo).
"""

from __future__ import annotations

import copy
import importlib
from functools import cache
from pathlib import Path
from types import ModuleType

import mujoco

from sim.errors import ModelCompileError, UnknownNameError
from sim.robots import get_robot


def scenes(robot: str) -> tuple[str, ...]:
    """The scene names `robot`'s builder can build."""
    return tuple(_builder(robot).SCENES)


def build_spec(robot: str, scene: str) -> mujoco.MjSpec:
    """A fresh, editable MjSpec of `robot` in `scene`."""
    valid = scenes(robot)
    if scene not in valid:
        raise UnknownNameError(f"{robot} scene", scene, valid)
    return _builder(robot).build_spec(scene)


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
    source = get_robot(robot).source
    return compile_spec(build_spec(robot, scene), f"{robot}/{scene} (from {source})")


def load_model(robot: str, scene: str) -> mujoco.MjModel:
    """A private copy of the compiled model of `robot` in `scene`."""
    return copy.copy(_compiled(robot, scene))


def _builder(robot: str) -> ModuleType:
    # By the folder convention: the registry names the robot, its folder holds builder.py.
    return importlib.import_module(get_robot(robot).builder_module)
