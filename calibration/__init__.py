"""Twinbridge calibration: measuring the real robot so the twin can load it as its nominal model.

It will hold camera calibration (intrinsics, distortion and poses, in ROS camera_info
YAML), hand-eye calibration, and dynamics identification (parameter values fitted to
recorded episodes); the twin loads these files, and randomization ranges start from them.
The emulator's true parameters are what these estimates are measured against.
"""
