"""The calibration side's error: every message names the camera or file, the count that was
too small or the value that was wrong, and what to do."""

from __future__ import annotations

from sim.errors import TwinbridgeError


class CalibrationError(TwinbridgeError, ValueError):
    """Calibration input that cannot give a trustworthy result (too few views, a board never
    seen, degenerate motion, a file for another rig)."""
