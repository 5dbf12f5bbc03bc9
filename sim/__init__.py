"""Twinbridge simulation: the MuJoCo twin, its robots, tasks and randomization, and the base
every other package builds on (`sim.errors`, `sim.files`, `sim.config_loader`, `sim.contract`).

Importing `sim` itself loads nothing heavy: the robot side imports `sim.robots` and
`sim.contract` without a physics engine. `import sim.envs` registers the Gymnasium ids
`twinbridge/<Task>-v0`.
"""

import os

# Headless rendering: MuJoCo reads MUJOCO_GL when it is first imported, so decide it here.
os.environ.setdefault("MUJOCO_GL", "egl")
