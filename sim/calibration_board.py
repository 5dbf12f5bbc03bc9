"""The calibration target: an OpenCV ChArUco board, as a texture the twin can show.

Run: `python -c "from sim.calibration_board import BoardSpec; print(BoardSpec().size_m)"`

A ChArUco board is a chessboard whose white squares hold ArUco markers: every corner found
is identified by the markers around it, so a view that sees only part of the board (an arm
holding it at an angle, a finger over it) still gives exact 3-D to 2-D correspondences.
The same `BoardSpec` draws the printable PDF (`calibration/board.py`), the texture the twin
and the emulator show (`add_board`), and the detector's model: they never disagree about
the board. It lives here, below the twin, because the twin draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import mujoco
import numpy as np

from sim.errors import ConfigError


@dataclass(frozen=True)
class BoardSpec:
    """A ChArUco board: squares across and down, their size and the markers' size (metres),
    and the ArUco dictionary (an OpenCV `DICT_*` name)."""

    squares_x: int = 8
    squares_y: int = 6
    square_m: float = 0.04
    marker_m: float = 0.03
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self) -> None:
        if min(self.squares_x, self.squares_y) < 3:
            raise ConfigError(
                f"board of {self.squares_x}x{self.squares_y} squares: use at least 3x3"
            )
        if not 0 < self.marker_m < self.square_m:
            raise ConfigError(
                f"marker_m {self.marker_m} must be > 0 and smaller than square_m {self.square_m}"
            )
        if not hasattr(cv2.aruco, self.dictionary):
            raise ConfigError(
                f"unknown ArUco dictionary {self.dictionary!r}; use an OpenCV name such as "
                "DICT_5X5_100 or DICT_6X6_250"
            )
        markers = (self.squares_x * self.squares_y) // 2
        if markers > self.cv_dictionary().bytesList.shape[0]:
            raise ConfigError(
                f"{self.dictionary} holds fewer markers than the {markers} this board needs; "
                "use a larger dictionary"
            )

    @property
    def size_m(self) -> tuple[float, float]:
        """Width and height of the squares' area (the printed board adds a white margin)."""
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    @property
    def corner_count(self) -> int:
        """Inner chessboard corners: the points a view can contribute."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    def cv_dictionary(self) -> cv2.aruco.Dictionary:
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def cv_board(self) -> cv2.aruco.CharucoBoard:
        return cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square_m, self.marker_m, self.cv_dictionary()
        )

    def corners_m(self) -> np.ndarray:
        """(corner_count, 3) inner corners in the board frame: origin at the squares' area's
        top-left corner as printed, x along the top edge, y down the left edge, z into the
        board (OpenCV's convention), metres."""
        return np.asarray(self.cv_board().getChessboardCorners(), dtype=np.float64)

    def image(self, px_per_m: float, margin_m: float = 0.0) -> np.ndarray:
        """The board as a grey image (uint8), `margin_m` of white around the squares."""
        width_m, height_m = self.size_m
        margin_px = round(margin_m * px_per_m)
        size = (
            round(width_m * px_per_m) + 2 * margin_px,
            round(height_m * px_per_m) + 2 * margin_px,
        )
        return self.cv_board().generateImage(size, marginSize=margin_px, borderBits=1)


# Texture resolution: markers of a few pixels per bit at the cameras' distances need far
# fewer, but a texture coarser than the render blurs the corners the calibration measures.
TEXTURE_PX_PER_M = 4000.0
BOARD_THICKNESS_M = 0.004


def add_board(
    spec: mujoco.MjSpec,
    board: BoardSpec,
    parent: mujoco.MjsBody,
    pos_m: tuple[float, float, float],
    quat_wxyz: tuple[float, float, float, float],
    name: str = "calibration_board",
) -> mujoco.MjsBody:
    """Show `board` in `spec` on `parent` (the gripper, or the world body), as a thin
    massless visual box whose front face carries the printed board. The board frame (see
    `corners_m`) is the returned body's frame, so a test knows where each corner truly is:
    x along the printed top edge, y down the left edge, z into the board."""
    # MuJoCo maps a 2D texture's first row to the face's far edge: flipped rows put the
    # printed top edge along the body's y = 0 (checked by tests/test_calibration.py).
    image = board.image(TEXTURE_PX_PER_M)[::-1]
    rgb = np.repeat(image[:, :, None], 3, axis=2)
    height, width = image.shape
    texture = spec.add_texture(
        name=f"{name}_texture", type=mujoco.mjtTexture.mjTEXTURE_2D, width=width,
        height=height, nchannel=3,
    )  # fmt: skip
    texture.data = rgb.tobytes()
    material = spec.add_material(name=f"{name}_material")
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = f"{name}_texture"
    body = parent.add_body(name=name, pos=pos_m, quat=quat_wxyz)
    half_w, half_h = board.size_m[0] / 2, board.size_m[1] / 2
    body.add_geom(
        name=name, type=mujoco.mjtGeom.mjGEOM_BOX, material=f"{name}_material",
        size=(half_w, half_h, BOARD_THICKNESS_M / 2),
        pos=(half_w, half_h, BOARD_THICKNESS_M / 2),  # the front face at z = 0
        contype=0, conaffinity=0, density=0.0, group=1,
    )  # fmt: skip
    return body
