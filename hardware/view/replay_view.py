"""`twinbridge replay --view`: replayed episodes in the live view, without ROS.

Each replayed step is logged at its recorded state's stamp: the replayed joints (drawn
through the mirror, as a robot's measurements are), the recorded command and applied
command, the object, the goal and the episode's outcome; the page's timeline then scrubs
through every episode. The view stays up after the replay until Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

from hardware.recording.alignment import RecordedEpisode
from hardware.recording.episodes import END_STATUS, START_STATUS
from hardware.view.config import LiveViewConfig
from hardware.view.live_view import LiveView


def serve_replay_view(episodes: Sequence[RecordedEpisode], web_port: int) -> LiveView | None:
    if not episodes:
        return None
    view = LiveView.serve(LiveViewConfig(task=episodes[0].task, web_port=web_port))
    print(f"twinbridge replay: live view at {view.url}", file=sys.stderr, flush=True)
    return view


def show_replay(
    view: LiveView, episode: RecordedEpisode, replayed: np.ndarray, objects: np.ndarray
) -> None:
    """Log one replayed episode (`replayed`: joint positions in the recording's order after
    each step; `objects`: object positions, NaN without an object)."""
    start = int(episode.stamp_ns[0])
    marker = {"episode": str(episode.index), "seed": str(episode.seed)}
    view.diagnostics(start, START_STATUS, marker)
    view.goal(start, episode.goal)
    for step, positions in enumerate(replayed):
        stamp = int(episode.stamp_ns[step + 1])
        view.joint_state(stamp, episode.joint_names, positions)
        view.command(stamp, episode.command_names, episode.command[step])
        view.command(stamp, episode.command_names, episode.command_applied[step], applied=True)
        if np.isfinite(objects[step]).all():
            view.object_pose(stamp, objects[step])
        view.render(stamp)
    end = int(episode.stamp_ns[len(replayed)])
    distance = float(np.linalg.norm(view.mirror.achieved_goal() - view.mirror.goal))
    success = view.mirror.is_success(view.mirror.achieved_goal(), view.mirror.goal)
    outcome = {**marker, "success": str(success), "final_distance": f"{distance:.5f}"}
    view.diagnostics(end, END_STATUS, outcome)


def wait_for_ctrl_c(view: LiveView) -> None:
    print(f"the replay stays at {view.url} until Ctrl-C", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        view.close()
