"""`DaggerConfig`: every option of a DAgger run, validated.

Run: `twinbridge train --algo dagger --help` (one flag per field below, with the same help).

Like `HerSacConfig`, the dataclass is the single source of truth of its CLI flags, `--config`
file keys, the run's `config.json` and the model card's `training_config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.training.options import (
    TrainingOptions,
    check_env_counts,
    check_ranges,
    check_task_and_randomization,
    check_widths,
    option,
    require,
)

ALGO = "dagger"


@dataclass
class DaggerConfig(TrainingOptions):
    """Options of one DAgger run (see policies.training.dagger.trainer; units in names)."""

    task: str = option("fetch-pick-and-place", "task name (see `twinbridge tasks`)")
    algo: str = option(ALGO, "algorithm: dagger")
    total_env_steps: int = option(
        60_000, "stop after this many env steps (whole episode batches: rounded up)"
    )
    seed: int = option(0, "seed of torch, numpy and the env resets")
    num_envs: int = option(2, "envs stepped in lockstep; one episode batch = num_envs episodes")
    num_workers: int = option(
        0, "worker processes for the envs (sim.vector.SubprocVectorEnv); 0: in this process"
    )
    max_episode_steps: int = option(0, "episode length in env steps; 0: the task's own limit")
    expert: str = option("scripted", "who labels every visited state: scripted (sim.scripted)")
    expert_env_steps: int = option(
        10_000, "first env steps driven by the expert alone (its demonstrations)"
    )
    expert_share: float = option(
        0.3,
        "after those, the share of episodes the expert drives (DAgger's beta), falling "
        "linearly to 0 at expert_share_end_env_steps; the student drives the rest",
    )
    expert_share_end_env_steps: int = option(
        20_000, "env step at which the expert stops driving episodes"
    )
    dataset_size_transitions: int = option(
        1_000_000, "capacity of the aggregated (state, expert action) dataset; oldest dropped"
    )
    batch_size: int = option(256, "labelled states per gradient update")
    updates_per_env_step: float = option(1.0, "gradient updates per collected env step")
    lr: float = option(1e-3, "Adam learning rate of the policy")
    hidden_sizes: tuple[int, ...] = option((256, 256, 256), "hidden layer widths of the policy")
    obs_clip: float = option(200.0, "raw observation/goal clip before normalization")
    norm_clip: float = option(5.0, "normalized input clip, in standard deviations")
    norm_eps: float = option(0.01, "smallest standard deviation of the normalizer")
    epoch_env_steps: int = option(2000, "env steps between evaluations, log rows and checkpoints")
    eval_episodes: int = option(20, "student-only episodes per evaluation")
    eval_seed: int = option(1_000_000, "seed of evaluation episode 0 (episode i: eval_seed + i)")
    randomization: str = option(
        "", "domain randomization / ADR YAML (sim/randomization/configs/); empty: none"
    )
    torch_threads: int = option(1, "torch intra-op threads (env workers use the other cores)")
    progress: bool = option(True, "show a tqdm progress bar")

    def _validate(self) -> None:
        from policies.training.dagger.experts import check_expert

        require("algo", self.algo, self.algo == ALGO, f"must be {ALGO!r}")
        check_ranges(
            self,
            positive=("total_env_steps", "num_envs", "dataset_size_transitions", "batch_size",
                      "lr", "obs_clip", "norm_clip", "norm_eps", "epoch_env_steps",
                      "eval_episodes", "torch_threads"),
            non_negative=("num_workers", "max_episode_steps", "expert_env_steps",
                          "expert_share_end_env_steps", "updates_per_env_step"),
        )  # fmt: skip
        share = self.expert_share
        require("expert_share", share, 0.0 <= share <= 1.0, "must be in [0, 1]")
        check_widths("hidden_sizes", self.hidden_sizes)
        check_task_and_randomization(self)
        check_env_counts(self)
        check_expert(self.expert, self.task)
