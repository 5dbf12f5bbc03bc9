"""Run a goal-conditioned ONNX policy with onnxruntime (never imports torch).

The input contract, until model cards arrive: one float32 input of shape (1, n) holding
`concat(observation, desired_goal)` as the env produces them, and one output of shape
(1, action_dim) in the env's normalized action units. Anything else is refused at load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from gymnasium import spaces

from policies.errors import PolicyLoadError, PolicyOutputError


class OnnxPolicy:
    """A stateless feed-forward ONNX policy checked against the task's spaces at load."""

    def __init__(self, path: Path, observation_space: spaces.Dict, action_space: spaces.Box):
        self.path = Path(path)
        self._session = _open_session(self.path)
        obs_dim = _flat_size(observation_space["observation"]) + _flat_size(
            observation_space["desired_goal"]
        )
        self._action_dim = _flat_size(action_space)
        self._input = _check_single_io(self._session.get_inputs(), "input", obs_dim, self.path)
        _check_single_io(self._session.get_outputs(), "output", self._action_dim, self.path)
        self._buffer = np.zeros((1, obs_dim), dtype=np.float32)

    def reset(self) -> None:
        """Feed-forward policies keep no state between episodes."""

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        flat = np.concatenate([observation["observation"], observation["desired_goal"]])
        if not np.isfinite(flat).all():
            raise PolicyOutputError(f"{self.path.name}: non-finite observation; not evaluated")
        self._buffer[0] = flat
        (action,) = self._session.run(None, {self._input: self._buffer})
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self._action_dim,) or not np.isfinite(action).all():
            raise PolicyOutputError(
                f"{self.path.name}: action {action} is not {self._action_dim} finite numbers"
            )
        return action


def _flat_size(space: spaces.Space) -> int:
    return int(np.prod(space.shape or ()))


def _open_session(path: Path) -> ort.InferenceSession:
    if not path.is_file():
        raise PolicyLoadError(f"policy file {path} does not exist")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # batch-1 control: threads cost more than they save
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise PolicyLoadError(f"{path} is not a loadable ONNX model: {e}") from e


def _check_single_io(args: list, kind: str, size: int, path: Path) -> str:
    if len(args) != 1:
        raise PolicyLoadError(f"{path}: expected one {kind}, found {[a.name for a in args]}")
    arg = args[0]
    if arg.type != "tensor(float)" or len(arg.shape) != 2 or arg.shape[-1] != size:
        raise PolicyLoadError(
            f"{path}: {kind} {arg.name!r} is {arg.type} {arg.shape}; this task needs "
            f"tensor(float) [1, {size}]"
        )
    return str(arg.name)
