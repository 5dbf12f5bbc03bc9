"""The Shadow Dexterous Hand (E3M5, 24 joints, 20 position actuators) from gymnasium-robotics.

Scenes: "reach" (hand alone, fingertip goals), "block", "egg", "pen" (in-hand objects).
See README.md for provenance and every change made to the shipped model.
"""
