"""Twinbridge hardware (placeholder package: populated by later issues)."""
