"""The Fetch robot's 7-DoF arm and parallel gripper, from gymnasium-robotics' assets.

Scenes: "reach", "push", "slide", "pick_and_place" (the four Fetch tasks' tables and objects).
See README.md for provenance and every change made to the shipped model.
"""
