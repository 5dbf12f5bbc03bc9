"""`BackgroundVideo`: an MP4 of a twin's camera, rendered on a worker thread.

A control loop must not render itself (sim/snapshot_render.py says why): it hands a copy of
the positions to the worker, which renders the frame, paints its `Overlay` (episode, step,
success, distance to the goal; sim/overlay.py) and streams it to the MP4. In real time a
full queue drops the frame and counts it; with `drop_when_behind=False` (sim time,
lockstep) the loop waits.

Run: `python -c "from sim.twin import Twin; from sim.video import BackgroundVideo as V; t = Twin.load('fetch', 'push'); v = V(t, 'video', 'out/v.mp4', 25); v.capture(); print(v.close())"`
"""  # noqa: E501

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.overlay import Overlay, draw
from sim.render import open_mp4, video_line
from sim.snapshot_render import SnapshotRenderer
from sim.twin import Twin


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
        self._camera = camera
        self._writer = open_mp4(path, fps)
        self.path = Path(path)
        self._episodes: set[int] = set()
        self._renderer = SnapshotRenderer(
            twin, (camera,), size_px, size_px, self._write, drop_when_behind, queue_frames,
            name="video",
        )  # fmt: skip

    @property
    def episodes(self) -> int:
        """Distinct episodes seen in the overlays of the frames captured so far."""
        return len(self._episodes)

    @property
    def frames(self) -> int:
        return self._renderer.frames

    @property
    def dropped(self) -> int:
        return self._renderer.dropped

    def capture(self, overlay: Overlay | None = None, twin: Twin | None = None) -> None:
        """Queue the twin's current positions for one frame, with the text to draw on it;
        `twin`: another twin of the same model (a replay's next episode), whose sites (the
        episode's goal marker) are drawn too."""
        if overlay is not None and overlay.episode >= 0:
            self._episodes.add(overlay.episode)
        self._renderer.capture(overlay, twin)

    def close(self) -> int:
        """Finish the queued frames and the file; the number of frames written."""
        try:
            return self._renderer.close()
        finally:
            self._writer.close()

    def summary(self) -> str:
        """The line a command prints when it is done: where the video went, and what it has."""
        return video_line(self.path, self.frames, self.episodes)

    def _write(self, images: dict[str | int, np.ndarray], overlay: Overlay | None) -> None:
        frame = images[self._camera]
        self._writer.append_data(frame if overlay is None else draw(frame, overlay))
