"""Network building blocks the algorithms share.

Run: `python -c "from policies.training.layers import mlp; print(mlp(4, (8,), 2))"`
"""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Linear-ReLU stack; the last layer is linear."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)
