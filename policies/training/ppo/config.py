"""`PpoLstmConfig`: every option of a PPO run with a Dactyl-shaped LSTM policy, validated.

Run: `twinbridge train --algo ppo-lstm --help` (one flag per field below, same help text).

Built like `HerSacConfig`: the dataclass is the single source of the CLI flags, the
`--config` file keys, the run's `config.json` and the model card's `training_config`;
`__post_init__` validates everything before any env or network is built. Defaults follow
OpenAI et al. 2018, "Learning Dexterous In-Hand Manipulation" (policy: normalization,
dense 1024 + ReLU, LSTM 512; PPO with GAE, discount 0.998, lambda 0.95, clip 0.2, Adam
3e-4; reward: rotation-angle decrease, +5 on success, -20 on a drop), except where our
fixed 100-step, 25 Hz episodes call for otherwise (noted per field).
"""

from __future__ import annotations

from dataclasses import dataclass

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

ALGO = "ppo-lstm"
REWARDS = ("dactyl", "env")  # policies.training.ppo.reward


@dataclass
class PpoLstmConfig(TrainingOptions):
    """Options of one PPO-LSTM run (see the module docstring; units are in the names)."""

    task: str = option("hand-block-rotate-z", "task name (see `twinbridge tasks`)")
    algo: str = option(ALGO, f"algorithm: {ALGO} for this option set")
    total_env_steps: int = option(
        2_000_000, "stop after this many env steps (whole rollouts: rounded up)"
    )
    seed: int = option(0, "seed of torch, numpy and the env resets")
    num_envs: int = option(8, "envs stepped in lockstep")
    num_workers: int = option(
        0, "worker processes for the envs (sim.vector.SubprocVectorEnv); 0: in this process"
    )
    max_episode_steps: int = option(0, "episode length in env steps; 0: the task's own limit")
    episodes_per_rollout: int = option(
        1, "whole episodes per env in one rollout (rollout = num_envs x this x episode steps)"
    )
    bptt_steps: int = option(
        10, "truncated-BPTT chunk length: each chunk starts from the LSTM state the rollout "
        "had there (zero at an episode start); minibatches are whole chunks (Dactyl: 10)",
    )  # fmt: skip
    epochs_per_rollout: int = option(4, "passes of PPO updates over each rollout")
    num_minibatches: int = option(4, "minibatches (of whole chunks) per pass")
    gamma: float = option(0.998, "discount factor per env step (Dactyl: 0.998)")
    gae_lambda: float = option(0.95, "GAE(lambda) mixing of n-step advantages (Dactyl: 0.95)")
    clip_ratio: float = option(0.2, "PPO probability-ratio clip epsilon")
    entropy_coef: float = option(
        0.0, "weight of the policy entropy bonus (Dactyl: 0.01; with a state-independent "
        "log-std it only widens the noise)",
    )  # fmt: skip
    lr_policy: float = option(3e-4, "Adam learning rate of the policy (and its log-std)")
    lr_value: float = option(3e-4, "Adam learning rate of the value network")
    max_grad_norm: float = option(
        1.0, "clip of each network's gradient L2 norm per update (policy and value apart)"
    )
    dense_size: int = option(1024, "policy: width of the ReLU dense layer (Dactyl: 1024)")
    lstm_size: int = option(512, "policy: LSTM hidden/cell size (Dactyl: 512)")
    value_hidden_sizes: tuple[int, ...] = option(
        (1024, 512), "value MLP widths; input: normalized policy input, privileged state "
        "and the fraction of the episode left",
    )  # fmt: skip
    initial_action_std: float = option(
        0.3, "initial std of the Gaussian action noise (learned; actions span [-1, 1])"
    )
    reward: str = option(
        "dactyl", f"training reward, one of: {', '.join(REWARDS)}; dactyl: decrease of the "
        "goal distances per step, + success_bonus per step at the goal, - drop_penalty when "
        "the object falls (episode ends there); env: the task's own (sparse) reward",
    )  # fmt: skip
    reward_per_rad: float = option(1.0, "dactyl: reward per radian of rotation-distance decrease")
    reward_per_m: float = option(
        10.0, "dactyl: reward per metre of position-distance decrease (10: 1 cm counts as "
        "0.1 rad, the ratio of the success thresholds)",
    )  # fmt: skip
    success_bonus: float = option(
        5.0, "dactyl: reward for each step that ends at the goal (Dactyl: 5 per goal reached)"
    )
    drop_penalty: float = option(20.0, "dactyl: penalty when the object is dropped (Dactyl: 20)")
    obs_clip: float = option(200.0, "raw policy/value input clip before normalization")
    norm_clip: float = option(5.0, "normalized input clip, in standard deviations")
    norm_eps: float = option(0.01, "smallest standard deviation of the input normalizers")
    epoch_env_steps: int = option(
        20_000, "env steps between evaluations, log rows and checkpoints (whole rollouts)"
    )
    eval_episodes: int = option(20, "deterministic-action episodes per evaluation")
    eval_seed: int = option(1_000_000, "seed of evaluation episode 0 (episode i: eval_seed + i)")
    randomization: str = option(
        "", "domain randomization / ADR YAML (sim/randomization/configs/); empty: none"
    )
    torch_threads: int = option(1, "torch intra-op threads (env workers use the other cores)")
    progress: bool = option(True, "show a tqdm progress bar")

    def _validate(self) -> None:
        _check_names(self)
        _check_ranges(self)

    def chunks_per_episode(self) -> int:
        """BPTT chunks per episode (the last one padded when bptt_steps does not divide it)."""
        return -(-self.episode_steps() // self.bptt_steps)

    def rollout_env_steps(self) -> int:
        """Env steps collected per PPO update."""
        return self.num_envs * self.episodes_per_rollout * self.episode_steps()


def _check_names(config: PpoLstmConfig) -> None:
    check_task_and_randomization(config)
    if config.algo != ALGO:
        raise TrainingConfigError(f"option algo {config.algo!r}: this option set is {ALGO!r}")
    if config.reward not in REWARDS:
        raise TrainingConfigError(f"option reward {config.reward!r}; valid: {', '.join(REWARDS)}")


_POSITIVE = (
    "total_env_steps", "num_envs", "episodes_per_rollout", "bptt_steps", "epochs_per_rollout",
    "num_minibatches", "clip_ratio", "lr_policy", "lr_value", "max_grad_norm", "dense_size",
    "lstm_size", "initial_action_std", "obs_clip", "norm_clip", "norm_eps", "epoch_env_steps",
    "eval_episodes", "torch_threads",
)  # fmt: skip
_NON_NEGATIVE = ("num_workers", "max_episode_steps", "entropy_coef", "reward_per_rad",
                 "reward_per_m", "success_bonus", "drop_penalty")  # fmt: skip


def _check_ranges(config: PpoLstmConfig) -> None:
    c = config
    check_ranges(c, _POSITIVE, _NON_NEGATIVE, unit_interval=("gamma", "gae_lambda"))
    require("clip_ratio", c.clip_ratio, c.clip_ratio < 1.0, "must be < 1")
    check_env_counts(c)
    check_widths("value_hidden_sizes", c.value_hidden_sizes)
    steps = c.episode_steps()
    require("bptt_steps", c.bptt_steps, c.bptt_steps <= steps,
            f"must be <= the episode length {steps}")  # fmt: skip
    chunks = c.num_envs * c.episodes_per_rollout * c.chunks_per_episode()
    require("num_minibatches", c.num_minibatches, c.num_minibatches <= chunks,
            f"must be <= the {chunks} BPTT chunks of one rollout")  # fmt: skip
