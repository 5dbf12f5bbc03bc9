"""Training side (torch): HER + SAC for the goal-conditioned tasks, safetensors checkpoints.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --seed 0 --out runs/reach`

Never imported on a robot; `policies.onnx_policy` is the robot-side runtime.
"""
