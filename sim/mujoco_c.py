"""MuJoCo's C functions for compiled (numba) code: the same library the Python bindings call,
bound through ctypes, so a compiled loop computes exactly what the Python calls compute.

Every pointer is passed as an integer address: `model._address`, `data._address`, and
`array.ctypes.data` of a C-contiguous float64 array. `functions()` is None where the
library file is not found; callers then keep their Python path.

Run: `python -c "from sim.mujoco_c import functions; print(sorted(functions()))"`
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import mujoco

_ADDRESS, _INT, _NUM = ctypes.c_size_t, ctypes.c_int, ctypes.c_double
# name -> (argument types, return type), as in mujoco.h
_SIGNATURES: dict[str, tuple[tuple[Any, ...], Any]] = {
    "mj_step": ((_ADDRESS, _ADDRESS), None),
    "mj_jacSite": ((_ADDRESS, _ADDRESS, _ADDRESS, _ADDRESS, _INT), None),
    "mju_mat2Quat": ((_ADDRESS, _ADDRESS), None),
    "mju_mulQuat": ((_ADDRESS, _ADDRESS, _ADDRESS), None),
    "mju_quat2Vel": ((_ADDRESS, _ADDRESS, _NUM), None),
    "mju_mulMatMatT": ((_ADDRESS, _ADDRESS, _ADDRESS, _INT, _INT, _INT), None),
    "mju_cholFactor": ((_ADDRESS, _INT, _NUM), _INT),
    "mju_cholSolve": ((_ADDRESS, _ADDRESS, _ADDRESS, _INT), None),
    "mju_mulMatTVec": ((_ADDRESS, _ADDRESS, _ADDRESS, _INT, _INT), None),
}
_BOUND: list[dict[str, Any] | None] = []


def functions() -> dict[str, Any] | None:
    """The bound C functions by name, or None without the library file."""
    if not _BOUND:
        library = Path(mujoco.__file__).parent / f"libmujoco.so.{mujoco.__version__}"
        if not library.exists():
            _BOUND.append(None)
        else:
            lib = ctypes.CDLL(str(library))
            bound = {}
            for name, (arguments, result) in _SIGNATURES.items():
                function = getattr(lib, name)
                function.argtypes, function.restype = list(arguments), result
                bound[name] = function
            _BOUND.append(bound)
    return _BOUND[0]
