"""Single-precision ``cosf``, ``sinf`` and ``tanf`` of the C library, as DALI's C++ calls them.

numpy's float32 trigonometry uses its own SIMD approximations, which differ from the C library's in the
last bit for about one argument in six; DALI computes its matrices with ``std::cos(float)`` (glibc's
``cosf``), so pipestate calls the same functions. Where the C library cannot be loaded, the float64
functions rounded to float32 are used (correctly rounded nearly always; the difference is then one ulp at
most).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m") or "libm.so.6"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    for fn in ("cosf", "sinf", "tanf"):
        func = getattr(lib, fn, None)
        if func is None:
            return None
        func.restype, func.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


_LIB = _load()


def _fallback(func):
    return lambda x: float(np.float32(func(float(np.float32(x)))))


cosf = _LIB.cosf if _LIB is not None else _fallback(math.cos)
sinf = _LIB.sinf if _LIB is not None else _fallback(math.sin)
tanf = _LIB.tanf if _LIB is not None else _fallback(math.tan)


def apply(func, values: np.ndarray) -> np.ndarray:
    """``func`` (one of the above) on each element of a float32 array."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    return np.array([func(float(v)) for v in flat], dtype=np.float32).reshape(np.shape(values))
