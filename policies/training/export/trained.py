"""From a trained policy to a zoo entry: deployable graph, ONNX + card, ONNX evaluation.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --out runs/r --export x.onnx`

What differs per algorithm is only how its trained parts become a graph: one small
builder each (`mlp_policy_graph` for her-sac/her-td3, `lstm_policy_graph` for ppo-lstm),
registered with the algorithm in `policies.training.algorithms`. Which parameters (now or
the best snapshot) and their normalizer come from the trainer's `policy_parts`.

The card's `success_rate` is measured on the written ONNX file through `policies.rollout` (the
card-checked runtime), episode i reset with seed i, so `twinbridge rollout --policy FILE
--episodes N --seed 0 --json` reproduces it exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from policies.card import update_card_metrics
from policies.training.algorithms import get_algorithm, load
from policies.training.export.graph import LstmPolicyGraph, MlpPolicyGraph
from policies.training.export.onnx_export import export_policy
from policies.training.protocols import EpochTrainer


def mlp_policy_graph(trainer: EpochTrainer, which: str = "final") -> MlpPolicyGraph:
    """Normalizer + deterministic actor (tanh of the mean) + action scaling (HER)."""
    actor, mean, std = trainer.policy_parts(which)
    low, high = _action_bounds(trainer)
    return MlpPolicyGraph(mean, std, trainer.config.norm_clip, actor, low, high)


def lstm_policy_graph(trainer: EpochTrainer, which: str = "final") -> LstmPolicyGraph:
    """Normalizer + the policy's dense, LSTM and head layers + action scaling (PPO-LSTM):
    the deterministic action the trainer evaluates, tanh of the Gaussian's mean."""
    policy: Any  # an LstmGaussianPolicy: dense, lstm, head
    policy, mean, std = trainer.policy_parts(which)
    low, high = _action_bounds(trainer)
    return LstmPolicyGraph.from_parts(
        mean, std, trainer.config.norm_clip, policy.dense, policy.lstm, policy.head, low, high
    ).eval()


def _action_bounds(trainer: EpochTrainer) -> tuple[torch.Tensor, torch.Tensor]:
    space = trainer.envs.single_action_space
    low = torch.as_tensor(space.low, dtype=torch.float32)
    return low, torch.as_tensor(space.high, dtype=torch.float32)


def export_trained_policy(
    trainer: EpochTrainer, path: Path, *, episodes: int, reproduce: str, which: str = "final"
) -> dict[str, Any]:
    """Write `path` and its card, evaluate the ONNX file, put the metrics on the card.

    The graph is the trainer's policy as it is now (`which="final"`) or at its best epoch
    evaluation ("best"), built by its algorithm's registered builder.
    """
    config = trainer.config
    build = load(get_algorithm(config.algo).policy_graph)
    export_policy(
        build(trainer, which),
        config.task,
        path,
        training_config=config.to_dict(),
        seed=config.seed,
        metrics=None,
        reproduce_command=reproduce,
    )
    metrics = _evaluate(config, path, episodes)
    metrics.update(_training_metrics(trainer, which))
    update_card_metrics(path.with_suffix(".json"), metrics)
    return metrics


def _evaluate(config: Any, path: Path, episodes: int) -> dict[str, Any]:
    """Success and return of the written ONNX file, exactly as `twinbridge rollout` runs it."""
    from policies.rollout import RolloutConfig, rollout

    result = rollout(
        RolloutConfig(
            task=config.task, episodes=episodes, policy=str(path), seed=0,
            progress=config.progress,
        )
    )  # fmt: skip
    return {
        "success_rate": result.success_rate,
        "mean_return": result.mean_return,
        "eval_episodes": episodes,
        "eval_seed": 0,
        "eval_command": (
            f"twinbridge rollout --task {config.task} --policy {path} --episodes {episodes} "
            "--seed 0 --json"
        ),
    }


def _training_metrics(trainer: EpochTrainer, which: str) -> dict[str, Any]:
    """How much training the exported policy had, and which snapshot it is."""
    counters = trainer.counters
    metrics: dict[str, Any] = {
        "train_env_steps": int(counters["env_steps"]),
        "train_updates": int(counters["updates"]),
        "train_wall_time_s": round(float(counters["wall_time_s"]), 1),
        "exported_policy": which,
    }
    if which == "best":
        metrics["best_epoch_eval_success"] = float(counters["best_success"])
        metrics["best_env_steps"] = int(counters["best_env_steps"])
    return metrics
