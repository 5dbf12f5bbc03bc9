"""Training side (torch): HER + SAC/TD3 and PPO-LSTM for the goal-conditioned tasks,
safetensors checkpoints.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --seed 0 --out runs/reach`
(`--algo ppo-lstm`: `policies.training.ppo`, the Dactyl-shaped recurrent policy)

Never imported on a robot; `policies.onnx_policy` is the robot-side runtime.
"""
