"""The Shadow Dexterous Hand (E3M5, 24 joints, 20 position actuators) from gymnasium-robotics.

Scenes: "reach" (hand alone, fingertip goals), "block", "egg", "pen" (in-hand objects).
See README.md for provenance and every change made to the shipped model.
"""

from sim.robots import RobotModel, register_robot
from sim.robots.shadow_hand.builder import SCENES, build_spec

register_robot(
    RobotModel(
        name="shadow_hand",
        scenes=tuple(SCENES),
        build_spec=build_spec,
        source="gymnasium-robotics 1.4.2 envs/assets/hand (Apache-2.0)",
    )
)
