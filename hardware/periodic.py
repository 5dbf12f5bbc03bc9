"""`PeriodicLoop`: a control cycle on its own thread, paced by the monotonic clock.

Run: `python -c "import time; from hardware.periodic import PeriodicLoop as P; p = P(0.01, int)
p.start(); time.sleep(0.5); p.stop(); print(p.lateness_ms())"`

A driver's read/write cycle must not wait behind whatever else its process does (a flood of
incoming commands, service calls, diagnostics): ros2_control runs its update loop on a
thread of its own for that reason, and so does driver_node. A late cycle runs once, never a
burst of catch-up cycles (the deadlines skip ahead), and every lateness is recorded, so the
loop's p99 and overruns are in `diagnostics` (R15).

R15: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np


class PeriodicLoop:
    """Calls `step()` every `period_s` on a daemon thread until `stop()`."""

    def __init__(self, period_s: float, step: Callable[[], None], keep: int = 6000):
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.period_s = period_s
        self.step = step
        self.overruns = 0  # cycles that started more than one period late
        self._lateness_s: deque[float] = deque(maxlen=keep)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("PeriodicLoop already started")
        self._thread = threading.Thread(target=self._run, name="control-cycle", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop after the current cycle; returns once the thread has ended."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            late = started - deadline
            self._lateness_s.append(max(0.0, late))
            if late > self.period_s:
                self.overruns += 1
                deadline += self.period_s * int(late / self.period_s)  # skip, never burst
            self.step()
            # Back on the grid, but never sooner than half a period after a late cycle:
            # the device then sees at most one command per period, give or take jitter.
            deadline = max(deadline + self.period_s, started + 0.5 * self.period_s)
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def lateness_ms(self) -> dict[str, float]:
        """p50 / p99 / max of how late cycles started, over the last `keep` cycles."""
        if not self._lateness_s:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        late = np.array(self._lateness_s) * 1e3
        return {
            "p50": float(np.percentile(late, 50)),
            "p99": float(np.percentile(late, 99)),
            "max": float(late.max()),
        }
