"""The rig calibration file: each camera's intrinsics, distortion and pose in `world`.

Run: `python -c "from sim.camera_calibration import load_rig; print(load_rig('rig.yaml'))"`

Written by `calibration/` (`twinbridge calibrate cameras`), read by the twin
(`Twin.load(..., calibration=FILE)`, the bringups' `--calibration`), so that the twin's
cameras render what the rig's cameras see. Poses are of each camera's optical frame (ROS
and OpenCV: x right, y down, z forward); MuJoCo's camera frame looks along its -z with y
up, so `apply_to_model` turns it by 180 degrees about x. Intrinsics are pinhole pixels
(fx, fy, cx, cy) at `width_px` x `height_px`; MuJoCo renders them exactly through its
camera sensor model (`cam_sensorsize`, `cam_intrinsic`, `cam_resolution`). The distortion
(ROS plumb_bob) is stored for camera drivers and rectification; MuJoCo renders none.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

from sim.config_loader import config_from_mapping, load_yaml_mapping
from sim.errors import ConfigError
from sim.files import atomic_write

FORMAT_VERSION = 1
# MuJoCo camera frame = optical frame turned 180 degrees about x (y up, looking along -z).
_OPTICAL_TO_MUJOCO = np.diag([1.0, -1.0, -1.0])
# A sensor width for MuJoCo's intrinsic model; only ratios to it matter (1 mm per 1000 px).
_SENSOR_M_PER_PX = 1e-6


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics (pixels, OpenCV's pixel centres) and plumb_bob distortion."""

    width_px: int
    height_px: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):  # one spelling per value, so one sha256
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "distortion", tuple(float(x) for x in self.distortion))
        if min(self.width_px, self.height_px) < 1 or min(self.fx, self.fy) <= 0:
            raise ConfigError(
                f"camera intrinsics: size {self.width_px}x{self.height_px} px and focal "
                f"lengths {self.fx}, {self.fy} must be positive"
            )

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def distortion_array(self) -> np.ndarray:
        return np.asarray(self.distortion, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class CameraCalibration(Intrinsics):
    """One calibrated camera: its intrinsics, its optical frame's pose in `world`, and how
    well the solve explained the pixels."""

    position_m: tuple[float, float, float]
    quaternion_wxyz: tuple[float, float, float, float]
    rms_px: float = 0.0  # intrinsics' reprojection RMS
    pose_rms_px: float = 0.0  # hand-eye reprojection RMS
    views: int = 0  # views that had the board and were used

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rms_px", "pose_rms_px"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("position_m", "quaternion_wxyz"):
            object.__setattr__(self, name, tuple(float(x) for x in getattr(self, name)))
        if abs(float(np.linalg.norm(self.quaternion_wxyz)) - 1.0) > 1e-6:
            raise ConfigError(
                f"camera calibration: quaternion_wxyz {self.quaternion_wxyz} is not a unit "
                "quaternion"
            )

    def rotation(self) -> np.ndarray:
        """3x3 rotation of the optical frame in world."""
        out = np.empty(9)
        mujoco.mju_quat2Mat(out, np.asarray(self.quaternion_wxyz, dtype=np.float64))
        return out.reshape(3, 3)

    def camera_info(self, name: str) -> dict[str, Any]:
        """The ROS camera_info YAML (camera_calibration's format) that camera drivers load."""
        k = self.matrix
        p = np.hstack([k, np.zeros((3, 1))])
        return {
            "image_width": self.width_px,
            "image_height": self.height_px,
            "camera_name": name,
            "camera_matrix": {"rows": 3, "cols": 3, "data": k.ravel().tolist()},
            "distortion_model": "plumb_bob",
            "distortion_coefficients": {"rows": 1, "cols": 5, "data": list(self.distortion)},
            "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).ravel().tolist()},
            "projection_matrix": {"rows": 3, "cols": 4, "data": p.ravel().tolist()},
        }


@dataclass(frozen=True)
class RigCalibration:
    """Every calibrated camera of one robot's rig, and where the numbers came from."""

    robot: str
    cameras: dict[str, CameraCalibration]
    source: dict[str, Any] = field(default_factory=dict)  # recording, its sha256, board, date
    format_version: int = FORMAT_VERSION

    def sha256(self) -> str:
        """The calibration's identity (estimator cards name the one they were trained for)."""
        return hashlib.sha256(self.to_yaml().encode("utf-8")).hexdigest()

    def to_yaml(self) -> str:
        data = asdict(self)
        data["cameras"] = {name: _plain(asdict(c)) for name, c in self.cameras.items()}
        return yaml.safe_dump(_plain(data), sort_keys=False)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, self.to_yaml())
        return path

    def write_camera_infos(self, directory: str | Path) -> list[Path]:
        """One ROS camera_info YAML per camera (`<camera>.yaml`), for the camera drivers."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, camera in self.cameras.items():
            path = directory / f"{name}.yaml"
            atomic_write(path, yaml.safe_dump(camera.camera_info(name), sort_keys=False))
            paths.append(path)
        return paths

    def check_for(self, robot: str, camera_names: tuple[str, ...]) -> None:
        """Refuse a calibration of another robot, or of cameras the model does not have."""
        if robot != self.robot:
            raise ConfigError(
                f"calibration is of robot {self.robot!r}, this is {robot!r}: give the "
                f"calibration file of the {robot} rig"
            )
        unknown = sorted(set(self.cameras) - set(camera_names))
        if unknown:
            raise ConfigError(
                f"calibration names camera(s) {unknown} that the {robot} model does not have "
                f"(its cameras: {', '.join(camera_names)}): calibrated for another rig?"
            )


def load_rig(path: str | Path) -> RigCalibration:
    """A rig calibration file; wrong fields or values are one line naming the file."""
    data = load_yaml_mapping(path, "calibration file")
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"calibration file {path}: format_version {version}, this Twinbridge reads "
            f"{FORMAT_VERSION}"
        )
    cameras = data.get("cameras")
    if not isinstance(cameras, dict) or not cameras:
        raise ConfigError(f"calibration file {path}: `cameras` must map camera names to values")
    data["cameras"] = {
        str(name): config_from_mapping(CameraCalibration, values, f"{path}: cameras.{name}")
        for name, values in cameras.items()
    }
    return RigCalibration(**data)


def apply_to_model(
    model: mujoco.MjModel, data: mujoco.MjData, rig: RigCalibration
) -> tuple[int, int] | None:
    """Give the model's cameras the calibrated poses and intrinsics (in place). Cameras are
    fixed to their bodies, so a calibrated world pose is turned into one relative to the
    body as posed in `data` (forward kinematics done). Returns the calibrated image size if
    every calibrated camera has the same one (renders must use it), else None."""
    sizes = set()
    for name, camera in rig.cameras.items():
        cam = model.camera(name)
        body = int(model.cam_bodyid[cam.id])
        body_rotation = data.xmat[body].reshape(3, 3)
        rotation = body_rotation.T @ camera.rotation() @ _OPTICAL_TO_MUJOCO
        position = body_rotation.T @ (np.asarray(camera.position_m) - data.xpos[body])
        quaternion = np.empty(4)
        mujoco.mju_mat2Quat(quaternion, rotation.ravel())
        model.cam_pos[cam.id] = position
        model.cam_quat[cam.id] = quaternion
        set_intrinsics(model, cam.id, camera)
        sizes.add((camera.width_px, camera.height_px))
    return sizes.pop() if len(sizes) == 1 else None


def set_intrinsics(model: mujoco.MjModel, camera_id: int, camera: Intrinsics) -> None:
    """MuJoCo's pinhole model from pixel intrinsics: sensor size, focal lengths and principal
    point in length units (a sensor of `_SENSOR_M_PER_PX` a pixel), and the resolution.
    MuJoCo's principal offset points the other way from OpenCV's (cx, cy) in both axes
    (measured by rendering a known board, tests/test_calibration.py)."""
    s = _SENSOR_M_PER_PX
    model.cam_resolution[camera_id] = (camera.width_px, camera.height_px)
    model.cam_sensorsize[camera_id] = (camera.width_px * s, camera.height_px * s)
    model.cam_intrinsic[camera_id] = (
        camera.fx * s, camera.fy * s,
        (_centre(camera.width_px) - camera.cx) * s, (_centre(camera.height_px) - camera.cy) * s,
    )  # fmt: skip


def camera_intrinsics_px(
    model: mujoco.MjModel, camera_id: int, width: int, height: int
) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) in pixels of a model camera rendered at width x height: from its
    sensor model if it has one, else from `fovy` (square pixels, centred)."""
    sensor = model.cam_sensorsize[camera_id]
    if sensor[0] > 0 and sensor[1] > 0:
        fx_m, fy_m, px_m, py_m = model.cam_intrinsic[camera_id]
        sx, sy = width / sensor[0], height / sensor[1]
        return fx_m * sx, fy_m * sy, _centre(width) - px_m * sx, _centre(height) - py_m * sy
    f = height / 2 / np.tan(np.radians(model.cam_fovy[camera_id]) / 2)
    return float(f), float(f), _centre(width), _centre(height)


def _centre(pixels: int) -> float:
    """The image's centre in OpenCV/ROS pixel coordinates (pixel centres at integers): a
    rendered image's optical axis passes through the middle of its pixel grid."""
    return (pixels - 1) / 2


def _plain(value: Any) -> Any:
    """YAML-safe: tuples and numpy scalars as lists and Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
