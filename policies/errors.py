"""Typed errors of the policy side. Kept free of heavy imports: robots load this module.

Every load error names the file and the field at fault (`error.path`, `error.field`), so an
operator can tell a truncated copy from a model trained for another task without a debugger.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import TwinbridgeError

WHOLE_FILE = "file"  # the `field` of an error about the file itself (missing, unreadable)
# The fix for a missing or unusable policy file.
EXPORTED_POLICY = (
    "give a policy .onnx exported with its card by `twinbridge train --export FILE.onnx` "
    "(the zoo's are in policies/zoo/)"
)


class PolicyError(TwinbridgeError):
    """A policy file, input or output that must not be used; the message says why."""


class PolicyLoadError(PolicyError):
    """A model file or its card must not be run; raised before any session exists.

    `path` is the offending file and `field` the card field, graph element or file property
    that failed (e.g. "onnx_sha256", "inputs[0].shape", "external_data").
    """

    def __init__(self, path: Path | str, field: str, detail: str):
        self.path, self.field, self.detail = Path(path), field, detail
        where = f"{path}" if field == WHOLE_FILE else f"{path}: {field}"
        super().__init__(f"{where}: {detail}")


class ModelFileError(PolicyLoadError):
    """The file is missing, not a regular file inside the model directory, or too large."""


class ModelIntegrityError(PolicyLoadError):
    """The bytes are not the model the card describes, or not a well-formed ONNX model.

    Covers sha256 mismatches (truncated or replaced files), unparseable protobuf, checker
    failures, unsupported IR/opset versions and external-data references.
    """


class ModelCardError(PolicyLoadError):
    """The JSON model card is missing, malformed, or a field has an invalid value."""


class ModelContractError(PolicyLoadError):
    """The graph and its card disagree (input/output names, shapes, dtypes, opset)."""


class TaskMismatchError(PolicyLoadError):
    """The model was trained for another task or env version than the one asked for."""


class PolicyInputError(PolicyError, ValueError):
    """An observation of the wrong shape or dtype, or with non-finite values; not evaluated."""


class PolicyOutputError(PolicyError):
    """The policy produced a non-finite, mis-shaped or out-of-range action; never apply it."""


class PolicyGraphError(PolicyError, ValueError):
    """Parts given to a policy graph (normalizer, bounds, layers) do not fit together."""


class ExportError(PolicyError):
    """A policy could not be exported for the task asked for; the message names the field."""


class ExportParityError(ExportError):
    """onnxruntime and torch disagree beyond the tolerance; the exported file is not kept."""
