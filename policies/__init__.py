"""Twinbridge policies: graphs and ONNX export with model cards (torch, training side), and the
robot-side runtime `policies.runtime` (onnxruntime, never torch)."""
