"""`BackgroundVideo`: an MP4 of a twin's camera, rendered on a worker thread.

Software rendering costs 10-40 ms a frame on this class of CPU, as long as a whole control
period, so a control loop must not render itself. It hands a copy of the positions to the
worker (a few microseconds); the worker renders from its own MjData (MuJoCo releases the
GIL while rendering), paints the frame's `Overlay` (episode, step, success, distance to
the goal; sim/overlay.py) and streams frames to the MP4. In real time a full queue drops the
frame and counts it; with `drop_when_behind=False` (sim time, lockstep) the loop waits.

Run: `python -c "from sim.twin import Twin; from sim.video import BackgroundVideo as V; t = Twin.load('fetch', 'push'); v = V(t, 'video', 'out/v.mp4', 25); v.capture(); print(v.close())"`
"""  # noqa: E501

from __future__ import annotations

import copy
import queue
import threading
from pathlib import Path

import mujoco
import numpy as np

from sim.overlay import Overlay, draw
from sim.render import open_mp4, video_line
from sim.twin import Twin

_Snapshot = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Overlay | None]


class BackgroundVideo:
    """Captures snapshots on the caller's thread, renders and encodes on a worker."""

    def __init__(
        self,
        twin: Twin,
        camera: str | int,
        path: str | Path,
        fps: float,
        size_px: int = 480,
        drop_when_behind: bool = True,
        queue_frames: int = 8,
    ):
        self._twin, self._camera, self._size = twin, camera, size_px
        self._drop = drop_when_behind
        self._queue: queue.Queue[_Snapshot | None] = queue.Queue(maxsize=queue_frames)
        self._writer = open_mp4(path, fps)
        self.path = Path(path)
        self.frames = 0
        self._episodes: set[int] = set()
        self.dropped = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="video", daemon=True)
        self._thread.start()

    @property
    def episodes(self) -> int:
        """Distinct episodes seen in the overlays of the frames captured so far."""
        return len(self._episodes)

    def capture(self, overlay: Overlay | None = None, twin: Twin | None = None) -> None:
        """Queue the twin's current positions for one frame, with the text to draw on it;
        `twin`: another twin of the same model (a replay's next episode), whose sites (the
        episode's goal marker) are drawn too."""
        twin = self._twin if twin is None else twin
        data = twin.data
        if overlay is not None and overlay.episode >= 0:
            self._episodes.add(overlay.episode)
        positions = data.qpos.copy(), data.mocap_pos.copy(), data.mocap_quat.copy()
        snapshot = (*positions, twin.model.site_pos.copy(), overlay)
        try:
            self._queue.put(snapshot, block=not self._drop)
        except queue.Full:
            self.dropped += 1

    def close(self) -> int:
        """Finish the queued frames and the file; the number of frames written."""
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise self._error
        return self.frames

    def summary(self) -> str:
        """The line a command prints when it is done: where the video went, and what it has."""
        return video_line(self.path, self.frames, self.episodes)

    def _work(self) -> None:
        model = copy.deepcopy(self._twin.model)  # its own: sites are set per frame here
        try:
            renderer = mujoco.Renderer(model, self._size, self._size)  # GL context: this thread
            data = mujoco.MjData(model)
            while (snapshot := self._queue.get()) is not None:
                data.qpos[:], data.mocap_pos[:], data.mocap_quat[:], sites, overlay = snapshot
                model.site_pos[:] = sites
                mujoco.mj_forward(model, data)
                renderer.update_scene(data, self._camera)
                frame = renderer.render()
                self._writer.append_data(frame if overlay is None else draw(frame, overlay))
                self.frames += 1
            renderer.close()
        except BaseException as e:  # re-raised by close() on the caller's thread
            self._error = e
            while self._queue.get() is not None:  # unblock the caller, then stop
                pass
