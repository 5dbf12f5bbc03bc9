"""The calibration board on paper: a one-page PDF at the board's physical size.

Run: `twinbridge calibrate board --out board.pdf`

The board itself (`sim.calibration_board.BoardSpec`) is defined where the twin can draw it;
this prints the same board, so the rig and the twin show one target.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from sim.calibration_board import BoardSpec

MM_PER_INCH = 25.4


def write_pdf(spec: BoardSpec, path: str | Path, dpi: int = 300, margin_m: float = 0.01) -> Path:
    """A one-page PDF of the board with a white margin (print at 100 %, "actual size"; then
    measure a square: the calibration's scale is only as good as the print's)."""
    px_per_m = dpi / MM_PER_INCH * 1000.0
    picture = Image.fromarray(spec.image(px_per_m, margin_m))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, "PDF", resolution=float(dpi), title=describe(spec))
    return path


def describe(spec: BoardSpec) -> str:
    """One line: the board's layout and physical size."""
    width_m, height_m = spec.size_m
    return (
        f"ChArUco {spec.squares_x}x{spec.squares_y}, squares {spec.square_m * 1000:g} mm, "
        f"markers {spec.marker_m * 1000:g} mm, {spec.dictionary}; "
        f"squares' area {width_m * 1000:g} x {height_m * 1000:g} mm"
    )
