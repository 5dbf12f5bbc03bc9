"""Measurements as the topic contract carries them, as plain data (no ROS, no physics engine).

Run: `python -c "from sim.contract.samples import ObjectPose; print(ObjectPose.__doc__)"`
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObjectPose:
    """A measured object pose: position (m, world) and orientation (w, x, y, z), stamped in
    integer nanoseconds (a float of seconds since 1970 cannot hold nanoseconds)."""

    position_m: np.ndarray
    quaternion_wxyz: np.ndarray
    stamp_ns: int

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9


@dataclass(frozen=True)
class JointStateSample:
    """One joint_states message's content, in the robot's `joints` order (robot.yaml)."""

    stamp_ns: int
    names: tuple[str, ...]
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9
