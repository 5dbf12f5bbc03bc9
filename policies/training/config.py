"""`HerSacConfig`: every option of a HER training run (SAC, or TD3 to compare), validated.

Run: `twinbridge train --help` (one flag per field below, with the same help text).

The dataclass is the single source of truth: the CLI flags, the `--config` file keys, the
`config.json` written next to each run and the model card's `training_config` are all its
fields. Validation happens in `__post_init__`, before any env or network is built.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.training.errors import TrainingConfigError
from policies.training.options import (
    build_config,
    check_field_types,
    check_randomization,
    check_ranges,
    require,
)
from sim.errors import UnknownNameError
from sim.tasks import get_task_spec

ALGOS = ("her-sac", "her-td3")  # her-td3: the measured alternative (policies.training.td3)
HER_STRATEGIES = ("future",)
EXPLORATIONS = ("action", "parameter")  # parameter: policies.training.param_noise (her-td3)
EXPORT_FROM = ("final", "best")  # export the last policy, or the best-evaluating snapshot
# Options a resumed run may change: they do not affect what is learned, except
# randomization, which a resumed run may add or change to fine-tune on randomized physics.
RESUMABLE = ("total_env_steps", "progress", "num_workers", "randomization")


def _opt(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field whose help text becomes the CLI flag's --help."""
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class HerSacConfig:
    """Options of one HER + SAC run (see the module docstring; units are in the names)."""

    task: str = _opt("fetch-reach", "task name (see `twinbridge tasks`)")
    algo: str = _opt("her-sac", f"algorithm, one of: {', '.join(ALGOS)}")
    total_env_steps: int = _opt(
        20_000, "stop after this many env steps (whole episode batches: rounded up)"
    )
    seed: int = _opt(0, "seed of torch, numpy and the env resets")
    num_envs: int = _opt(2, "envs stepped in lockstep; one episode batch = num_envs episodes")
    num_workers: int = _opt(
        0, "worker processes for the envs (sim.vector.SubprocVectorEnv); 0: in this process"
    )
    max_episode_steps: int = _opt(0, "episode length in env steps; 0: the task's own limit")
    buffer_size_transitions: int = _opt(1_000_000, "replay capacity (oldest episodes dropped)")
    batch_size: int = _opt(256, "transitions per gradient update")
    updates_per_env_step: float = _opt(
        0.5, "gradient updates per collected env step (update-to-data ratio)"
    )
    warmup_env_steps: int = _opt(
        1000, "first env steps with uniform random actions and no updates"
    )
    gamma: float = _opt(0.98, "discount factor per env step")
    tau: float = _opt(0.05, "Polyak step of the target critics per update (1 - polyak)")
    lr_actor: float = _opt(1e-3, "Adam learning rate of the actor")
    lr_critic: float = _opt(1e-3, "Adam learning rate of the twin critics")
    lr_alpha: float = _opt(1e-3, "Adam learning rate of log(alpha)")
    init_alpha: float = _opt(0.1, "initial entropy temperature alpha")
    target_entropy_per_action_dim: float = _opt(
        -1.0, "entropy target, times the action dimension (SAC's -dim(A) heuristic)"
    )
    action_l2_penalty: float = _opt(
        0.0,
        "weight of mean(action^2) in the actor loss (HER paper: 1.0); keeps actions "
        "off the bounds, where tanh hides exploration noise",
    )
    td3_action_noise_std: float = _opt(0.2, "her-td3 only: exploration noise std (actions)")
    exploration: str = _opt(
        "action",
        f"her-td3 only: exploration, one of: {', '.join(EXPLORATIONS)} (Gaussian action noise "
        "of td3_action_noise_std, or adaptive parameter-space noise)",
    )
    param_noise_initial_std: float = _opt(
        0.1, "exploration parameter: initial std of the actor-parameter noise"
    )
    param_noise_target_distance: float = _opt(
        0.2, "exploration parameter: target RMS action distance of the perturbed actor"
    )
    param_noise_adapt_every_updates: int = _opt(
        50, "exploration parameter: gradient updates between adaptations of the noise std"
    )
    td3_target_noise_std: float = _opt(0.2, "her-td3 only: target policy smoothing noise std")
    td3_target_noise_clip: float = _opt(0.5, "her-td3 only: clip of the smoothing noise")
    td3_policy_delay: int = _opt(2, "her-td3 only: critic updates per actor/target update")
    hidden_sizes: tuple[int, ...] = _opt((256, 256, 256), "hidden layer widths of all MLPs")
    her_strategy: str = _opt("future", f"HER goal strategy, one of: {', '.join(HER_STRATEGIES)}")
    her_k: int = _opt(4, "HER relabelled goals per real one: relabel probability k / (k + 1)")
    obs_clip: float = _opt(200.0, "raw observation/goal clip before normalization")
    norm_clip: float = _opt(5.0, "normalized input clip, in standard deviations")
    norm_eps: float = _opt(0.01, "smallest standard deviation of the normalizer")
    epoch_env_steps: int = _opt(2000, "env steps between evaluations, log rows and checkpoints")
    eval_episodes: int = _opt(20, "deterministic-action episodes per evaluation")
    eval_seed: int = _opt(1_000_000, "seed of evaluation episode 0 (episode i: eval_seed + i)")
    randomization: str = _opt(
        "", "domain randomization / ADR YAML (sim/randomization/configs/); empty: none"
    )
    demonstrations_dir: str = _opt(
        "",
        "learn from demonstrations (Nair et al. 2018, policies.training.demonstrations): a "
        "dataset directory of hardware.recording.dataset (meta.json + episode_*.npz) of this "
        "task; empty: none",
    )
    demo_batch_size: int = _opt(
        128, "demonstrations: demo transitions per update, sampled next to batch_size replay ones"
    )
    bc_loss_weight: float = _opt(
        1000.0,
        "demonstrations: lambda, the weight of the mean behaviour-cloning loss on demo samples "
        "against the mean -Q actor loss (Nair et al.'s code: 0.0078 x sum over 128 demo "
        "samples vs 0.001 x mean Q, i.e. about 1000)",
    )
    q_filter: bool = _opt(
        True,
        "demonstrations: clone a demo action only where the critic rates it above the "
        "actor's, Q(s, a_demo) > Q(s, pi(s))",
    )
    torch_threads: int = _opt(1, "torch intra-op threads (env workers use the other cores)")
    progress: bool = _opt(True, "show a tqdm progress bar")

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        check_field_types(self)
        _check_names(self)
        _check_ranges(self)

    @property
    def relabel_probability(self) -> float:
        """Share of sampled transitions whose goal is replaced (0.8 for k = 4)."""
        return 1.0 - 1.0 / (1.0 + self.her_k)

    def episode_steps(self) -> int:
        """Episode length: the option, or the task's registered limit."""
        return self.max_episode_steps or get_task_spec(self.task).max_episode_steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["hidden_sizes"] = list(self.hidden_sizes)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> HerSacConfig:
        """Build from a mapping, refusing unknown keys with the list of valid ones."""
        return build_config(cls, values, source)


