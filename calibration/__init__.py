"""Twinbridge calibration (placeholder package: populated by later issues)."""
