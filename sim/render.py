"""Headless offscreen rendering of named cameras, and MP4 writing.

`MUJOCO_GL` must be chosen before MuJoCo is first imported; `import sim` defaults it to
`egl` (Debian `libegl1 libgl1-mesa-dri`), and `osmesa` (`libosmesa6`) also works on a CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from sim.camera_calibration import camera_intrinsics_px
from sim.errors import RenderError, UnknownNameError

if TYPE_CHECKING:
    from sim.twin import Twin


def hide_sites(model: mujoco.MjModel) -> None:
    """Make `model`'s sites invisible: a physical camera sees no goal marker, site frame or
    other drawing only the simulator has (rig cameras, and renders that must look like them)."""
    model.site_rgba[:, 3] = 0.0


def render_rgb(twin: Twin, camera: str | int, width: int, height: int) -> np.ndarray:
    """Render `camera` of `twin` into a fresh uint8 RGB array."""
    if isinstance(camera, str) and camera not in twin.camera_names:
        raise UnknownNameError("camera", camera, twin.camera_names)
    renderer = _renderer(twin, width, height)
    renderer.update_scene(twin.data, camera=camera)
    return renderer.render().copy()


def project(
    model: mujoco.MjModel, data: mujoco.MjData, camera: str, points_m: np.ndarray, size_px: int
) -> np.ndarray:
    """Pixel coordinates (u right, v down, OpenCV's pixel centres; NaN behind the camera) of
    world points in the square `size_px` image of `camera` (its pinhole intrinsics, after
    mj_forward)."""
    cam = model.camera(camera).id
    rotation = data.cam_xmat[cam].reshape(3, 3)  # columns: the camera's axes in the world
    local = (np.asarray(points_m) - data.cam_xpos[cam]) @ rotation
    depth = -local[:, 2]  # a MuJoCo camera looks along its -z
    fx, fy, cx, cy = camera_intrinsics_px(model, cam, size_px, size_px)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.column_stack([cx + fx * local[:, 0] / depth, cy - fy * local[:, 1] / depth])
    uv[depth <= 0] = np.nan
    return uv


def _renderer(twin: Twin, width: int, height: int) -> mujoco.Renderer:
    key = (width, height)
    if key not in twin._renderers:
        _fit_offscreen_buffer(twin.model, width, height)
        try:
            twin._renderers[key] = mujoco.Renderer(twin.model, height=height, width=width)
        except Exception as e:
            raise RenderError(
                f"offscreen rendering failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}: {e}. "
                "Install libegl1 and libgl1-mesa-dri (MUJOCO_GL=egl) or libosmesa6 "
                "(MUJOCO_GL=osmesa); `make install` does."
            ) from e
    return twin._renderers[key]


def _fit_offscreen_buffer(model: mujoco.MjModel, width: int, height: int) -> None:
    # MuJoCo refuses renders larger than the model's offscreen buffer; grow it instead.
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Save one RGB frame as PNG."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image)
    return path


def open_mp4(path: str | Path, fps: float) -> Any:
    """A streaming H.264 MP4 writer (yuv420p, so ordinary players open it): `append_data`
    per frame, `close` at the end; for recordings too long to hold in memory."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return imageio.get_writer(
        path, fps=fps, codec="libx264", quality=7, pixelformat="yuv420p", macro_block_size=8
    )


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Encode RGB frames as an MP4 (see `open_mp4`)."""
    path = Path(path)
    writer = open_mp4(path, fps)
    count = 0
    try:
        for frame in frames:
            writer.append_data(frame)
            count += 1
    finally:
        writer.close()
    if count == 0:
        raise RenderError(f"no frames to write to {path}")
    return path


def mp4_frames(path: str | Path) -> int:
    """Frames in an MP4, counted by ffmpeg without decoding them."""
    from imageio_ffmpeg import count_frames_and_secs

    return int(count_frames_and_secs(str(path))[0])


def video_line(path: str | Path, frames: int, episodes: int) -> str:
    """The one line every command that writes a video prints when it is done."""
    return f"video: {path} ({frames} frames, {episodes} episodes)"
