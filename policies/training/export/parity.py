"""Torch vs onnxruntime on the same random observations: the exporter's parity check.

Run: `python -c "from policies.training.export.parity import max_parity_error as f; help(f)"`

Feed-forward graphs are checked row by row; recurrent ones carry their own state on both
sides for `parity_recurrent_steps` steps, then run single steps from zero state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from policies.card import OBS_INPUT, RECURRENT_NAMES
from policies.training.export.config import ExportConfig
from policies.training.export.graph import PolicyGraphBase


def max_parity_error(
    module: nn.Module, graph: PolicyGraphBase, model_bytes: bytes, config: ExportConfig
) -> float:
    """Max abs difference between onnxruntime running `model_bytes` and torch's `module`
    (`graph` itself or a wrapper of it with the same interface)."""
    session = _session(model_bytes)
    if graph.recurrent_size:
        return _recurrent_parity(module, graph, session, config)
    return _feedforward_parity(module, graph, session, config)


def _session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _random_observations(graph: PolicyGraphBase, count: int, config: ExportConfig) -> np.ndarray:
    rng = np.random.default_rng(config.parity_seed)
    mean = graph.obs_mean.detach().cpu().numpy()
    std = graph.obs_std.detach().cpu().numpy()
    noise = rng.standard_normal((count, mean.shape[0])) * config.parity_spread_std
    return (mean + std * noise).astype(np.float32)


def _feedforward_parity(
    module: nn.Module, graph: PolicyGraphBase, session: Any, config: ExportConfig
) -> float:
    obs = _random_observations(graph, config.parity_samples, config)
    with torch.no_grad():
        expected = module(torch.from_numpy(obs)).numpy()
    got = np.concatenate([session.run(None, {OBS_INPUT: row[None]})[0] for row in obs])
    return float(np.max(np.abs(got - expected)))


def _recurrent_parity(
    module: nn.Module, graph: PolicyGraphBase, session: Any, config: ExportConfig
) -> float:
    """Both sides carry their own state for `parity_recurrent_steps` steps, then the
    single-step check runs on the remaining random observations from zero state."""
    steps = max(config.parity_samples, config.parity_recurrent_steps)
    obs = _random_observations(graph, steps, config)
    (h_name, _), (c_name, _) = RECURRENT_NAMES
    h_t, c_t = _zero_state(graph)
    h_o, c_o = h_t.numpy(), c_t.numpy()
    worst = 0.0
    for i, row in enumerate(obs):
        if i == config.parity_recurrent_steps:  # from here: independent steps
            h_t, c_t = _zero_state(graph)
            h_o, c_o = h_t.numpy(), c_t.numpy()
        with torch.no_grad():
            expected = module(torch.from_numpy(row[None]), h_t, c_t)
        got = session.run(None, {OBS_INPUT: row[None], h_name: h_o, c_name: c_o})
        worst = max(
            [worst, *(_max_diff(g, e.numpy()) for g, e in zip(got, expected, strict=True))]
        )
        if i < config.parity_recurrent_steps:
            (_, h_t, c_t), (_, h_o, c_o) = expected, got
    return worst


def _zero_state(graph: PolicyGraphBase) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(1, graph.recurrent_size), torch.zeros(1, graph.recurrent_size)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)))
