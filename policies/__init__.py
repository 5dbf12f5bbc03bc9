"""Twinbridge policies: robot-side ONNX policy runtime (no torch), and later training/export."""
