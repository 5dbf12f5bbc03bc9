"""Validation of joint commands and joint states arriving from outside (R12), without ROS.

The ROS adapters (ros_ws/adapters.py) copy a message's fields into plain Python values and
call these checks, so what a node accepts is decided here and tested without a DDS runtime.
The rules follow ros2_control's joint_trajectory_controller (`validate_trajectory_msg`) and
are stricter where it is lax: a zero stamp is rejected, not read as "now".

Each rejection is a `CommandRejected` whose `reason` is a short stable key (counted in
`diagnostics`) and whose message names the offending field and value.

R12: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.errors import TwinbridgeError


class CommandRejected(TwinbridgeError, ValueError):
    """A command or state that must not be applied; `reason` is a counter key."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class TrajectoryPoint:
    """One point of a JointTrajectory, in plain values."""

    positions: Sequence[float]
    velocities: Sequence[float]
    time_from_start_s: float


@dataclass(frozen=True)
class CommandRules:
    """What a receiver accepts: its command names, target limits, and stamp windows."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    max_age_s: float = 0.5  # stamps older than this (receiver clock) are stale
    max_future_s: float = 0.1  # stamps further ahead than this are from a wrong clock
    # ros2_control's `allow_partial_joints_goal`: by default a command names every command
    # joint; when allowed, a subset is accepted and the joints left out keep their target
    allow_partial: bool = False

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"CommandRules: duplicate command names in {self.names}")
        if np.shape(self.low) != (len(self.names),) or np.shape(self.high) != (len(self.names),):
            raise ValueError("CommandRules: low/high must have one value per command name")
        if not (self.max_age_s > 0 and self.max_future_s >= 0):
            raise ValueError("CommandRules: max_age_s must be > 0 and max_future_s >= 0")


def validate_trajectory(
    names: Sequence[str],
    points: Sequence[TrajectoryPoint],
    stamp_s: float,
    now_s: float,
    rules: CommandRules,
) -> dict[str, float]:
    """The targets (name -> position) of the trajectory's last point, or `CommandRejected`.

    Names must be known and unique, and name every command joint unless
    `rules.allow_partial` (then a subset is allowed); every point must
    have one finite position per name, velocities empty or of that size, strictly
    increasing non-negative times; the last point must end at rest; the stamp must be
    non-zero and within [now - max_age_s, now + max_future_s]; targets within limits.
    """
    _check_names(names, rules)
    _check_stamp(stamp_s, now_s, rules)
    _check_points(points, len(names))
    targets = dict(zip(names, (float(p) for p in points[-1].positions), strict=True))
    _check_limits(targets, rules)
    return targets


def _check_names(names: Sequence[str], rules: CommandRules) -> None:
    if len(names) == 0:
        raise CommandRejected("no_joints", "joint_names is empty")
    unknown = [n for n in names if n not in rules.names]
    if unknown:
        # A hostile message may carry a million names: the message stays short.
        shown = ", ".join(repr(n[:40]) for n in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise CommandRejected("unknown_joint", f"[{shown}]{more} not in {list(rules.names)}")
    if len(set(names)) != len(names):
        raise CommandRejected("duplicate_joint", f"joint_names repeat {_repeated(names)}")
    if len(names) < len(rules.names) and not rules.allow_partial:
        missing = [n for n in rules.names if n not in names]
        raise CommandRejected(
            "partial_joints",
            f"joint_names lacks {missing}; name every command joint "
            "(or set allow_partial_joints_goal)",
        )


def check_episode(stamp_ns: int, episode_start_ns: int) -> None:
    """A command answering a state from before the current episode's reset is for the
    previous episode: applying it would move the robot on a decision made for another scene."""
    if stamp_ns < episode_start_ns:
        raise CommandRejected(
            "previous_episode",
            f"header.stamp {stamp_ns * 1e-9:.3f} s answers a state from before this episode's "
            f"reset at {episode_start_ns * 1e-9:.3f} s",
        )


def _check_stamp(stamp_s: float, now_s: float, rules: CommandRules) -> None:
    if not math.isfinite(stamp_s) or stamp_s == 0.0:
        raise CommandRejected("zero_stamp", f"header.stamp {stamp_s} (a zero stamp is not 'now')")
    if stamp_s < now_s - rules.max_age_s:
        raise CommandRejected(
            "stale",
            f"header.stamp {stamp_s:.3f} s is {now_s - stamp_s:.3f} s old "
            f"(limit {rules.max_age_s} s)",
        )
    if stamp_s > now_s + rules.max_future_s:
        raise CommandRejected(
            "future_stamp",
            f"header.stamp {stamp_s:.3f} s is {stamp_s - now_s:.3f} s ahead "
            f"of this node's clock (limit {rules.max_future_s} s); are clocks in sync?",
        )


def _check_points(points: Sequence[TrajectoryPoint], size: int) -> None:
    if len(points) == 0:
        raise CommandRejected("no_points", "the trajectory has no points")
    previous = -math.inf
    for index, point in enumerate(points):
        if len(point.positions) != size:
            raise CommandRejected(
                "size_mismatch",
                f"point {index} has {len(point.positions)} positions for {size} joint names",
            )
        if len(point.velocities) not in (0, size):
            raise CommandRejected(
                "size_mismatch",
                f"point {index} has {len(point.velocities)} velocities for {size} joint names",
            )
        values = [*point.positions, *point.velocities, point.time_from_start_s]
        if not all(math.isfinite(v) for v in values):
            raise CommandRejected("non_finite", f"point {index} holds NaN or inf")
        if point.time_from_start_s < 0 or point.time_from_start_s <= previous:
            raise CommandRejected(
                "time_not_increasing",
                f"point {index} time_from_start "
                f"{point.time_from_start_s} s does not increase from {previous} s",
            )
        previous = point.time_from_start_s
    if any(v != 0.0 for v in points[-1].velocities):
        raise CommandRejected("end_velocity", "the last point must end at rest (velocity 0)")


def _check_limits(targets: dict[str, float], rules: CommandRules) -> None:
    for name, value in targets.items():
        index = rules.names.index(name)
        if not rules.low[index] <= value <= rules.high[index]:
            raise CommandRejected(
                "out_of_limits",
                f"{name} target {value} outside [{rules.low[index]}, {rules.high[index]}]",
            )


def validate_joint_state(
    names: Sequence[str],
    positions: Sequence[float],
    velocities: Sequence[float],
    expected: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities in `expected` order, or `CommandRejected`.

    The message may list extra joints (ignored) and in any order; every expected joint
    must be present once, with finite values; velocities may be empty (taken as zero).
    """
    if len(positions) != len(names) or len(velocities) not in (0, len(names)):
        raise CommandRejected(
            "size_mismatch",
            f"{len(names)} names, {len(positions)} positions, {len(velocities)} velocities",
        )
    if len(set(names)) != len(names):
        raise CommandRejected("duplicate_joint", f"name repeats {_repeated(names)}")
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in expected if name not in index]
    if missing:
        raise CommandRejected("missing_joint", f"joint_states lacks {missing}")
    order = [index[name] for name in expected]
    pos = np.asarray(positions, dtype=np.float64)[order]
    vel = (
        np.asarray(velocities, dtype=np.float64)[order]
        if len(velocities)
        else np.zeros(len(order))
    )
    if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
        raise CommandRejected("non_finite", "joint_states holds NaN or inf")
    return pos, vel


def _repeated(names: Sequence[str]) -> list[str]:
    """Up to five repeated names, each cut to 40 characters (messages stay short)."""
    counts = Counter(names)
    return sorted(name[:40] for name, count in counts.items() if count > 1)[:5]
