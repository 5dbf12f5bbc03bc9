"""The deployable graph of a PPO-LSTM run: normalizer + the policy's own layers + scaling.

Run: `twinbridge train --algo ppo-lstm --task hand-reach --total-env-steps 20000 --out
runs/r --export r.onnx` (the CLI exports through `policies.training.export`).

`LstmPolicyGraph.from_parts` copies the trained dense layer, the 1-layer nn.LSTM (into an
LSTM cell of the same weights) and the head, so the graph computes the deterministic
action the trainer evaluates: tanh of the Gaussian's mean, scaled to the action bounds.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from policies.graph import LstmPolicyGraph
from policies.training.errors import TrainingConfigError

if TYPE_CHECKING:
    from policies.training.ppo import PpoLstmTrainer


def lstm_policy_graph(trainer: PpoLstmTrainer, which: str = "final") -> LstmPolicyGraph:
    """The final policy, or (`which="best"`) the best-evaluating snapshot, as one graph."""
    policy = trainer.policy
    mean, std = trainer.normalizers["obs"].mean, trainer.normalizers["obs"].std
    if which == "best":
        if not trainer.best_policy:
            raise TrainingConfigError(
                "--export-from best: this run has no best-policy snapshot yet (it is taken "
                "at each epoch evaluation); train at least one epoch or export the final policy"
            )
        policy = copy.deepcopy(policy)
        prefix = "best/policy/"
        policy.load_state_dict({k.removeprefix(prefix): v for k, v in
                                trainer.best_policy.items() if k.startswith(prefix)})  # fmt: skip
        mean, std = trainer.best_policy["best/obs_mean"], trainer.best_policy["best/obs_std"]
    elif which != "final":
        raise TrainingConfigError(f"export from {which!r}: use final or best")
    space = trainer.envs.single_action_space
    return LstmPolicyGraph.from_parts(
        mean, std, trainer.config.norm_clip, policy.dense, policy.lstm, policy.head,
        torch.as_tensor(space.low, dtype=torch.float32),
        torch.as_tensor(space.high, dtype=torch.float32),
    ).eval()  # fmt: skip
