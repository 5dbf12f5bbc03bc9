"""arm3: a small three-joint arm (base yaw, shoulder, elbow) built from MjSpec primitives.

Scene: "reach" (the arm on a pedestal over a floor, a goal marker). Its task, arm3-reach, is
declared in robot.yaml. See README.md for how it is built, its limits and why.
"""
