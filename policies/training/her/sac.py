"""Soft actor-critic (Haarnoja et al. 2018, automatic temperature) on normalized inputs.

Why SAC over DDPG/TD3 for HER: its stochastic policy explores without a hand-tuned noise
schedule, and the learned temperature adapts it per task; published Fetch results (e.g.
SB3/rl-zoo's HER benchmarks, and TQC, a SAC variant, for the hard Fetch tasks) favour it.
`policies.training.her.td3` is the measured alternative (see its docstring for the numbers).

All randomness goes through one `torch.Generator`, so a run is reproducible and resumable.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from policies.training.her.config import HerSacConfig
from policies.training.her.demonstrations import demo_actor_term
from policies.training.her.networks import DeterministicActor, SquashedGaussianActor, TwinCritic


@dataclass
class Batch:
    """A training minibatch as float32 tensors (inputs already normalized).

    With demonstrations, the last `demo_rows` rows are demo transitions (the actor's
    behaviour-cloning term applies to them; `policies.training.her.demonstrations`).
    """

    x: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_x: torch.Tensor
    demo_rows: int = 0


class SacAgent:
    """Actor, twin critics with Polyak targets, and log(alpha), each with an Adam optimizer."""

    def __init__(self, in_dim: int, action_dim: int, config: HerSacConfig):
        self.config = config
        hidden = config.hidden_sizes
        self.actor = SquashedGaussianActor(in_dim, hidden, action_dim)
        self.critic = TwinCritic(in_dim, hidden, action_dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_alpha)))
        self.target_entropy = config.target_entropy_per_action_dim * action_dim
        self.optimizers = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=config.lr_actor),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=config.lr_critic),
            "alpha": torch.optim.Adam([self.log_alpha], lr=config.lr_alpha),
        }
        # Bellman targets of a -1/0 reward lie in [-1/(1-gamma), 0] (HER paper's target clip)
        self.q_min = -1.0 / (1.0 - config.gamma) if config.gamma < 1 else -math.inf

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The networks by checkpoint name."""
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors besides modules and optimizers that a checkpoint must hold."""
        return {"log_alpha": self.log_alpha.detach().clone()}

    @torch.no_grad()
    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `extra_state` saved."""
        self.log_alpha.copy_(tensors["log_alpha"])

    def begin_episodes(self, count: int, generator: torch.Generator) -> None:
        """Nothing to do: SAC's stochastic policy needs no per-episode exploration state."""

    def deterministic_actor(self) -> nn.Module:
        """tanh(mean): the action used for evaluation and export."""
        return DeterministicActor(self.actor)

    @torch.no_grad()
    def act(
        self, x: torch.Tensor, generator: torch.Generator, deterministic: bool
    ) -> torch.Tensor:
        """Actions in [-1, 1] for normalized inputs `x` (batch, in_dim)."""
        if deterministic:
            return torch.tanh(self.actor(x)[0])
        return self.actor.sample(x, generator)[0]

    def update(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        """One gradient step on critics, actor and temperature; then move the targets."""
        alpha = self.log_alpha.detach().exp()
        critic_loss = self._critic_step(batch, alpha, generator)
        actor_loss, log_prob, demo_stats = self._actor_step(batch, alpha, generator)
        alpha_loss = -(self.log_alpha * (log_prob + self.target_entropy)).mean()
        self._step("alpha", alpha_loss)
        with torch.no_grad():
            target: list[torch.Tensor] = list(self.critic_target.parameters())
            source: list[torch.Tensor] = list(self.critic.parameters())
            torch._foreach_lerp_(target, source, self.config.tau)
        return {
            "critic_loss": float(critic_loss),
            "actor_loss": float(actor_loss),
            "alpha_loss": float(alpha_loss.detach()),
            "alpha": float(alpha),
            **demo_stats,
        }

    def _critic_step(
        self, batch: Batch, alpha: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_x, generator)
            next_q = self.critic_target(batch.next_x, next_action).min(dim=0).values
            soft_q = next_q - alpha * next_log_prob
            target = (batch.reward + self.config.gamma * soft_q).clamp(self.q_min, 0.0)
        q = self.critic(batch.x, batch.action)
        loss = F.mse_loss(q, target.expand_as(q)) * 2.0  # sum of the two critics' MSEs
        self._step("critic", loss)
        return loss.detach()

    def _actor_step(
        self, batch: Batch, alpha: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        action, log_prob = self.actor.sample(batch.x, generator)
        self.critic.requires_grad_(False)  # no critic gradients from the actor loss
        q = self.critic(batch.x, action).min(dim=0).values
        loss = (alpha * log_prob - q).mean()
        if self.config.action_l2_penalty > 0:
            loss = loss + self.config.action_l2_penalty * action.square().mean()
        stats: dict[str, float] = {}
        if batch.demo_rows:  # behaviour cloning of the deterministic (mean) action
            x = batch.x[-batch.demo_rows :]
            term, stats = demo_actor_term(
                self._q, x, torch.tanh(self.actor(x)[0]), batch.action[-batch.demo_rows :],
                self.config.bc_loss_weight, self.config.q_filter,
            )  # fmt: skip
            loss = loss + term
        self.critic.requires_grad_(True)
        self._step("actor", loss)
        return loss.detach(), log_prob.detach(), stats

    def _q(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The Q the actor maximizes: the minimum of the twin critics."""
        return self.critic(x, action).min(dim=0).values

    def _step(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
