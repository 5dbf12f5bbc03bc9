"""The emulated rig's cameras: true cameras that differ from the twin's nominal ones, rendering
the emulator's own world, for a camera driver to publish (ros_ws/camera_driver_node.py).

Run: `python -c "from hardware.camera_rig import CameraDeviations as D; import mujoco; from sim.twin import Twin; t = Twin.load('fetch', 'reach'); print(D().apply(t.model, ('head_camera_rgb',), 640, 480))"`

A real rig's cameras sit a few centimetres and degrees from where the drawings put them and
their lenses differ by a few percent from the data sheet; nobody knows by how much until the
rig is calibrated (`twinbridge calibrate cameras`). The emulated rig draws such differences
per camera from a seed (`CameraDeviations`, part of the emulator's configuration, which the
host never reads), so calibration is measured against a truth it did not see.

The emulator runs its physics at a real-time priority and must not render (10-40 ms a frame
on a CPU). It publishes its world's joint positions through a `StateFeed` (a file-backed
shared memory page, written under a sequence lock a few hundred times a second), and the
camera driver, a process of its own, renders `TrueCameras` from the newest positions.
"""  # noqa: E501

from __future__ import annotations

import mmap
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sim.camera_calibration import (
    CameraCalibration,
    Intrinsics,
    RigCalibration,
    camera_intrinsics_px,
    set_intrinsics,
)
from sim.config_loader import config_from_mapping
from sim.errors import ConfigError
from sim.render import hide_sites


@dataclass(frozen=True)
class CameraDeviations:
    """How each true camera differs from the twin's (each camera's draw from `seed`): its
    position by up to `position_offset_m` along each axis, its orientation by an angle in
    `rotation_offset_deg` about a random axis, its focal lengths by up to
    `focal_length_scale` (fy by up to `aspect_scale` more) and its principal point by up to
    `principal_point_offset_px` on each axis, all uniform. Defaults: the rig of issue 19
    (a few cm, a few degrees, a few percent of focal length)."""

    seed: int = 0
    position_offset_m: float = 0.03
    rotation_offset_deg: tuple[float, float] = (2.0, 3.0)
    focal_length_scale: float = 0.04
    aspect_scale: float = 0.005
    principal_point_offset_px: float = 8.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rotation_offset_deg", tuple(self.rotation_offset_deg))
        offsets = (self.position_offset_m, self.focal_length_scale, self.aspect_scale,
                   self.principal_point_offset_px, *self.rotation_offset_deg)  # fmt: skip
        low, high = self.rotation_offset_deg
        if min(offsets) < 0 or low > high:
            raise ConfigError(
                f"camera deviations {self}: every offset must be >= 0 and "
                "rotation_offset_deg a range [low, high] with 0 <= low <= high"
            )
        if self.focal_length_scale >= 0.5 or self.aspect_scale >= 0.5:
            raise ConfigError(
                f"camera deviations: focal_length_scale {self.focal_length_scale} and "
                f"aspect_scale {self.aspect_scale} must be below 0.5 (a lens, not a zoom)"
            )

    @classmethod
    def none(cls) -> CameraDeviations:
        """The twin's cameras exactly."""
        return cls(0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0)

    @classmethod
    def from_mapping(cls, data: Any, where: str = "cameras.deviations") -> CameraDeviations:
        """`none`, `default` (or absent), or a mapping overriding the defaults."""
        if data == "none":
            return cls.none()
        if data is None or data == "default":
            return cls()
        return config_from_mapping(cls, data, where)

    def apply(
        self, model: mujoco.MjModel, cameras: tuple[str, ...], width: int, height: int
    ) -> dict[str, Intrinsics]:
        """Move and re-lens `cameras` of `model` (rendered at width x height) to their true
        values; returns the true intrinsics by name."""
        rng = np.random.default_rng(self.seed)
        truth = {}
        for name in cameras:
            cam = model.camera(name).id
            model.cam_pos[cam] += rng.uniform(-1, 1, 3) * self.position_offset_m
            axis = rng.normal(size=3)
            turn, quat = np.empty(4), np.empty(4)
            angle = np.radians(rng.uniform(*self.rotation_offset_deg))
            mujoco.mju_axisAngle2Quat(turn, axis / np.linalg.norm(axis), angle)
            mujoco.mju_mulQuat(quat, model.cam_quat[cam], turn)
            model.cam_quat[cam] = quat
            fx, fy, cx, cy = camera_intrinsics_px(model, cam, width, height)
            scale = 1 + rng.uniform(-1, 1) * self.focal_length_scale
            aspect = 1 + rng.uniform(-1, 1) * self.aspect_scale
            shift = rng.uniform(-1, 1, 2) * self.principal_point_offset_px
            truth[name] = Intrinsics(
                width, height, fx * scale, fy * scale * aspect, cx + shift[0], cy + shift[1]
            )
            set_intrinsics(model, cam, truth[name])
        return truth


