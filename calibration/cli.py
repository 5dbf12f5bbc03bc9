"""`twinbridge calibrate board`: the calibration board to print (`twinbridge calibrate` is
ros_ws/calibrate_bringup.py; this is its plain part).

Run: `twinbridge calibrate board --out board.pdf`

`board` writes the ChArUco board the twin shows on the Fetch's gripper
(`sim/robots/fetch/builder.py` CALIBRATION_BOARD), or another layout, as a one-page PDF at
its physical size, and prints its layout.
"""

from __future__ import annotations

import argparse
from typing import Any

from calibration.board import describe, write_pdf
from sim.calibration_board import BoardSpec
from sim.errors import ConfigError

DEFAULT = BoardSpec()


def add_board_parser(actions: Any) -> None:
    """The `board` action on `actions` (an argparse subparsers object)."""
    board = actions.add_parser("board", help="write the calibration board as a printable PDF")
    board.add_argument("--out", required=True, help="the PDF to write, e.g. board.pdf")
    board.add_argument("--squares", type=int, nargs=2, metavar=("X", "Y"),
                       default=(DEFAULT.squares_x, DEFAULT.squares_y),
                       help="squares across and down (default: %(default)s)")  # fmt: skip
    board.add_argument("--square-mm", type=float, default=DEFAULT.square_m * 1000)
    board.add_argument("--marker-mm", type=float, default=DEFAULT.marker_m * 1000)
    board.add_argument("--dictionary", default=DEFAULT.dictionary, help="an OpenCV DICT_* name")
    board.add_argument("--dpi", type=int, default=300)


def run(args: argparse.Namespace) -> int:
    if args.dpi < 72:
        raise ConfigError(f"--dpi {args.dpi}: use at least 72 (300 prints sharp markers)")
    spec = BoardSpec(
        squares_x=args.squares[0], squares_y=args.squares[1], square_m=args.square_mm / 1000,
        marker_m=args.marker_mm / 1000, dictionary=args.dictionary,
    )  # fmt: skip
    path = write_pdf(spec, args.out, dpi=args.dpi)
    print(f"{path}: {describe(spec)}; print at 100 % and check one square measures "
          f"{spec.square_m * 1000:g} mm")  # fmt: skip
    return 0
