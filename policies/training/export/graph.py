"""Deployable policy graphs: observation normalizer + actor + action scaling in one nn.Module.

What is exported to ONNX is exactly this module, so the robot runs the same arithmetic the
trainer evaluated: `action = low + (actor(clip((obs - mean) / std, -clip, clip)) + 1) *
(high - low) / 2`, the actor ending in tanh. `LstmPolicyGraph` is the Dactyl shape (dense
+ LSTM + linear head + tanh) with its hidden and cell state as explicit inputs/outputs.

Run: `python -c "from policies.training.export.graph import MlpPolicyGraph; help(MlpPolicyGraph)"`
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from policies.errors import PolicyGraphError


class PolicyGraphBase(nn.Module):
    """The normalizer and action-scaling buffers every policy graph shares, validated once.

    `policies.training.export.trained` accepts any subclass; it reads `obs_dim`, `action_dim`,
    `recurrent_size` (0: feed-forward; else forward takes and returns h and c) and bounds.
    """

    obs_mean: Tensor
    obs_std: Tensor
    action_low: Tensor
    action_half_range: Tensor

    def __init__(
        self,
        obs_mean: Tensor,
        obs_std: Tensor,
        obs_clip: float,
        action_low: Tensor,
        action_high: Tensor,
    ):
        super().__init__()
        mean, std = _vector("obs_mean", obs_mean), _vector("obs_std", obs_std)
        low, high = _vector("action_low", action_low), _vector("action_high", action_high)
        if mean.shape != std.shape:
            raise PolicyGraphError(f"obs_mean {tuple(mean.shape)} != obs_std {tuple(std.shape)}")
        if not bool((std > 0).all()):
            raise PolicyGraphError("obs_std must be > 0 everywhere (add the normalizer's eps)")
        if low.shape != high.shape or not bool((low < high).all()):
            raise PolicyGraphError("action_low and action_high must have one shape, low < high")
        if not obs_clip > 0:
            raise PolicyGraphError(f"obs_clip must be > 0, got {obs_clip}")
        self.obs_clip = float(obs_clip)
        self.register_buffer("obs_mean", mean)
        self.register_buffer("obs_std", std)
        self.register_buffer("action_low", low)
        self.register_buffer("action_half_range", (high - low) / 2)

    @property
    def obs_dim(self) -> int:
        return int(self.obs_mean.shape[0])

    @property
    def action_dim(self) -> int:
        return int(self.action_low.shape[0])

    @property
    def recurrent_size(self) -> int:
        """Width of the recurrent hidden and cell state; 0 for feed-forward graphs."""
        return 0

    @property
    def action_high(self) -> Tensor:
        return self.action_low + 2 * self.action_half_range

    def normalize(self, obs: Tensor) -> Tensor:
        return torch.clamp((obs - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)

    def scale(self, unit_action: Tensor) -> Tensor:
        """[-1, 1] -> [low, high]."""
        return self.action_low + (unit_action + 1) * self.action_half_range


class MlpPolicyGraph(PolicyGraphBase):
    """A feed-forward policy: forward(obs float32 [B, n]) -> action [B, a] in env units.

    `actor` maps normalized observations [B, n] to [-1, 1]^a (tanh inside the actor).
    """

    def __init__(
        self,
        obs_mean: Tensor,
        obs_std: Tensor,
        obs_clip: float,
        actor: nn.Module,
        action_low: Tensor,
        action_high: Tensor,
    ):
        super().__init__(obs_mean, obs_std, obs_clip, action_low, action_high)
        self.actor = actor

    def forward(self, obs: Tensor) -> Tensor:
        return self.scale(self.actor(self.normalize(obs)))


class LstmPolicyGraph(PolicyGraphBase):
    """Dactyl-shaped recurrent policy: ReLU(dense) -> LSTM cell -> linear head -> tanh.

    forward(obs [B, n], h [B, H], c [B, H]) -> (action [B, a], h_out, c_out). The caller
    (trainer or `PolicyRunner`) carries h and c between steps and zeroes them per episode.
    """

    def __init__(
        self,
        obs_mean: Tensor,
        obs_std: Tensor,
        obs_clip: float,
        action_low: Tensor,
        action_high: Tensor,
        dense_size: int = 1024,
        lstm_size: int = 512,
    ):
        super().__init__(obs_mean, obs_std, obs_clip, action_low, action_high)
        if dense_size < 1 or lstm_size < 1:
            raise PolicyGraphError(
                f"dense_size {dense_size} and lstm_size {lstm_size} must be >= 1"
            )
        self.dense = nn.Linear(self.obs_dim, dense_size)
        self.lstm = nn.LSTMCell(dense_size, lstm_size)
        self.head = nn.Linear(lstm_size, self.action_dim)

    @property
    def recurrent_size(self) -> int:
        return int(self.lstm.hidden_size)

    @classmethod
    def from_parts(
        cls,
        obs_mean: Tensor,
        obs_std: Tensor,
        obs_clip: float,
        dense: nn.Linear,
        lstm: nn.LSTM | nn.LSTMCell,
        head: nn.Linear,
        action_low: Tensor,
        action_high: Tensor,
    ) -> LstmPolicyGraph:
        """A graph holding copies of trained layers; `lstm` may be a 1-layer nn.LSTM.

        A sequence LSTM (what PPO trains on) and an LSTM cell share one weight layout, so
        the cell gets the same weights and runs one step per call.
        """
        graph = cls(
            obs_mean, obs_std, obs_clip, action_low, action_high, dense.out_features,
            lstm.hidden_size,
        )  # fmt: skip
        _check_parts(graph, dense, lstm, head)
        with torch.no_grad():
            graph.dense.load_state_dict(dense.state_dict())
            graph.head.load_state_dict(head.state_dict())
            graph.lstm.load_state_dict(
                {k.removesuffix("_l0"): v for k, v in lstm.state_dict().items()}
            )
        return graph

    def initial_state(self, batch: int = 1) -> tuple[Tensor, Tensor]:
        """Zero hidden and cell state, the start of every episode."""
        zeros = torch.zeros(batch, self.recurrent_size, dtype=self.obs_mean.dtype)
        return zeros, zeros.clone()

    def forward(self, obs: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = torch.relu(self.dense(self.normalize(obs)))
        h_out, c_out = self.lstm(x, (h, c))
        return self.scale(torch.tanh(self.head(h_out))), h_out, c_out


def _check_parts(
    graph: LstmPolicyGraph, dense: nn.Linear, lstm: nn.Module, head: nn.Linear
) -> None:
    """Layer sizes chain from observation to action, and the LSTM is one plain layer."""
    if dense.in_features != graph.obs_dim:
        raise PolicyGraphError(f"dense takes {dense.in_features} inputs, obs has {graph.obs_dim}")
    if lstm.input_size != dense.out_features or head.in_features != lstm.hidden_size:
        raise PolicyGraphError("dense -> lstm -> head sizes do not chain")
    if head.out_features != graph.action_dim:
        raise PolicyGraphError(f"head emits {head.out_features}, actions have {graph.action_dim}")
    if not lstm.bias or (
        isinstance(lstm, nn.LSTM)
        and (lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size)
    ):
        raise PolicyGraphError("lstm must be one unidirectional layer with bias, no projection")


def _vector(name: str, value: Tensor) -> Tensor:
    """A finite 1-D float32 copy (the exported graph computes in float32)."""
    tensor = torch.as_tensor(value).detach().to(torch.float32).clone()
    if tensor.ndim != 1 or tensor.numel() == 0:
        raise PolicyGraphError(f"{name} must be a non-empty 1-D tensor, got {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise PolicyGraphError(f"{name} has non-finite values")
    return tensor
