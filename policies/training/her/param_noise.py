"""Adaptive parameter-space noise (Plappert et al. 2018) for a deterministic actor.

Why: Gaussian action noise is independent at every step, so a reaching arm jitters around
the policy's path; a perturbed copy of the actor explores consistently for a whole episode
(state-dependent, temporally correlated), which the paper found helps DDPG on sparse tasks.

The perturbed actors get N(0, sigma^2) added to every weight and bias and are resampled at
the start of every episode (one per env, like the paper's one per rollout worker). The paper
recommends LayerNorm between actor layers so one sigma perturbs every layer alike; our actor
(`networks.SquashedGaussianActor`, shared with SAC and the ONNX export) has none, and we
perturb it anyway: the adaptation below keeps the effect in action space at the target.

Adaptation: every K updates a fresh perturbed copy is compared with the actor on the update's
replay states, d = sqrt(mean((pi(s) - pi~(s))^2)); sigma is multiplied by `ADAPT_FACTOR` if
d < delta and divided by it otherwise. delta plays the role of the action-noise std it
replaces. sigma is a float64 tensor so a checkpoint restores it exactly.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

ADAPT_FACTOR = 1.01  # the paper's alpha


def perturbed_copy(actor: nn.Module, std: float, generator: torch.Generator) -> nn.Module:
    """A frozen copy of `actor` with N(0, std^2) added to every parameter."""
    noisy = copy.deepcopy(actor).requires_grad_(False)
    with torch.no_grad():
        for param in noisy.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * std)
    return noisy


@torch.no_grad()
def action_distance(policy: nn.Module, perturbed: nn.Module, x: torch.Tensor) -> float:
    """Root-mean-square action difference of two deterministic policies on inputs `x`."""
    return float((policy(x) - perturbed(x)).square().mean().sqrt())


def adapted_std(std: torch.Tensor, distance: float, target: float) -> torch.Tensor:
    """sigma moved one multiplicative step toward the target distance (same dtype)."""
    factor = ADAPT_FACTOR if distance < target else 1.0 / ADAPT_FACTOR
    return std * factor


class AdaptiveParamNoise:
    """The perturbed actors of the running episodes and their adaptive sigma."""

    def __init__(self, initial_std: float, target_distance: float, adapt_every_updates: int):
        self.std = torch.tensor(initial_std, dtype=torch.float64)
        self.target_distance = target_distance
        self.adapt_every_updates = adapt_every_updates
        self.perturbed: list[nn.Module] = []
        self.last_distance = math.nan

    def resample(self, policy: nn.Module, count: int, generator: torch.Generator) -> None:
        """New perturbations for `count` episodes (called when they start)."""
        std = float(self.std)
        self.perturbed = [perturbed_copy(policy, std, generator) for _ in range(count)]

    @torch.no_grad()
    def act(self, x: torch.Tensor) -> torch.Tensor:
        """Row i of `x` acted on by the perturbed actor of episode i."""
        if len(self.perturbed) != len(x):
            raise ValueError(
                f"{len(x)} inputs but {len(self.perturbed)} perturbed actors; call "
                "resample(count=...) at the start of the episodes"
            )
        return torch.cat([net(row[None]) for net, row in zip(self.perturbed, x, strict=True)])

    def adapt(self, policy: nn.Module, x: torch.Tensor, generator: torch.Generator) -> None:
        """One adaptation step of sigma, measured with a fresh perturbation on states `x`."""
        probe = perturbed_copy(policy, float(self.std), generator)
        self.last_distance = action_distance(policy, probe, x)
        self.std = adapted_std(self.std, self.last_distance, self.target_distance)
