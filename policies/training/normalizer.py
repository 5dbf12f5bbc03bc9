"""Running mean/std input normalization with clipping, as in the HER paper (Andrychowicz 2017).

Statistics accumulate in float64 (sum, sum of squares, count), so they are exact to save and
resume; `normalize` runs in float32 torch, as the exported ONNX graph does. The graph
(`policies.training.export.graph`) has no raw ±`obs_clip` (200) clip: it never binds on
these tasks, whose observations are metres, radians and their rates, far below 200.
"""

from __future__ import annotations

import numpy as np
import torch


class RunningNormalizer:
    """Per-feature running mean and std of clipped inputs; normalized values are clipped too."""

    def __init__(self, size: int, eps: float, obs_clip: float, norm_clip: float):
        self.eps, self.obs_clip, self.norm_clip = eps, obs_clip, norm_clip
        self.sum = np.zeros(size)
        self.sumsq = np.zeros(size)
        self.count = np.zeros(1)
        self.mean = torch.zeros(size)
        self.std = torch.ones(size)

    def update(self, x: np.ndarray) -> None:
        """Add rows of `x` (shape (n, size)) to the statistics."""
        x = np.clip(np.asarray(x, dtype=np.float64), -self.obs_clip, self.obs_clip)
        self.sum += x.sum(axis=0)
        self.sumsq += np.square(x).sum(axis=0)
        self.count += len(x)
        self._refresh()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(clip(x) - mean) / std, clipped to +-norm_clip (float32)."""
        x = x.clamp(-self.obs_clip, self.obs_clip)
        return ((x - self.mean) / self.std).clamp(-self.norm_clip, self.norm_clip)

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The statistics as float64 tensors, for checkpoints."""
        return {
            f"{prefix}sum": torch.from_numpy(self.sum.copy()),
            f"{prefix}sumsq": torch.from_numpy(self.sumsq.copy()),
            f"{prefix}count": torch.from_numpy(self.count.copy()),
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        """Restore what `state_tensors` saved."""
        self.sum = tensors[f"{prefix}sum"].numpy().copy()
        self.sumsq = tensors[f"{prefix}sumsq"].numpy().copy()
        self.count = tensors[f"{prefix}count"].numpy().copy()
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the float32 mean/std used by `normalize` (std floored at eps)."""
        if self.count[0] == 0:
            return
        mean = self.sum / self.count[0]
        var = np.maximum(self.eps**2, self.sumsq / self.count[0] - np.square(mean))
        self.mean = torch.from_numpy(mean.astype(np.float32))
        self.std = torch.from_numpy(np.sqrt(var).astype(np.float32))
