"""HER (hindsight experience replay) with SAC or TD3: `--algo her-sac` and `--algo her-td3`.

Run: `twinbridge train --task fetch-reach --algo her-sac --total-env-steps 6000 --out runs/r`

`config` (options), `trainer` (`HerSacTrainer`), `sac` and `td3` (agents), `networks`,
`replay` (episode replay with `future` relabelling), `param_noise`, `demonstrations`.
"""
