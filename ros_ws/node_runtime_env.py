"""Environment contract between `twinbridge sim` and the node processes it supervises
(no rclpy here: the supervisor imports it before any ROS code; and nothing heavy at import
time, so a node can call `exit_quietly_while_starting` before its own imports)."""

from __future__ import annotations

import os
import signal
from typing import Any

# Set by `twinbridge sim` to its pid: a node started with it stops when the supervisor dies.
SUPERVISOR_PID_VARIABLE = "TWINBRIDGE_SUPERVISOR_PID"


def stop_with_supervisor() -> bool:
    """In a node: arrange a SIGINT (clean shutdown) for when the supervisor dies. False if
    it is already gone (the node must not start as an orphan)."""
    supervisor = os.environ.get(SUPERVISOR_PID_VARIABLE)
    if supervisor is None:
        return True  # started by ros2 launch or by hand: nothing to follow
    from sim.process import die_with_parent  # imports `sim`: MuJoCo, Gymnasium

    die_with_parent(signal.SIGINT)
    return str(os.getppid()) == supervisor


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def exit_quietly_while_starting() -> None:
    """In a node started by `twinbridge sim`, before its imports (seconds on a busy host):
    a SIGINT or SIGTERM then ends it at once with exit code 0, where Python's default
    prints a KeyboardInterrupt traceback from inside some import (and an exception raised
    in a C extension's initialisation becomes an ImportError). Nothing is open yet, so
    nothing is lost. A supervisor may start the node with these signals blocked, so that
    one sent even before this runs waits for it; they are unblocked here. `run_node`
    installs its own handlers once the node is built."""
    if SUPERVISOR_PID_VARIABLE in os.environ:
        for signum in STOP_SIGNALS:
            signal.signal(signum, _exit_quietly)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _exit_quietly(signum: int, frame: Any) -> None:
    os._exit(0)
