"""PPO's networks: a Dactyl-shaped recurrent Gaussian policy and an asymmetric value MLP.

The policy's mean is `tanh(head(LSTM(ReLU(dense(x)))))`, exactly the arithmetic of
`policies.training.export.graph.LstmPolicyGraph` (which takes these very layers in
`from_parts`), so the deterministic action trained and evaluated here is the one exported.
The noise is a state-independent learned log-std, as in Dactyl, so it never enters the
exported graph.

The value network sees more than the policy: the policy's normalized input, the
normalized privileged simulator state (`Task.privileged_state`) and the fraction of the
episode left. It is feed-forward: its inputs are (close to) the full Markov state, so a
recurrent value would add cost and nothing to estimate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from policies.training.layers import mlp

LstmState = tuple[Tensor, Tensor]  # hidden, cell: [batch, lstm_size] each


class LstmGaussianPolicy(nn.Module):
    """pi(a | history) = N(tanh(head(h_t)), exp(log_std)); h_t from ReLU(dense(x)) -> LSTM."""

    def __init__(
        self, in_dim: int, action_dim: int, dense_size: int, lstm_size: int, initial_std: float
    ):
        super().__init__()
        self.dense = nn.Linear(in_dim, dense_size)
        self.lstm = nn.LSTM(dense_size, lstm_size, batch_first=True)
        self.head = nn.Linear(lstm_size, action_dim)
        with torch.no_grad():  # start near the action-range centre, as PPO practice does
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(initial_std)))

    def initial_state(self, batch: int) -> LstmState:
        """Zero hidden and cell state: the start of every episode."""
        zeros = torch.zeros(batch, self.lstm.hidden_size)
        return zeros, zeros.clone()

    def forward(self, x: Tensor, state: LstmState) -> tuple[Tensor, LstmState]:
        """Means [B, L, A] in [-1, 1] for inputs [B, L, in_dim] from `state`; the end state."""
        h, c = state
        out, (h_n, c_n) = self.lstm(torch.relu(self.dense(x)), (h[None], c[None]))
        return torch.tanh(self.head(out)), (h_n[0], c_n[0])

    def log_prob(self, mean: Tensor, action: Tensor) -> Tensor:
        """Log-density of `action` (pre-clip) under N(mean, std), summed over action dims."""
        log_std = self.log_std.expand_as(mean)
        z = (action - mean) / log_std.exp()
        return (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> Tensor:
        """Entropy of the action noise (the same in every state)."""
        return (self.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum()

    def sample(self, mean: Tensor, generator: torch.Generator) -> Tensor:
        """mean + std * N(0, 1) noise from `generator` (actions are clipped only when stepping)."""
        noise = torch.randn(mean.shape, generator=generator)
        return mean + self.log_std.exp() * noise


class PrivilegedValue(nn.Module):
    """V(policy input, privileged state, episode fraction left) -> normalized return."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp(in_dim, hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)
