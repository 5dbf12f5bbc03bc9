"""The QoS of every stream in the topic contract, chosen per stream and declared in one place.

Why these choices (README "Topic contract" has the table):
- Control streams (`joint_states`, `object_pose`, `joint_command`) are RELIABLE and shallow:
  the loop acts on the newest message, a lost one is a missed control step, and on loopback
  reliability costs nothing measurable for small messages. They declare a deadline of
  3 control periods and an AUTOMATIC liveliness lease of the same length (R22): a reader
  that misses it holds.
- `goal` and `estop_state` are RELIABLE + TRANSIENT_LOCAL: a node that starts late still
  gets the current goal and the current e-stop state. `estop_state` is also re-published as
  a heartbeat, with a deadline, so a silent e-stop source is itself a reason to hold.
- Camera images are BEST_EFFORT, depth 1 (the newest frame is the only useful one; a reader
  that falls behind must not stall the twin). They need shared memory with a segment larger
  than a camera tick: the sim bringup's Fast DDS profile (config/fastdds_localhost.xml)
  loses 0 % where LOCALHOST's default 512 KiB segment loses most frames and UDP drops
  fragmented best-effort images (bench/control_loop.py, README).

R22: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import copy

from rclpy.duration import Duration
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSCompatibility,
    QoSProfile,
    ReliabilityPolicy,
    qos_check_compatible,
)

# Deadline and liveliness lease, in control periods, for control and e-stop streams (R22).
DEADLINE_PERIODS = 3.0
ESTOP_HEARTBEAT_HZ = 10.0


def control_qos(control_rate_hz: float) -> QoSProfile:
    """joint_states, object_pose and joint_command at `control_rate_hz`."""
    return _watched(control_rate_hz, depth=5, durability=DurabilityPolicy.VOLATILE)


def latched_qos() -> QoSProfile:
    """`goal`: the newest value, delivered to late joiners."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def estop_qos() -> QoSProfile:
    """`estop_state`: latched, heartbeat at ESTOP_HEARTBEAT_HZ, deadline 3 heartbeats."""
    return _watched(ESTOP_HEARTBEAT_HZ, depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _watched(rate_hz: float, depth: int, durability: DurabilityPolicy) -> QoSProfile:
    """Reliable, with a deadline and an AUTOMATIC liveliness lease of DEADLINE_PERIODS."""
    window = _periods(rate_hz, DEADLINE_PERIODS)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=durability,
        deadline=window,
        liveliness=LivelinessPolicy.AUTOMATIC,
        liveliness_lease_duration=window,
    )


def image_qos() -> QoSProfile:
    """`camera_<n>/image_raw` and `camera_info`: newest frame only, never blocks the writer."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def diagnostics_qos() -> QoSProfile:
    """`diagnostics`: reliable, a few messages deep (counters, episode results)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=50,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


# The policies a reader and a writer must agree on, by their QoSProfile field names; upper
# case, each is rclpy's QoSPolicyKind name.
MATCHED_POLICIES = (
    "reliability",
    "durability",
    "deadline",
    "liveliness",
    "liveliness_lease_duration",
)


def incompatible_policies(publisher: QoSProfile, subscription: QoSProfile) -> list[str]:
    """The policies (QoSPolicyKind names) on which `subscription` cannot match `publisher`.

    Each is tested alone with rmw's own rules: a reader with the writer's profile matches
    it, so a reader that takes one policy from `subscription` fails only on that one."""
    names = []
    for field in MATCHED_POLICIES:
        probe = copy.copy(publisher)
        setattr(probe, field, getattr(subscription, field))
        if qos_check_compatible(publisher, probe)[0] == QoSCompatibility.ERROR:
            names.append(field.upper())
    return names


def _periods(rate_hz: float, periods: float) -> Duration:
    if not rate_hz > 0:
        raise ValueError(f"a QoS deadline needs a positive rate, got {rate_hz} Hz")
    return Duration(nanoseconds=int(periods / rate_hz * 1e9))
