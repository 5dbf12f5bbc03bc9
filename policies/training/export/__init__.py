"""The one export path: a policy graph, or a trained policy, to ONNX + JSON model card.

Run: `twinbridge train --task fetch-reach --total-env-steps 6000 --out runs/r --export r.onnx`

`export_trained_policy` builds the trainer's deployable graph with the builder its `--algo`
registers (`policies.training.algorithms`; the builders live in `trained`), exports it and
evaluates the written file; `export_policy` exports any graph of `graph` (parity-checked
torch vs onnxruntime in `parity`, card fields from `policies.card`).
"""

from policies.training.export.config import ExportConfig
from policies.training.export.onnx_export import export_policy
from policies.training.export.trained import export_trained_policy

__all__ = ["ExportConfig", "export_policy", "export_trained_policy"]
