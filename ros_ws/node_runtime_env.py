"""Environment contract between `twinbridge sim` and the node processes it supervises
(no rclpy here: the supervisor imports it before any ROS code)."""

from __future__ import annotations

import os
import signal

from sim.process import die_with_parent

# Set by `twinbridge sim` to its pid: a node started with it stops when the supervisor dies.
SUPERVISOR_PID_VARIABLE = "TWINBRIDGE_SUPERVISOR_PID"


def stop_with_supervisor() -> bool:
    """In a node: arrange a SIGINT (clean shutdown) for when the supervisor dies. False if
    it is already gone (the node must not start as an orphan)."""
    supervisor = os.environ.get(SUPERVISOR_PID_VARIABLE)
    if supervisor is None:
        return True  # started by ros2 launch or by hand: nothing to follow
    die_with_parent(signal.SIGINT)
    return str(os.getppid()) == supervisor
