"""The Fetch robot's 7-DoF arm and parallel gripper, from gymnasium-robotics' assets.

Scenes: "reach", "push", "slide", "pick_and_place" (the four Fetch tasks' tables and objects).
See README.md for provenance and every change made to the shipped model.
"""

from sim.robots import RobotModel, register_robot
from sim.robots.fetch.builder import SCENES, build_spec

register_robot(
    RobotModel(
        name="fetch",
        scenes=tuple(SCENES),
        build_spec=build_spec,
        source="gymnasium-robotics envs/assets/fetch (Apache-2.0)",
    )
)
