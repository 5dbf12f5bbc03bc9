"""From a trained `HerSacTrainer` to a zoo entry: policy graph, ONNX + card, ONNX evaluation.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --out runs/r --export x.onnx`

The card's `success_rate` is measured on the written ONNX file through `sim.rollout` (the
card-checked runtime), episode i reset with seed i, so `twinbridge rollout --policy FILE
--episodes N --seed 0 --json` reproduces it exactly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from policies.export import export_policy, update_card_metrics
from policies.graph import MlpPolicyGraph

if TYPE_CHECKING:
    from policies.training.trainer import HerSacTrainer


def policy_graph(trainer: HerSacTrainer) -> MlpPolicyGraph:
    """Normalizer + deterministic actor (tanh of the mean) + action scaling, as one module."""
    space = trainer.envs.single_action_space
    return MlpPolicyGraph(
        trainer.normalizer.mean,
        trainer.normalizer.std,
        trainer.config.norm_clip,
        copy.deepcopy(trainer.agent.deterministic_actor()).eval(),
        torch.as_tensor(space.low, dtype=torch.float32),
        torch.as_tensor(space.high, dtype=torch.float32),
    )


def export_trained_policy(
    trainer: HerSacTrainer, path: Path, *, episodes: int, reproduce: str
) -> dict[str, Any]:
    """Write `path` and its card, evaluate the ONNX file, put the metrics on the card."""
    from sim.rollout import RolloutConfig, rollout

    config = trainer.config
    export_policy(
        policy_graph(trainer),
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
    }
    update_card_metrics(path.with_suffix(".json"), metrics)
    return metrics
