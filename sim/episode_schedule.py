"""`EpisodeSchedule`: when task_node asks the robot for its next episode, and why it waits.

Run: `python -c "from sim.episode_schedule import EpisodeSchedule as S; s = S(10.0, 0, 0.0); print(s.wait(1.5, 'e-stop'), s.wait(2.5, 'e-stop'))"`

No ROS: the node passes the time and what it sees of the graph. Before the first episode
it waits for a commander (a node that publishes `joint_command` and reads `goal`: a policy
or an operator, not any tool that joined) and `COMMANDER_SETTLE_S` more for it to discover
the robot, and for `report_readers` readers of its reports (the bringup's observer), so no
episode report goes unseen; after `timeout_s` it starts anyway (a commander outside the
graph; either way the episode is judged from its first answered state). A reset the
robot refuses is asked again `RETRY_S` later. A wait is said once it lasts `WAIT_LOG_S`
(a reset refused just before the robot's episode ends is normal, and not worth a line).
"""  # noqa: E501

from __future__ import annotations

COMMANDER_SETTLE_S = 2.0  # for the rest of the graph (robot, recorders) to discover it
RETRY_S = 0.1  # a refused reset is asked again this often
WAIT_LOG_S = 1.0
# A recorder (or view) becomes a reader only once it has met the graph; processes that
# import MuJoCo start slowly on a loaded machine: the first episode waits this long for it.
READERS_TIMEOUT_S = 30.0
READERS_SETTLE_S = 1.0


class EpisodeSchedule:
    """Start-up waits, retries and the reason no episode runs (times: monotonic s)."""

    def __init__(self, timeout_s: float, report_readers: int, now_s: float):
        self.timeout_s, self.report_readers = timeout_s, report_readers
        self.waiting = ""  # why no episode can start now ("" while one can)
        self.wait_said = False  # the wait lasted WAIT_LOG_S and was said
        self._started_s = now_s
        self._commander_seen_s: float | None = None
        self._readers_waived = False
        self._readers_seen_s: float | None = None
        self._retry_after_s = 0.0
        self._waiting_since_s = 0.0

    @property
    def said(self) -> str:
        """Why no episode runs, once that lasted long enough to be said ("" otherwise)."""
        return self.waiting if self.wait_said else ""

    def timed_out(self, now_s: float) -> bool:
        """`timeout_s` since start: a missing reset service is an error now."""
        return now_s - self._started_s > self.timeout_s

    def may_ask(self, now_s: float) -> bool:
        """Not within RETRY_S of a refused reset."""
        return now_s >= self._retry_after_s

    def refused(self, now_s: float, why: str) -> str | None:
        """The robot refused the reset: ask again RETRY_S later (see `wait`)."""
        self._retry_after_s = now_s + RETRY_S
        return self.wait(now_s, why)

    def wait(self, now_s: float, why: str) -> str | None:
        """No episode can start now, because `why`: the line to log once the wait has
        lasted WAIT_LOG_S, else None."""
        if not self.waiting:
            self._waiting_since_s, self.wait_said = now_s, False
        self.waiting = why
        if self.wait_said or now_s - self._waiting_since_s < WAIT_LOG_S:
            return None
        self.wait_said = True
        return f"waiting: {why}"

    def started(self) -> None:
        """An episode started: no wait any more."""
        self.waiting = ""

    def commander_ready(self, now_s: float, present: bool) -> bool:
        """Before the first episode: a commander up for COMMANDER_SETTLE_S, or none after
        `timeout_s`."""
        if not present:
            self._commander_seen_s = None
            return self.timed_out(now_s)
        if self._commander_seen_s is None:
            self._commander_seen_s = now_s
        return now_s - self._commander_seen_s >= COMMANDER_SETTLE_S

    def readers_ready(self, now_s: float, matched: int) -> tuple[bool, str]:
        """Before the first episode: (whether `report_readers` readers are matched or
        `timeout_s` passed, the line to log when starting without them)."""
        if not self.report_readers or self._readers_waived:
            return True, ""
        if matched >= self.report_readers:
            # Matched here is not yet matched at the reader (discovery is per side): a
            # report sent now could still be lost, so wait READERS_SETTLE_S more.
            if self._readers_seen_s is None:
                self._readers_seen_s = now_s
            return now_s - self._readers_seen_s >= READERS_SETTLE_S, ""
        self._readers_seen_s = None
        if now_s - self._started_s <= max(self.timeout_s, READERS_TIMEOUT_S):
            return False, ""
        self._readers_waived = True
        return True, (
            f"only {matched} of {self.report_readers} report readers after "
            f"{max(self.timeout_s, READERS_TIMEOUT_S)} s; starting anyway"
        )