@dataclass(frozen=True)
class RigCameraConfig:
    """The emulated rig's cameras: which (default: the robot's `rig_cameras`), at what size
    and rate they stream, and how they differ from the twin's (`deviations`)."""

    names: tuple[str, ...] = ()
    width_px: int = 640
    height_px: int = 480
    rate_hz: float = 5.0
    deviations: CameraDeviations = field(default_factory=CameraDeviations)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if min(self.width_px, self.height_px) < 16 or not 0 < self.rate_hz <= 60:
            raise ConfigError(
                f"cameras: {self.width_px}x{self.height_px} px at {self.rate_hz} Hz; give "
                "at least 16x16 px and a rate in (0, 60] Hz"
            )

    @classmethod
    def from_mapping(cls, data: Any, where: str = "cameras") -> RigCameraConfig:
        values = dict(data) if isinstance(data, dict) else data
        if isinstance(values, dict) and "deviations" in values:
            values["deviations"] = CameraDeviations.from_mapping(
                values["deviations"], f"{where}.deviations"
            )
        return config_from_mapping(cls, values or {}, where)

    def names_for(self, robot: str) -> tuple[str, ...]:
        """The cameras streamed: `names`, or the robot's rig cameras; refused by name."""
        from sim.robots import get_robot

        description = get_robot(robot)
        if not self.names:
            return description.rig_cameras
        return description.camera_names(",".join(self.names))


# ------------------------------------------------------------------ the emulator's world feed
_HEADER = 3  # float64 cells: sequence (odd while writing), device time [us], positions


class StateFeed:
    """The emulator's joint positions (its whole `qpos`) for its camera driver: a small file
    mapped into both processes, written under a sequence lock (the writer makes the count
    odd, writes, makes it even; a reader retries a copy that straddled a write)."""

    def __init__(self, path: Path, size: int, writable: bool):
        self.path, self.size = Path(path), size
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if writable else 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            if writable:
                os.ftruncate(fd, (_HEADER + size) * 8)
            self._map = mmap.mmap(fd, (_HEADER + size) * 8)
        finally:
            os.close(fd)
        self._cells = np.frombuffer(self._map, dtype=np.float64)
        if writable:
            self._cells[:] = 0.0
            self._cells[2] = size

    @classmethod
    def create(cls, path: str | Path, size: int) -> StateFeed:
        """The writer's end (the emulator): a new feed of `size` positions at `path`."""
        return cls(Path(path), size, writable=True)

    @classmethod
    def attach(cls, path: str | Path, timeout_s: float = 10.0) -> StateFeed:
        """The reader's end (the camera driver), once the emulator has created it."""
        deadline = time.monotonic() + timeout_s
        path = Path(path)
        while not (path.exists() and path.stat().st_size > _HEADER * 8):
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"no emulator state feed at {path} after {timeout_s:.0f} s: start "
                    "`twinbridge emulate --camera-feed` with the same path first"
                )
            time.sleep(0.05)
        size = int(np.fromfile(path, dtype=np.float64, count=_HEADER)[2])
        return cls(path, size, writable=False)

    def write(self, time_us: int, positions: np.ndarray) -> None:
        cells = self._cells
        cells[0] += 1.0
        cells[1] = time_us
        cells[_HEADER:] = positions
        cells[0] += 1.0

    def read(self, attempts: int = 100) -> tuple[int, np.ndarray] | None:
        """(device time [us], positions) of the newest complete write, or None before the
        first one."""
        cells = self._cells
        for _ in range(attempts):
            before = cells[0]
            if before % 2:
                continue
            time_us, positions = int(cells[1]), cells[_HEADER:].copy()
            if cells[0] == before:
                return None if before == 0 else (time_us, positions)
        return None

    def close(self) -> None:
        del self._cells
        self._map.close()


