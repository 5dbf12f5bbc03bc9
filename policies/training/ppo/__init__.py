"""PPO with a Dactyl-shaped LSTM policy and an asymmetric value function: `--algo ppo-lstm`.

Run: `twinbridge train --algo ppo-lstm --task hand-block-rotate-z --out runs/block-z`

`config` (options), `trainer` (`PpoLstmTrainer`), `networks`, `rollout` (storage, GAE, BPTT
chunks), `loss`, `reward` (Dactyl's shaped reward or the task's own).
"""
