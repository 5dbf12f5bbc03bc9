"""`SnapshotRenderer`: a twin's cameras rendered on a worker thread, from snapshots of its state.

Software rendering costs 10-40 ms a frame on this class of CPU, as long as a control period,
so a control loop must not render itself (measured: cameras rendered inside twin_node's loop
raised its latency p99 to ~30 ms). The loop hands over a copy of the positions and the
sites (a few microseconds); the worker renders from its own MjData and model copy (MuJoCo
releases the GIL while rendering) and gives each set of images to `on_frame`. In real time
a full queue drops the snapshot and counts it; with `drop_when_behind=False` (sim time,
lockstep) the caller waits. Used by the MP4 writer (sim/video.py) and twin_node's camera
topics (ros_ws/camera_publisher.py).

Run: `python -c "from sim.twin import Twin; from sim.snapshot_render import SnapshotRenderer as R; r = R(Twin.load('fetch', 'push'), ('video',), 64, 64, lambda images, tag: print(tag, images['video'].shape)); r.capture('frame 0'); r.close()"`
"""  # noqa: E501

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

from sim.render import hide_sites
from sim.twin import Twin

_Snapshot = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]
FrameCallback = Callable[[dict[Any, np.ndarray], Any], None]


class SnapshotRenderer:
    """Captures snapshots on the caller's thread, renders `cameras` on a worker."""

    def __init__(
        self,
        twin: Twin,
        cameras: tuple[str | int, ...],
        width: int,
        height: int,
        on_frame: FrameCallback,
        drop_when_behind: bool = True,
        queue_frames: int = 8,
        name: str = "render",
        sites: bool = True,
    ):
        self._twin, self._cameras, self._size = twin, cameras, (width, height)
        self._sites = sites  # False: as a physical camera sees (sim.render.hide_sites)
        self._on_frame, self._drop = on_frame, drop_when_behind
        self._queue: queue.Queue[_Snapshot | None] = queue.Queue(maxsize=queue_frames)
        self.frames = self.dropped = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def capture(self, tag: Any = None, twin: Twin | None = None) -> None:
        """Queue the twin's current positions for one frame; `tag` goes to `on_frame` with
        the images. `twin`: another twin of the same model (a replay's next episode), whose
        sites (the episode's goal marker) are drawn too."""
        if self._error is not None:
            raise self._error
        twin = self._twin if twin is None else twin
        data = twin.data
        positions = data.qpos.copy(), data.mocap_pos.copy(), data.mocap_quat.copy()
        try:
            self._queue.put((*positions, twin.model.site_pos.copy(), tag), block=not self._drop)
        except queue.Full:
            self.dropped += 1

    def close(self) -> int:
        """Finish the queued frames; the number rendered. Re-raises the worker's error."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.frames

    def _work(self) -> None:
        model = copy.deepcopy(self._twin.model)  # its own: sites are set per frame here
        if not self._sites:
            hide_sites(model)
        try:
            width, height = self._size
            renderer = mujoco.Renderer(model, height, width)  # GL context: this thread
            data = mujoco.MjData(model)
            while (snapshot := self._queue.get()) is not None:
                data.qpos[:], data.mocap_pos[:], data.mocap_quat[:], sites, tag = snapshot
                model.site_pos[:] = sites
                mujoco.mj_forward(model, data)
                images = {}
                for camera in self._cameras:
                    renderer.update_scene(data, camera)
                    images[camera] = renderer.render()
                self._on_frame(images, tag)
                self.frames += 1
            renderer.close()
        except BaseException as e:  # re-raised on the caller's thread
            self._error = e
            while self._queue.get() is not None:  # unblock the caller, then stop
                pass
