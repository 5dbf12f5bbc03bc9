"""The MLPs of SAC: a squashed-Gaussian actor and twin critics run as one batched ensemble.

The two critics share one set of `baddbmm` calls (weights stacked on a leading axis), which
halves the number of small matmul kernels per update: on one CPU thread with batch 256 this
is most of the update cost.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

from policies.training.layers import mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class SquashedGaussianActor(nn.Module):
    """pi(a|x) = tanh(N(mu(x), sigma(x))); actions in [-1, 1]^n."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], action_dim: int):
        super().__init__()
        self.body = mlp(in_dim, hidden[:-1], hidden[-1])
        self.head = nn.Linear(hidden[-1], 2 * action_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the pre-squash Gaussian."""
        mu, log_std = self.head(F.relu(self.body(x))).chunk(2, dim=-1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized action and its log-probability (tanh correction included)."""
        mu, log_std = self(x)
        noise = torch.randn(mu.shape, generator=generator)
        u = mu + log_std.exp() * noise
        log_prob = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log(1 - tanh(u)^2), numerically stable form
        log_prob -= (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), log_prob


class DeterministicActor(nn.Module):
    """tanh(mu(x)): the evaluation/deployment action of a `SquashedGaussianActor`."""

    def __init__(self, actor: SquashedGaussianActor):
        super().__init__()
        self.actor = actor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(x)[0])


class EnsembleLinear(nn.Module):
    """`members` independent linear layers applied to (members, batch, in) at once."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinCritic(nn.Module):
    """Q1, Q2(x, a) as a two-member ensemble; returns shape (2, batch)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], action_dim: int):
        super().__init__()
        dims = [in_dim + action_dim, *hidden, 1]
        self.layers = nn.ModuleList(EnsembleLinear(2, a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        h = torch.cat((x, action), dim=-1).expand(2, -1, -1)
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h).squeeze(-1)
