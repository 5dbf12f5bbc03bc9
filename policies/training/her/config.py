"""`HerSacConfig`: every option of a HER training run (SAC, or TD3 to compare), validated.

Run: `twinbridge train --help` (one flag per field below, with the same help text).

The dataclass is the single source of truth: the CLI flags, the `--config` file keys, the
`config.json` written next to each run and the model card's `training_config` are all its
fields. Validation happens in `__post_init__`, before any env or network is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from policies.training.errors import TrainingConfigError
from policies.training.options import (
    TrainingOptions,
    check_env_counts,
    check_ranges,
    check_task_and_randomization,
    check_widths,
    option,
    require,
)

ALGOS = ("her-sac", "her-td3")  # her-td3: the measured alternative (policies.training.her.td3)
HER_STRATEGIES = ("future",)
EXPLORATIONS = ("action", "parameter")  # parameter: policies.training.her.param_noise (her-td3)


@dataclass
class HerSacConfig(TrainingOptions):
    """Options of one HER + SAC run (see the module docstring; units are in the names)."""

    task: str = option("fetch-reach", "task name (see `twinbridge tasks`)")
    algo: str = option("her-sac", f"algorithm, one of: {', '.join(ALGOS)}")
    total_env_steps: int = option(
        20_000, "stop after this many env steps (whole episode batches: rounded up)"
    )
    seed: int = option(0, "seed of torch, numpy and the env resets")
    num_envs: int = option(2, "envs stepped in lockstep; one episode batch = num_envs episodes")
    num_workers: int = option(
        0, "worker processes for the envs (sim.vector.SubprocVectorEnv); 0: in this process"
    )
    max_episode_steps: int = option(0, "episode length in env steps; 0: the task's own limit")
    buffer_size_transitions: int = option(1_000_000, "replay capacity (oldest episodes dropped)")
    batch_size: int = option(256, "transitions per gradient update")
    updates_per_env_step: float = option(
        0.5, "gradient updates per collected env step (update-to-data ratio)"
    )
    warmup_env_steps: int = option(
        1000, "first env steps with uniform random actions and no updates"
    )
    gamma: float = option(0.98, "discount factor per env step")
    tau: float = option(0.05, "Polyak step of the target critics per update (1 - polyak)")
    lr_actor: float = option(1e-3, "Adam learning rate of the actor")
    lr_critic: float = option(1e-3, "Adam learning rate of the twin critics")
    lr_alpha: float = option(1e-3, "Adam learning rate of log(alpha)")
    init_alpha: float = option(0.1, "initial entropy temperature alpha")
    target_entropy_per_action_dim: float = option(
        -1.0, "entropy target, times the action dimension (SAC's -dim(A) heuristic)"
    )
    action_l2_penalty: float = option(
        0.0,
        "weight of mean(action^2) in the actor loss (HER paper: 1.0); keeps actions "
        "off the bounds, where tanh hides exploration noise",
    )
    td3_action_noise_std: float = option(0.2, "her-td3 only: exploration noise std (actions)")
    exploration: str = option(
        "action",
        f"her-td3 only: exploration, one of: {', '.join(EXPLORATIONS)} (Gaussian action noise "
        "of td3_action_noise_std, or adaptive parameter-space noise)",
    )
    param_noise_initial_std: float = option(
        0.1, "exploration parameter: initial std of the actor-parameter noise"
    )
    param_noise_target_distance: float = option(
        0.2, "exploration parameter: target RMS action distance of the perturbed actor"
    )
    param_noise_adapt_every_updates: int = option(
        50, "exploration parameter: gradient updates between adaptations of the noise std"
    )
    td3_target_noise_std: float = option(0.2, "her-td3 only: target policy smoothing noise std")
    td3_target_noise_clip: float = option(0.5, "her-td3 only: clip of the smoothing noise")
    td3_policy_delay: int = option(2, "her-td3 only: critic updates per actor/target update")
    hidden_sizes: tuple[int, ...] = option((256, 256, 256), "hidden layer widths of all MLPs")
    her_strategy: str = option("future", f"HER goal strategy, one of: {', '.join(HER_STRATEGIES)}")
    her_k: int = option(4, "HER relabelled goals per real one: relabel probability k / (k + 1)")
    obs_clip: float = option(200.0, "raw observation/goal clip before normalization")
    norm_clip: float = option(5.0, "normalized input clip, in standard deviations")
    norm_eps: float = option(0.01, "smallest standard deviation of the normalizer")
    epoch_env_steps: int = option(2000, "env steps between evaluations, log rows and checkpoints")
    eval_episodes: int = option(20, "deterministic-action episodes per evaluation")
    eval_seed: int = option(1_000_000, "seed of evaluation episode 0 (episode i: eval_seed + i)")
    randomization: str = option(
        "", "domain randomization / ADR YAML (sim/randomization/configs/); empty: none"
    )
    demonstrations_dir: str = option(
        "",
        "learn from demonstrations (Nair et al. 2018, policies.training.her.demonstrations): a "
        "dataset directory of hardware.recording.dataset (meta.json + episode_*.npz) of this "
        "task; empty: none",
    )
    demo_batch_size: int = option(
        128, "demonstrations: demo transitions per update, sampled next to batch_size replay ones"
    )
    bc_loss_weight: float = option(
        1000.0,
        "demonstrations: lambda, the weight of the mean behaviour-cloning loss on demo samples "
        "against the mean -Q actor loss (Nair et al.'s code: 0.0078 x sum over 128 demo "
        "samples vs 0.001 x mean Q, i.e. about 1000)",
    )
    q_filter: bool = option(
        True,
        "demonstrations: clone a demo action only where the critic rates it above the "
        "actor's, Q(s, a_demo) > Q(s, pi(s))",
    )
    torch_threads: int = option(1, "torch intra-op threads (env workers use the other cores)")
    progress: bool = option(True, "show a tqdm progress bar")

    def _validate(self) -> None:
        _check_names(self)
        _check_ranges(self)

    @property
    def relabel_probability(self) -> float:
        """Share of sampled transitions whose goal is replaced (0.8 for k = 4)."""
        return 1.0 - 1.0 / (1.0 + self.her_k)


def _check_names(config: HerSacConfig) -> None:
    check_task_and_randomization(config)
    _check_demonstrations(config.demonstrations_dir)
    if config.algo not in ALGOS:
        raise TrainingConfigError(f"option algo {config.algo!r}; valid: {', '.join(ALGOS)}")
    if config.exploration not in EXPLORATIONS:
        raise TrainingConfigError(
            f"option exploration {config.exploration!r}; valid: {', '.join(EXPLORATIONS)}"
        )
    if config.exploration == "parameter" and config.algo != "her-td3":
        raise TrainingConfigError(
            f"option exploration 'parameter' needs a deterministic actor: use --algo her-td3, "
            f"not {config.algo!r} (SAC explores through its stochastic policy)"
        )
    if config.her_strategy not in HER_STRATEGIES:
        raise TrainingConfigError(
            f"option her_strategy {config.her_strategy!r}; valid: {', '.join(HER_STRATEGIES)}"
        )


def _check_demonstrations(directory: str) -> None:
    """A light check before anything is built: the directory holds a dataset's meta.json
    (the trainer reads and validates the whole dataset against the env)."""
    if not directory:
        return
    from hardware.recording.dataset import META_FILE

    meta = Path(directory) / META_FILE
    if not meta.is_file():
        raise TrainingConfigError(
            f"option demonstrations_dir: {meta} does not exist; give a directory written by "
            "`twinbridge bag export` or `bench/demonstrations.py --generate-demos`"
        )


_POSITIVE = (
    "total_env_steps", "num_envs", "buffer_size_transitions", "batch_size", "epoch_env_steps",
    "eval_episodes", "torch_threads", "obs_clip", "norm_clip", "norm_eps", "lr_actor",
    "lr_critic", "lr_alpha", "init_alpha", "td3_policy_delay", "param_noise_initial_std",
    "param_noise_target_distance", "param_noise_adapt_every_updates", "demo_batch_size",
)  # fmt: skip
_NON_NEGATIVE = ("num_workers", "max_episode_steps", "warmup_env_steps", "her_k",
                 "updates_per_env_step", "action_l2_penalty", "td3_action_noise_std",
                 "td3_target_noise_std", "td3_target_noise_clip",
                 "bc_loss_weight")  # fmt: skip


def _check_ranges(config: HerSacConfig) -> None:
    c = config
    check_ranges(c, _POSITIVE, _NON_NEGATIVE, ("gamma", "tau"))
    check_env_counts(c)
    check_widths("hidden_sizes", c.hidden_sizes)
    batch = c.num_envs * c.episode_steps()
    size = c.buffer_size_transitions
    require("buffer_size_transitions", size, size >= batch, f"must hold {batch} (one batch)")
