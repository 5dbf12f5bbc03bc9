"""Walking the arm through a calibration's poses: one joint command per control tick, slowly,
stopping at each pose until the arm stands still, then asking for a capture.

Run: `twinbridge calibrate cameras --robot fetch --hardware emulator` (ros_ws/calibration_client.py
feeds this core the measured joints and publishes its commands to driver_node).

The commands go through the driver and its safety layer like a policy's (limits, rate
limiter, watchdog, e-stop); this core adds a slow, straight joint-space path between poses
(`speed_rad_s` for the joint that moves most, all joints arriving together) and a target
that is never outside the robot's limits. A pose the arm does not reach in `pose_timeout_s`
(the safety layer clamped it, or something blocked the arm) is skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from sim.errors import ConfigError


@dataclass(frozen=True)
class MotionConfig:
    """How the arm moves between poses and when it counts as standing still."""

    speed_rad_s: float = 0.4  # the fastest joint, between poses (the Fetch allows 1.3-2.3)
    tolerance_rad: float = 0.01  # measured within this of the pose: arrived
    still_rad_s: float = 0.02  # every joint slower than this: standing still
    settle_s: float = 0.4  # arrived and still this long before a capture
    pose_timeout_s: float = 6.0  # not arrived and still by then: the pose is skipped
    capture_timeout_s: float = 3.0  # no image from every camera by then: skipped
    limit_margin_rad: float = 0.02  # targets kept this far inside the robot's limits

    def __post_init__(self) -> None:
        for name in ("speed_rad_s", "tolerance_rad", "still_rad_s", "pose_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"calibration motion: {name} must be > 0")


class Phase(Enum):
    MOVING = "moving"
    SETTLING = "settling"
    CAPTURING = "capturing"
    RETURNING = "returning"
    DONE = "done"


class PoseSequencer:
    """The commands of a calibration run through `waypoints` (arm joints, and whether to
    capture there; calibration/poses.py `PoseGenerator.route` plans them clear of the
    table), ending where the arm started. `tick(now, measured, speed)` gives the command to
    publish (every command joint), and `phase` says what it waits for; the caller reports a
    finished capture with `captured()` (or a failed one with `skip()`)."""

    def __init__(
        self,
        start_command: np.ndarray,
        arm: np.ndarray,
        waypoints: list[tuple[np.ndarray, bool]],
        low: np.ndarray,
        high: np.ndarray,
        rate_hz: float,
        config: MotionConfig | None = None,
    ):
        self.config = config or MotionConfig()
        self._start = np.asarray(start_command, dtype=np.float64).copy()
        self._command = self._start.copy()
        self._arm = np.asarray(arm, dtype=np.intp)  # the command indices the poses set
        margin = self.config.limit_margin_rad
        self._low, self._high = np.asarray(low) + margin, np.asarray(high) - margin
        self._poses = [np.asarray(joints, dtype=np.float64) for joints, _ in waypoints]
        self._capture_at = [capture for _, capture in waypoints]
        self._step = self.config.speed_rad_s / rate_hz
        self.index = 0  # the waypoint being visited
        self.skipped: list[int] = []
        self.captured_poses: list[int] = []
        self.phase = Phase.MOVING if self._poses else Phase.RETURNING
        self._target = self._aim(0)
        self._since = 0.0  # when the current phase began
        self._still_since: float | None = None  # when the arm last began standing still

    @property
    def poses(self) -> int:
        """The captures planned."""
        return sum(self._capture_at)

    def tick(self, now_s: float, measured_arm: np.ndarray, speed_arm: np.ndarray) -> np.ndarray:
        """The command for this control tick."""
        if self.phase in (Phase.MOVING, Phase.RETURNING):
            self._move_toward_target(now_s)
        elif self.phase == Phase.SETTLING:
            self._settle(now_s, measured_arm, speed_arm)
        elif self.phase == Phase.CAPTURING and now_s - self._since > self.config.capture_timeout_s:
            self.skip()
        return self._command.copy()

    def captured(self) -> None:
        """The capture at the current pose is recorded: on to the next pose."""
        self.captured_poses.append(self.index)
        self._next()

    def skip(self) -> None:
        """The current pose gave no capture (not reached, or no images): on to the next."""
        if self.phase != Phase.RETURNING:
            self.skipped.append(self.index)
        self._next()

    def _move_toward_target(self, now_s: float) -> None:
        delta = self._target - self._command
        largest = float(np.max(np.abs(delta))) if delta.size else 0.0
        if largest <= self._step:
            self._command[:] = self._target
            if self.phase == Phase.RETURNING:
                self.phase = Phase.DONE
            elif not self._capture_at[self.index]:  # a detour's waypoint: straight on
                self._next()
            else:
                self.phase, self._since, self._still_since = Phase.SETTLING, now_s, None
            return
        self._command += delta * (self._step / largest)  # straight, all joints together

    def _settle(self, now_s: float, measured: np.ndarray, speed: np.ndarray) -> None:
        arrived = np.all(np.abs(measured - self._target[self._arm]) <= self.config.tolerance_rad)
        still = np.all(np.abs(speed) <= self.config.still_rad_s)
        if not (arrived and still):
            self._still_since = None
            if now_s - self._since > self.config.pose_timeout_s:
                self.skip()
            return
        if self._still_since is None:
            self._still_since = now_s
        if now_s - self._still_since >= self.config.settle_s:
            self.phase, self._since = Phase.CAPTURING, now_s

    def _next(self) -> None:
        if self.phase == Phase.RETURNING:
            return
        self.index += 1
        if self.index < len(self._poses):
            self.phase, self._target = Phase.MOVING, self._aim(self.index)
        else:
            self.phase, self._target = Phase.RETURNING, self._start.copy()

    def _aim(self, index: int) -> np.ndarray:
        """The full command at pose `index`: its arm joints, the others as they started,
        inside the limits."""
        target = self._start.copy()
        if index < len(self._poses):
            target[self._arm] = self._poses[index]
        return np.clip(target, self._low, self._high)
