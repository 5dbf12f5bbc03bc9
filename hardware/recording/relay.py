"""`EpisodeRelay`: task_node's episode statuses turned into a bag's episode markers.

task_node reports `task_node/episode_start` and `task_node/episode` on `diagnostics`
(values as strings). The bag numbers its episodes itself, 0.. in the file (also after a
resume, when task_node starts again from 0) and keeps task_node's index as
`source_episode`. A start while an episode is open (its end was lost) first closes that
one as a failure with `aborted: true`; an end with no open episode (the recorder started
mid-episode) is counted and dropped, so the bag never holds half an episode. Until the
recorder is `ready` (it has met the robot's publishers) a start is counted and dropped
too, with its end: an episode whose first states may have gone unrecorded is not begun.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from hardware.recording.episodes import marker_from_status
from hardware.recording.writer import BagWriter


class EpisodeRelay:
    """Feeds `writer`'s episode markers from diagnostics statuses; counts the anomalies."""

    def __init__(self, writer: BagWriter):
        self.writer = writer
        self.counters: Counter[str] = Counter()
        self.ready = True  # the recorder node clears it until it has met the graph

    def on_status(self, name: str, values: Mapping[str, str], log_time_ns: int) -> None:
        marker = marker_from_status(name, values)
        if marker is None:
            return
        event, source_index, fields = marker
        fields["source_episode"] = source_index
        writer = self.writer
        if event == "start" and not self.ready:
            self.counters["episodes_started_before_ready"] += 1
        elif event == "start":
            if writer.open_episode is not None:
                self.counters["episodes_without_end"] += 1
                writer.end_episode(writer.open_episode, log_time_ns, False, aborted=True)
            writer.start_episode(writer.next_episode, log_time_ns, **fields)
        elif writer.open_episode is not None:
            success = bool(fields.pop("success", False))
            writer.end_episode(writer.open_episode, log_time_ns, success, **fields)
        else:
            self.counters["episode_ends_without_start"] += 1
