"""From a trained `HerSacTrainer` to a zoo entry: policy graph, ONNX + card, ONNX evaluation.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --out runs/r --export x.onnx`

The card's `success_rate` is measured on the written ONNX file through `policies.rollout` (the
card-checked runtime), episode i reset with seed i, so `twinbridge rollout --policy FILE
--episodes N --seed 0 --json` reproduces it exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from policies.export import export_policy, update_card_metrics
from policies.graph import MlpPolicyGraph, PolicyGraphBase
from policies.training.config import EXPORT_FROM
from policies.training.errors import TrainingConfigError

if TYPE_CHECKING:
    from policies.training.protocols import EpochTrainer
    from policies.training.trainer import HerSacTrainer


def policy_graph(trainer: HerSacTrainer, which: str = "final") -> MlpPolicyGraph:
    """Normalizer + deterministic actor (tanh of the mean) + action scaling, as one module.

    `which="best"` builds it from the trainer's best-evaluation snapshot instead.
    """
    actor = copy.deepcopy(trainer.agent.deterministic_actor()).eval()
    mean, std = trainer.normalizer.mean, trainer.normalizer.std
    if which == "best":
        best = trainer.best_policy
        if not best:
            raise TrainingConfigError(
                "--export-from best: this run has no best-policy snapshot yet (it is taken "
                "at each epoch evaluation); train at least one epoch or export the final policy"
            )
        prefix = "best/actor/"
        actor.load_state_dict({k.removeprefix(prefix): v for k, v in best.items()
                               if k.startswith(prefix)})  # fmt: skip
        mean, std = best["best/obs_mean"], best["best/obs_std"]
    elif which != "final":
        raise TrainingConfigError(f"export from {which!r}: use one of {EXPORT_FROM}")
    space = trainer.envs.single_action_space
    return MlpPolicyGraph(
        mean,
        std,
        trainer.config.norm_clip,
        actor,
        torch.as_tensor(space.low, dtype=torch.float32),
        torch.as_tensor(space.high, dtype=torch.float32),
    )


def export_trained_policy(
    trainer: EpochTrainer,
    path: Path,
    *,
    graph: PolicyGraphBase,
    episodes: int,
    reproduce: str,
    which: str = "final",
) -> dict[str, Any]:
    """Write `path` and its card, evaluate the ONNX file, put the metrics on the card.

    `graph` is the trainer's deployable policy, built for `which` ("final" or "best") by its
    algorithm's builder (`policies.training.algorithms`: `policy_graph` here for HER).
    """
    from policies.rollout import RolloutConfig, rollout

    config = trainer.config
    export_policy(
        graph,
        config.task,
        path,
        training_config=config.to_dict(),
        seed=config.seed,
        metrics=None,
        reproduce_command=reproduce,
    )
    result = rollout(
        RolloutConfig(
            task=config.task, episodes=episodes, policy=str(path), seed=0,
            progress=config.progress,
        )
    )  # fmt: skip
    metrics = {
        "success_rate": result.success_rate,
        "mean_return": result.mean_return,
        "eval_episodes": episodes,
        "eval_seed": 0,
        "eval_command": (
            f"twinbridge rollout --task {config.task} --policy {path} --episodes {episodes} "
            "--seed 0 --json"
        ),
        "train_env_steps": int(trainer.counters["env_steps"]),
        "train_updates": int(trainer.counters["updates"]),
        "train_wall_time_s": round(float(trainer.counters["wall_time_s"]), 1),
        "exported_policy": which,
    }
    if which == "best":
        metrics["best_epoch_eval_success"] = float(trainer.counters["best_success"])
        metrics["best_env_steps"] = int(trainer.counters["best_env_steps"])
    update_card_metrics(path.with_suffix(".json"), metrics)
    return metrics
