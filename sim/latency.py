"""`LatencyTracker`: state-to-command latency and deadline misses of a control loop.

The twin (or a driver) notes the wall time at which it publishes each state; a command
answers the state whose stamp it carries. Latency is measured on one host's monotonic
clock, so it is exact whether the loop runs in real time or in sim time. While the e-stop
is latched no answer is due (commanders hold): that time counts no deadline miss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """Figures for `twinbridge sim --json` and `diagnostics` (milliseconds)."""

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    deadline_misses: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "p50": round(self.p50_ms, 3),
            "p99": round(self.p99_ms, 3),
            "max": round(self.max_ms, 3),
        }


class LatencyTracker:
    """Pairs published state stamps with the commands that answer them."""

    def __init__(self, deadline_s: float, keep: int = 256):
        self.deadline_s = deadline_s
        self._pending: dict[int, float] = {}  # state stamp (ns) -> wall time published
        self._keep = keep
        self._latencies_s: list[float] = []
        self.deadline_misses = 0
        self._armed = False  # misses count from the first answer on (not while starting)

    def published(self, stamp_ns: int, wall_s: float, awaited: bool = True) -> None:
        """A state stamped `stamp_ns` left at `wall_s`; unanswered old states become misses.

        `awaited=False`: no answer is due (the e-stop is latched, so commanders hold): the
        states in flight are forgotten and misses count again from the next answer on."""
        if not awaited:
            self.pause()
            return
        for old, sent in list(self._pending.items()):
            if wall_s - sent > self.deadline_s:
                del self._pending[old]
                self.deadline_misses += int(self._armed)
        if len(self._pending) >= self._keep:
            self._pending.pop(next(iter(self._pending)))
        self._pending[stamp_ns] = wall_s

    def answered(self, stamp_ns: int, wall_s: float) -> float | None:
        """A command for the state stamped `stamp_ns` arrived at `wall_s`: its latency
        (None for a state not waiting for an answer)."""
        sent = self._pending.pop(stamp_ns, None)
        if sent is None:
            return None
        if not self._armed:  # states before the first answer belong to start-up
            self._armed = True
            self._pending = {k: v for k, v in self._pending.items() if k > stamp_ns}
        latency = wall_s - sent
        if latency > self.deadline_s:
            self.deadline_misses += 1
        self._latencies_s.append(latency)
        return latency

    def pause(self) -> None:
        """No answers are due (an e-stop): forget the states in flight and count no miss
        until the next answer, as at start-up (a commander needs a moment to resume)."""
        self._pending.clear()
        self._armed = False

    def forget_pending(self) -> None:
        """States that no longer need an answer (the episode was reset)."""
        self._pending.clear()

    def summary(self) -> LatencySummary:
        if not self._latencies_s:
            return LatencySummary(
                0, float("nan"), float("nan"), float("nan"), self.deadline_misses
            )
        ms = np.asarray(self._latencies_s) * 1e3
        return LatencySummary(
            samples=len(ms),
            p50_ms=float(np.percentile(ms, 50)),
            p99_ms=float(np.percentile(ms, 99)),
            max_ms=float(ms.max()),
            deadline_misses=self.deadline_misses,
        )
