"""Twinbridge simulation: MuJoCo twin of the Fetch arm and Shadow hand, and goal-conditioned tasks.

Importing this package registers the Gymnasium ids `twinbridge/<Task>-v0` (see `sim.tasks`).
"""

import os

# Headless rendering: MuJoCo reads MUJOCO_GL when it is first imported, so decide it here.
os.environ.setdefault("MUJOCO_GL", "egl")

from sim.errors import (
    ControlError,
    ModelCompileError,
    PhysicsError,
    RenderError,
    StateError,
    TwinbridgeError,
    UnknownNameError,
)
from sim.tasks import TASKS, make_task_env, register_all
from sim.twin import Twin

register_all()

__all__ = [
    "TASKS",
    "ControlError",
    "ModelCompileError",
    "PhysicsError",
    "RenderError",
    "StateError",
    "Twin",
    "TwinbridgeError",
    "UnknownNameError",
    "make_task_env",
]
