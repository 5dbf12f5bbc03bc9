"""DAgger (Ross et al. 2011) from a scripted expert: `--algo dagger`.

Run: `twinbridge train --task fetch-pick-and-place --algo dagger --out runs/pnp-dagger`

`config` (options), `experts` (who labels states), `trainer` (`DaggerTrainer`).
"""
