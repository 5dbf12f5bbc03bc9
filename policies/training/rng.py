"""numpy Generator state <-> uint8 tensor, so RNG states live in safetensors (not pickle).

Only PCG64 (numpy's default) is supported: its state is two 128-bit integers plus a cached
32-bit half-word, stored here as 16 + 16 + 1 + 4 little-endian bytes.
"""

from __future__ import annotations

import numpy as np
import torch

from policies.training.errors import CheckpointCorruptError

_SIZE = 37


def numpy_state_to_tensor(rng: np.random.Generator) -> torch.Tensor:
    """The full PCG64 state of `rng` as a uint8 tensor of 37 bytes."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise TypeError(f"only PCG64 generators are checkpointed, got {state['bit_generator']}")
    raw = (
        state["state"]["state"].to_bytes(16, "little")
        + state["state"]["inc"].to_bytes(16, "little")
        + bytes([state["has_uint32"]])
        + state["uinteger"].to_bytes(4, "little")
    )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()


def numpy_state_from_tensor(tensor: torch.Tensor) -> np.random.Generator:
    """A Generator in exactly the state `numpy_state_to_tensor` saved."""
    raw = bytes(tensor.numpy().tobytes())
    if tensor.dtype != torch.uint8 or len(raw) != _SIZE:
        raise CheckpointCorruptError(f"rng/numpy must be {_SIZE} uint8 bytes, got {len(raw)}")
    bit_generator = np.random.PCG64()
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": int.from_bytes(raw[:16], "little"),
            "inc": int.from_bytes(raw[16:32], "little"),
        },
        "has_uint32": raw[32],
        "uinteger": int.from_bytes(raw[33:], "little"),
    }
    return np.random.Generator(bit_generator)
