"""Training side (torch): HER + SAC/TD3 and PPO-LSTM for the goal-conditioned tasks,
safetensors checkpoints, and the one export path to ONNX + model card.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --seed 0 --out runs/reach`
(`--algo ppo-lstm`: `policies.training.ppo`, the Dactyl-shaped recurrent policy)

One sub-package per algorithm (`her`, `ppo`), registered in `algorithms`; what they share
sits beside them (`trainer_base`, `loop`, `options`, `checkpoint`, `envs`, `randomization`,
`normalizer`, `layers`, `logs`, `rng`, `cli`); `export` turns any of them into a deployable
graph. Never imported on a robot: `policies.runtime` runs exported files without torch.
"""