def load_config_file(path: Path) -> dict[str, Any]:
    """Option values from a JSON (or, with PyYAML installed, YAML) file; not yet validated."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TrainingConfigError(f"cannot read config file {path}: {e}") from e
    values = _parse(text, Path(path))
    if not isinstance(values, dict):
        raise TrainingConfigError(f"{path}: expected a mapping of option: value at top level")
    return values


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise TrainingConfigError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml); or use JSON"
            ) from e
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise TrainingConfigError(f"{path} is not valid YAML: {e}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TrainingConfigError(f"{path} is not valid JSON: {e}") from e


def _check_names(config: HerSacConfig) -> None:
    check_randomization(config.randomization)
    _check_demonstrations(config.demonstrations_dir)
    try:
        get_task_spec(config.task)
    except UnknownNameError as e:
        raise TrainingConfigError(f"option task: {e}") from e
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
    require("num_workers", c.num_workers, c.num_workers <= c.num_envs, "must be <= num_envs")
    require("hidden_sizes", c.hidden_sizes, len(c.hidden_sizes) > 0 and min(c.hidden_sizes) > 0,
            "must be one or more positive widths")  # fmt: skip
    limit = get_task_spec(c.task).max_episode_steps
    require("max_episode_steps", c.max_episode_steps, c.max_episode_steps <= limit,
            f"must be <= the task's limit {limit}")  # fmt: skip
    batch = c.num_envs * c.episode_steps()
    size = c.buffer_size_transitions
    require("buffer_size_transitions", size, size >= batch, f"must hold {batch} (one batch)")
