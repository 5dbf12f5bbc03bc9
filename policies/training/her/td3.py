"""TD3 (Fujimoto et al. 2018) with the same interface as `SacAgent`, and the agent registry.

Kept to compare with SAC under identical HER, replay, normalizer and budget. Measured on
fetch-reach (seeds 0, 1, 2; 256x3 MLPs, batch 256, 1 update per env step, 200 warmup steps;
20 eval episodes every 200 env steps), env steps to >= 0.9 success: SAC 800 / 600 / 600,
TD3 1000 / 800 / 600. Within noise on this easy task, slightly for SAC; TD3's delayed actor
makes its updates ~10-20 % cheaper. SAC stays the default for the reasons in `sac.py`; the
deciding comparison is fetch-push, not yet run for TD3.

Exploration (`--exploration`): Gaussian action noise, or adaptive parameter-space noise
(`policies.training.her.param_noise`). `bench/exploration.py` on fetch-reach (64x64 MLPs, batch
256, 1 update per env step, 200 warmup steps, eval every 200), env steps to >= 0.9 over seeds
0-9: action noise median 1200 (800-1400), parameter noise median 1400 (1200-1800). Action
noise stays the default; reach is too easy to reward consistent exploration, push is untested.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from policies.training.her.config import HerSacConfig
from policies.training.her.demonstrations import demo_actor_term
from policies.training.her.networks import DeterministicActor, SquashedGaussianActor, TwinCritic
from policies.training.her.param_noise import AdaptiveParamNoise
from policies.training.her.sac import Batch, SacAgent


class Td3Agent:
    """Deterministic actor tanh(mu(x)) with Gaussian action noise or adaptive parameter noise
    (`exploration`), clipped double-Q targets with target-policy smoothing, and delayed
    actor/target updates."""

    def __init__(self, in_dim: int, action_dim: int, config: HerSacConfig):
        self.config = config
        hidden = config.hidden_sizes
        self.actor = SquashedGaussianActor(in_dim, hidden, action_dim)  # log-std head unused
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = TwinCritic(in_dim, hidden, action_dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.optimizers = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=config.lr_actor),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=config.lr_critic),
        }
        self.q_min = -1.0 / (1.0 - config.gamma) if config.gamma < 1 else -math.inf
        self.update_count = torch.zeros((), dtype=torch.int64)
        self.param_noise: AdaptiveParamNoise | None = None
        if config.exploration == "parameter":
            self.param_noise = AdaptiveParamNoise(
                config.param_noise_initial_std,
                config.param_noise_target_distance,
                config.param_noise_adapt_every_updates,
            )

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The networks by checkpoint name."""
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }

    def extra_state(self) -> dict[str, torch.Tensor]:
        """The update counter (it decides which updates move the actor) and, with parameter
        noise, its adapted sigma (so a resumed run perturbs exactly as an uninterrupted one)."""
        out = {"td3/update_count": self.update_count.clone()}
        if self.param_noise is not None:
            out["td3/param_noise_std"] = self.param_noise.std.clone()
        return out

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `extra_state` saved."""
        self.update_count = tensors["td3/update_count"].clone()
        if self.param_noise is not None:
            self.param_noise.std = tensors["td3/param_noise_std"].clone()

    def begin_episodes(self, count: int, generator: torch.Generator) -> None:
        """Episodes start: with parameter noise, draw one perturbed actor per episode."""
        if self.param_noise is not None:
            self.param_noise.resample(self.deterministic_actor(), count, generator)

    def deterministic_actor(self) -> nn.Module:
        return DeterministicActor(self.actor)

    @torch.no_grad()
    def act(
        self, x: torch.Tensor, generator: torch.Generator, deterministic: bool
    ) -> torch.Tensor:
        """tanh(mu(x)) if deterministic; else the episode's perturbed actor, or tanh(mu(x))
        plus clipped Gaussian action noise."""
        if not deterministic and self.param_noise is not None:
            return self.param_noise.act(x)
        action = torch.tanh(self.actor(x)[0])
        if deterministic:
            return action
        noise = torch.randn(action.shape, generator=generator) * self.config.td3_action_noise_std
        return (action + noise).clamp(-1.0, 1.0)

    def update(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        """Critic step every call; actor and target steps every `td3_policy_delay` calls."""
        out = {"critic_loss": float(self._critic_step(batch, generator))}
        self.update_count += 1
        self._maybe_adapt_param_noise(batch, generator)
        if int(self.update_count) % self.config.td3_policy_delay == 0:
            out.update(self._actor_step(batch))
            self._move_targets()
        return out

    def _actor_step(self, batch: Batch) -> dict[str, float]:
        """Maximize Q1(s, pi(s)); with demo rows, plus the Q-filtered behaviour cloning."""
        self.critic.requires_grad_(False)
        action = torch.tanh(self.actor(batch.x)[0])
        loss = -self.critic(batch.x, action)[0].mean()
        if self.config.action_l2_penalty > 0:
            loss = loss + self.config.action_l2_penalty * action.square().mean()
        stats: dict[str, float] = {}
        if batch.demo_rows:
            rows = slice(len(batch.x) - batch.demo_rows, None)
            term, stats = demo_actor_term(
                self._q, batch.x[rows], action[rows], batch.action[rows],
                self.config.bc_loss_weight, self.config.q_filter,
            )  # fmt: skip
            loss = loss + term
        self.critic.requires_grad_(True)
        self._step("actor", loss)
        return {"actor_loss": float(loss.detach()), **stats}

    def _q(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The Q the actor maximizes: the first critic (TD3)."""
        return self.critic(x, action)[0]

    def _maybe_adapt_param_noise(self, batch: Batch, generator: torch.Generator) -> None:
        """Every K updates, move sigma toward the target action distance on replay states."""
        noise = self.param_noise
        if noise is None or int(self.update_count) % noise.adapt_every_updates != 0:
            return
        noise.adapt(self.deterministic_actor(), batch.x, generator)

    def _critic_step(self, batch: Batch, generator: torch.Generator) -> torch.Tensor:
        c = self.config
        with torch.no_grad():
            action = torch.tanh(self.actor_target(batch.next_x)[0])
            noise = torch.randn(action.shape, generator=generator) * c.td3_target_noise_std
            noise = noise.clamp(-c.td3_target_noise_clip, c.td3_target_noise_clip)
            next_q = self.critic_target(batch.next_x, (action + noise).clamp(-1.0, 1.0))
            target = (batch.reward + c.gamma * next_q.min(dim=0).values).clamp(self.q_min, 0.0)
        q = self.critic(batch.x, batch.action)
        loss = F.mse_loss(q, target.expand_as(q)) * 2.0
        self._step("critic", loss)
        return loss.detach()

    @torch.no_grad()
    def _move_targets(self) -> None:
        for target_net, net in (
            (self.actor_target, self.actor),
            (self.critic_target, self.critic),
        ):
            target: list[torch.Tensor] = list(target_net.parameters())
            source: list[torch.Tensor] = list(net.parameters())
            torch._foreach_lerp_(target, source, self.config.tau)

    def _step(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


AGENTS: dict[str, Any] = {"her-sac": SacAgent, "her-td3": Td3Agent}


def make_agent(algo: str, in_dim: int, action_dim: int, config: HerSacConfig) -> Any:
    """The agent registered under `algo` (names validated by `HerSacConfig`)."""
    return AGENTS[algo](in_dim, action_dim, config)
