"""Finding the ChArUco board in one image: identified corners, or nothing usable.

A view is usable when it gives enough identified corners (MIN_CORNERS) that are not all on
one line (a line of points fixes neither a homography nor a pose). Views where the board is
missing, cut off to a few corners, or too blurred for the markers to decode give `None`; a
view blurred just enough to decode but not to place corners well is caught later by its
residual (`calibration.intrinsics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sim.calibration_board import BoardSpec

# Views with fewer corners are dropped: 6-9 corners in a corner of the image gave unstable
# per-view poses that sent 2 of 50 emulated rigs' solves to a wrong minimum (an intrinsics
# RMS of 4.5 px; a camera placed 20 m off), with 10 none (bench/calibration_accuracy.py).
MIN_CORNERS = 10


@dataclass(frozen=True)
class Detection:
    """One view's identified corners: ids, pixels (u, v) and board-frame points (metres)."""

    ids: np.ndarray  # (n,) int
    image_points: np.ndarray  # (n, 2) float64, pixels
    object_points: np.ndarray  # (n, 3) float64, board frame

    def __len__(self) -> int:
        return len(self.ids)


class BoardDetector:
    """Detects one board (`BoardSpec`) in grey or RGB images."""

    def __init__(self, spec: BoardSpec, min_corners: int = MIN_CORNERS):
        self.spec, self.min_corners = spec, max(min_corners, 4)
        self._board = spec.cv_board()
        self._corners = spec.corners_m()
        self._detector = cv2.aruco.CharucoDetector(self._board)

    def detect(self, image: np.ndarray) -> Detection | None:
        """The board's identified corners in `image`, or None if the view is not usable."""
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        corners, ids, _, _ = self._detector.detectBoard(grey)
        if ids is None or len(ids) < self.min_corners:
            return None
        ids = ids.reshape(-1).astype(np.int64)
        pixels = corners.reshape(-1, 2).astype(np.float64)
        points = self._corners[ids]
        if _collinear(points):
            return None
        return Detection(ids, pixels, points)


def _collinear(points: np.ndarray) -> bool:
    """Whether board points lie (nearly) on one line: the second singular value of the
    centred points is tiny next to the first."""
    centred = points[:, :2] - points[:, :2].mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return bool(singular[1] < 1e-3 * max(singular[0], 1e-12))
