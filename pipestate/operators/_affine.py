"""float32 affine-matrix arithmetic in DALI's order of operations (``dali/core/geom/mat.h``).

DALI composes and applies its affine transforms in single precision, each dot product summed left to right.
numpy's ``matmul`` (BLAS) sums in another order and gives results an ulp apart; these helpers sum term by
term so that the matrices are bit-identical to DALI's.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float32 stacks of matrices (``(..., n, k) @ (..., k, m)``), summed left to right."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN propagate, as in DALI
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for k in range(1, a.shape[-1]):
            out = out + a[..., :, k : k + 1] * b[..., k : k + 1, :]
    return out


def homogeneous(matrix: np.ndarray) -> np.ndarray:
    """The ``(..., n+1, n+1)`` homogeneous form of ``(..., n, n+1)`` affine matrices (last row 0 ... 0 1)."""
    n = matrix.shape[-2]
    out = np.zeros((*matrix.shape[:-2], n + 1, n + 1), dtype=F32)
    out[..., :n, :] = matrix
    out[..., n, n] = 1
    return out


def centered(linear: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The translation column that makes ``linear`` (``(..., n, n)``) act around ``center`` (``(..., n)``):
    ``linear * -center + center``, as DALI's rotation and shear compute it."""
    minus = -center
    column = linear[..., :, 0] * minus[..., None, 0]
    for k in range(1, linear.shape[-1]):
        column = column + linear[..., :, k] * minus[..., None, k]
    return column + center


def apply(points: np.ndarray, m: np.ndarray, t: np.ndarray | None) -> np.ndarray:
    """``m @ p + t`` for each row ``p`` of ``points`` (float32, ``(..., n)``), as DALI's ``coord_transform``:
    the products ``m[i, j] * p[j]`` summed for increasing ``j``, then ``t`` added."""
    out = points[..., 0:1] * m[:, 0]
    for j in range(1, m.shape[1]):
        out = out + points[..., j : j + 1] * m[:, j]
    return out if t is None else out + t
