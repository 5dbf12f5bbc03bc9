"""Twinbridge policies: the robot side (model cards, observations, the onnxruntime runner
`policies.runtime`, controller and rollout; never torch) and, above it, `policies.training`
(torch: learners, policy graphs and the ONNX export with model cards)."""
