"""PPO's losses on a minibatch of BPTT chunks: clipped surrogate, entropy, value regression.

Every mean is over the `valid` steps only (padding and steps after a drop are excluded).
The policy and value networks share no parameters, so their losses are returned apart and
each is minimized by its own optimizer with its own gradient clip.
"""

from __future__ import annotations

import torch
from torch import Tensor

from policies.training.ppo.networks import LstmGaussianPolicy, PrivilegedValue
from policies.training.ppo.rollout import Chunks


def ppo_losses(
    policy: LstmGaussianPolicy, value: PrivilegedValue, batch: Chunks, clip_ratio: float
) -> dict[str, Tensor]:
    """policy (clipped surrogate, to minimize), value (0.5 MSE on normalized returns),
    entropy, and the diagnostics approx_kl and clip_fraction (no gradient)."""
    mask = batch.valid.to(torch.float32)
    count = mask.sum().clamp(min=1.0)
    mean, _ = policy(batch.policy_in, (batch.h0, batch.c0))
    log_ratio = policy.log_prob(mean, batch.actions) - batch.log_probs
    ratio = log_ratio.exp()
    clipped = ratio.clamp(1.0 - clip_ratio, 1.0 + clip_ratio)
    surrogate = torch.min(ratio * batch.advantages, clipped * batch.advantages)
    error = value(batch.value_in) - batch.value_targets
    with torch.no_grad():
        approx_kl = (((ratio - 1.0) - log_ratio) * mask).sum() / count
        clip_fraction = (((ratio - 1.0).abs() > clip_ratio) * mask).sum() / count
    return {
        "policy_loss": -(surrogate * mask).sum() / count,
        "value_loss": 0.5 * (error.square() * mask).sum() / count,
        "entropy": policy.entropy(),
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }
