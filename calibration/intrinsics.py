"""A camera's intrinsics from board views: `cv2.calibrateCamera`, outlier views dropped.

Distortion model: ROS's `plumb_bob` (OpenCV's k1, k2, p1, p2, k3) with the radial k1, k2
fitted and k3, p1, p2 held at 0. A third radial term is poorly constrained by a board that
does not reach the image corners (ROS `camera_calibration` holds it too), and tangential
terms trade off against the principal point: fitted on distortion-free renders they moved
(cx, cy) by up to 0.5 %, held at 0 by at most 0.15 % (tests/test_calibration.py's rigs).
A lens with real tangential distortion needs them back (`flags`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.detect import Detection
from calibration.errors import CalibrationError
from sim.camera_calibration import Intrinsics

MIN_VIEWS = 6
# A view whose RMS is this many times the median's (and over 1 px) is an outlier: a blurred
# or badly detected view pulls every parameter, so it is dropped and the rest re-solved.
OUTLIER_FACTOR = 3.0
FLAGS = cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST


@dataclass
class IntrinsicsResult:
    """What `calibrate_intrinsics` found, and from which views."""

    intrinsics: Intrinsics
    rms_px: float
    view_rms_px: list[float]  # per used view
    used_views: list[int]  # indices into the views given
    dropped_views: list[int] = field(default_factory=list)


def calibrate_intrinsics(
    camera: str,
    views: Sequence[Detection | None],
    image_size_px: tuple[int, int],
    min_views: int = MIN_VIEWS,
    flags: int = FLAGS,
) -> IntrinsicsResult:
    """Intrinsics of `camera` from its views (None: a view without a usable board).

    Raises CalibrationError naming the camera and the count of usable views when there are
    too few to trust.
    """
    usable = [i for i, view in enumerate(views) if view is not None]
    _require(camera, len(usable), len(views), min_views)
    result = _solve(views, usable, image_size_px, flags)
    median = float(np.median(result.view_rms_px))
    outliers = [
        index
        for index, rms in zip(result.used_views, result.view_rms_px, strict=True)
        if rms > max(OUTLIER_FACTOR * median, 1.0)
    ]
    if outliers:
        kept = [i for i in usable if i not in outliers]
        _require(camera, len(kept), len(views), min_views, f" after dropping {len(outliers)}")
        result = _solve(views, kept, image_size_px, flags)
        result.dropped_views = outliers
    return result


def _solve(
    views: Sequence[Detection | None], used: list[int], image_size_px: tuple[int, int], flags: int
) -> IntrinsicsResult:
    objects = [views[i].object_points.astype(np.float32) for i in used]  # type: ignore[union-attr]
    pixels = [views[i].image_points.astype(np.float32) for i in used]  # type: ignore[union-attr]
    width, height = image_size_px
    rms, matrix, distortion, _, _, _, _, per_view = cv2.calibrateCameraExtended(
        objects, pixels, (width, height), np.eye(3), np.zeros(5), flags=flags
    )
    intrinsics = Intrinsics(
        width, height, float(matrix[0, 0]), float(matrix[1, 1]), float(matrix[0, 2]),
        float(matrix[1, 2]), tuple(float(d) for d in distortion.reshape(-1)[:5]),
    )  # fmt: skip
    return IntrinsicsResult(
        intrinsics=intrinsics,
        rms_px=float(rms),
        view_rms_px=[float(e) for e in per_view.reshape(-1)],
        used_views=list(used),
    )


def _require(camera: str, usable: int, total: int, needed: int, after: str = "") -> None:
    if usable < needed:
        raise CalibrationError(
            f"camera {camera!r}: {usable} usable view(s) of {total}{after}, need {needed}: "
            "the board must be fully or partly visible (6+ corners, not one row) in more "
            "views; move it through more of the image, closer, or light it better"
        )