# ------------------------------------------------------------------ rendering the true rig
class TrueCameras:
    """The emulated rig's cameras over the emulator's world model: its scene, the true camera
    poses and intrinsics, no goal markers (a real table has none). `render(positions)` gives
    one RGB image per camera of the world at those joint positions."""

    def __init__(self, model: mujoco.MjModel, robot: str, config: RigCameraConfig):
        self.model = model
        self.names = config.names_for(robot)
        self.size = (config.width_px, config.height_px)
        self.truth = config.deviations.apply(model, self.names, *self.size)
        hide_sites(model)
        self.data = mujoco.MjData(model)
        self._renderer = mujoco.Renderer(model, config.height_px, config.width_px)

    def render(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        self.data.qpos[:] = positions
        mujoco.mj_forward(self.model, self.data)
        images = {}
        for name in self.names:
            self._renderer.update_scene(self.data, name)
            images[name] = self._renderer.render().copy()
        return images

    def true_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position, 3x3 rotation) of a camera's optical frame in `world` (x right, y down,
        z forward): the ground truth calibration is measured against."""
        cam = self.model.camera(name).id
        mujoco.mj_forward(self.model, self.data)
        rotation = self.data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        return self.data.cam_xpos[cam].copy(), rotation

    def close(self) -> None:
        self._renderer.close()


def camera_info_of(
    rig: RigCalibration | None, robot: str, names: tuple[str, ...]
) -> dict[str, CameraCalibration | None]:
    """Each streamed camera's calibration from a rig file (None: uncalibrated), the file
    refused if it is for another robot or other cameras (naming both sides)."""
    if rig is None:
        return dict.fromkeys(names)
    rig.check_for(robot, names)
    return {name: rig.cameras.get(name) for name in names}


class CameraStream:
    """A camera driver's core for the emulated rig: the true cameras over the emulator's
    world model (its task and scene), fed by the emulator's `StateFeed`; `capture()` renders
    the newest state. `calibrations` are what each camera's camera_info says (None:
    uncalibrated)."""

    def __init__(
        self,
        robot: str,
        rig: RigCameraConfig,
        feed_path: str | Path,
        task: str = "",
        scene: str = "",
        calibration: RigCalibration | None = None,
    ):
        from sim.robots import get_robot
        from sim.twin_loop import TwinLoop

        task = task or get_robot(robot).emulator_task
        model = TwinLoop(task, actuation="ideal", scene=scene or None).twin.model
        self.cameras = TrueCameras(model, robot, rig)
        self.calibrations = camera_info_of(calibration, robot, self.cameras.names)
        self.rate_hz = rig.rate_hz
        self.feed = StateFeed.attach(feed_path)
        if self.feed.size != model.nq:
            raise ConfigError(
                f"the emulator's state feed {feed_path} has {self.feed.size} positions, the "
                f"{task} world ({scene or 'its own scene'}) {model.nq}: give the camera driver "
                "the emulator's task and scene"
            )

    @property
    def names(self) -> tuple[str, ...]:
        return self.cameras.names

    def capture(self) -> dict[str, np.ndarray] | None:
        """One image per camera of the emulator's newest state (None before its first)."""
        state = self.feed.read()
        return None if state is None else self.cameras.render(state[1])

    def close(self) -> None:
        self.cameras.close()
        self.feed.close()
