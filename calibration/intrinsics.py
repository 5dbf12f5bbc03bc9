"""A camera's intrinsics from board views: `cv2.calibrateCamera`, outlier views dropped.

Distortion model: ROS's `plumb_bob` (OpenCV's k1, k2, p1, p2, k3) with the radial k1, k2
fitted and k3, p1, p2 held at 0. A third radial term is poorly constrained by a board that
does not reach the image corners (ROS `camera_calibration` holds it too), and tangential
terms trade off against the principal point: fitted on distortion-free renders they moved
(cx, cy) by up to 0.5 %, held at 0 by at most 0.15 % (tests/test_calibration.py's rigs).
A lens with real tangential distortion needs them back (`flags`).

The least-squares problem has more than one minimum. Solved in one go from OpenCV's own
start, 1 of 40 emulated rigs landed at 3x the focal length (k2 = -44, RMS 4 px); with
a pinhole fit first, another landed 40 % off at RMS 0.07 px next to the right answer at
0.06 px. So each solve is a pinhole fit (distortion held at 0) and then the distortion model
from it, from every start it has (OpenCV's homography start, the camera's nominal
intrinsics when given, the solution before outliers were dropped), keeping the lowest RMS
(bench/calibration_accuracy.py: 100 rigs). A view whose RMS is over OUTLIER_FACTOR times
the median (and OUTLIER_FLOOR_PX) is dropped and the rest solved again: at 2x, the worst of
100 rigs was 0.36 %, at 3x with a 1 px floor 0.71 %. A result whose RMS is still over
MAX_RMS_PX is refused, never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.detect import MIN_CORNERS, Detection
from calibration.errors import CalibrationError
from sim.camera_calibration import Intrinsics

MIN_VIEWS = 6
# A view whose RMS is this many times the median's (and over the floor) is an outlier: a
# blurred, steep or badly detected view pulls every parameter, so it is dropped.
OUTLIER_FACTOR = 2.0
OUTLIER_FLOOR_PX = 0.15
FLAGS = cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST
PINHOLE = cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST
# ROS camera_calibration's rule of thumb: under 0.5 px is good, over 1 px is a bad calibration.
MAX_RMS_PX = 1.0


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
    nominal: Intrinsics | None = None,
) -> IntrinsicsResult:
    """Intrinsics of `camera` from its views (None: a view without a usable board);
    `nominal`, the camera's intrinsics as designed, is one more start for the solver.

    Raises CalibrationError naming the camera and the count of usable views when there are
    too few to trust.
    """
    usable = [i for i, view in enumerate(views) if view is not None]
    _require(camera, len(usable), len(views), min_views)
    starts = [None] if nominal is None else [None, nominal]
    result = _solve(views, usable, image_size_px, flags, starts)
    median = float(np.median(result.view_rms_px))
    outliers = [
        index
        for index, rms in zip(result.used_views, result.view_rms_px, strict=True)
        if rms > max(OUTLIER_FACTOR * median, OUTLIER_FLOOR_PX)
    ]
    if outliers:
        kept = [i for i in usable if i not in outliers]
        _require(camera, len(kept), len(views), min_views, f" after dropping {len(outliers)}")
        result = _solve(views, kept, image_size_px, flags, [*starts, result.intrinsics])
        result.dropped_views = outliers
    if result.rms_px > MAX_RMS_PX:
        raise CalibrationError(
            f"camera {camera!r}: reprojection RMS {result.rms_px:.2f} px over "
            f"{len(result.used_views)} views is above {MAX_RMS_PX} px, so its intrinsics are "
            "not trustworthy: check that the board is flat and sharp in the images and that "
            "its size and dictionary match the board file, then record again"
        )
    return result


def _solve(
    views: Sequence[Detection | None],
    used: list[int],
    image_size_px: tuple[int, int],
    flags: int,
    starts: Sequence[Intrinsics | None],
) -> IntrinsicsResult:
    """The lowest-RMS solution over `starts` (None: OpenCV's own start)."""
    objects = [views[i].object_points.astype(np.float32) for i in used]  # type: ignore[union-attr]
    pixels = [views[i].image_points.astype(np.float32) for i in used]  # type: ignore[union-attr]
    size = tuple(image_size_px)
    solutions = []
    for start in starts:
        guess = 0 if start is None else cv2.CALIB_USE_INTRINSIC_GUESS
        matrix = np.eye(3) if start is None else start.matrix
        _, pinhole, _, _, _ = cv2.calibrateCamera(
            objects, pixels, size, matrix, np.zeros(5), flags=PINHOLE | guess
        )
        flags_from_pinhole = flags | cv2.CALIB_USE_INTRINSIC_GUESS
        solutions.append(cv2.calibrateCameraExtended(
            objects, pixels, size, pinhole, np.zeros(5), flags=flags_from_pinhole
        ))  # fmt: skip
    best = min(solutions, key=lambda solved: solved[0])
    rms, matrix, distortion, _, _, _, _, per_view = best
    intrinsics = Intrinsics(
        size[0], size[1], float(matrix[0, 0]), float(matrix[1, 1]), float(matrix[0, 2]),
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
            f"the board must be fully or partly visible ({MIN_CORNERS}+ corners, not one row) "
            "in more views; move it through more of the image, closer, or light it better"
        )
