"""`ExportConfig`: how a policy is exported and how hard its parity is checked.

Run: `python -c "from policies.training.export import ExportConfig; print(ExportConfig())"`
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.card import COMPUTE_DTYPES
from policies.errors import ExportError


@dataclass(frozen=True)
class ExportConfig:
    """Exporter and opset, the parity bound and the random inputs it is checked on."""

    opset: int = 17
    dynamo: bool = False  # torch.export-based exporter; needs opset >= 18
    parity_atol: float = 1e-5
    parity_samples: int = 1000
    parity_recurrent_steps: int = 100
    parity_seed: int = 0
    # Random observations are mean + spread * std * N(0, 1): around the data the policy saw,
    # wide enough that some entries hit the normalizer's clip.
    parity_spread_std: float = 3.0
    # "float32", "float64", or "auto": float32 if it meets `parity_atol`, else float64.
    compute_dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.compute_dtype not in ("auto", *COMPUTE_DTYPES):
            raise ExportError(
                f"ExportConfig.compute_dtype {self.compute_dtype!r}: use auto, "
                + ", ".join(COMPUTE_DTYPES)
            )
        if self.opset < 17 or (self.dynamo and self.opset < 18):
            raise ExportError(f"ExportConfig.opset {self.opset}: use 17 (18+ with dynamo)")
        if self.parity_atol <= 0 or self.parity_samples < 1 or self.parity_recurrent_steps < 1:
            raise ExportError("ExportConfig: parity tolerance and counts must be positive")
