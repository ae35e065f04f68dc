"""DALI's rules for element-wise operators: type promotion, the common layout, per-sample broadcasting.

Shared by DataNode arithmetic (:mod:`pipestate.operators.arithmetic`) and the ``math`` functions
(:mod:`pipestate.operators.elementwise`). DALI's promotion (``arithmetic_meta.h``) differs from numpy's:
a signed and an unsigned integer give the signed type of twice the unsigned one's width, capped at
int64 (numpy: float64 for ``uint64`` with a signed type); an integer with a floating-point type gives
that floating-point type (numpy: float64 for ``int32`` with ``float16``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def binary_promotion(left: np.dtype, right: np.dtype) -> np.dtype:
    """The element type DALI gives a binary arithmetic operation on ``left`` and ``right``."""
    left, right = np.dtype(left), np.dtype(right)
    if left == right:
        return left
    if left.kind == "f" or right.kind == "f":
        if left.kind == "f" and right.kind == "f":
            return left if left.itemsize >= right.itemsize else right
        return left if left.kind == "f" else right
    if left.kind == "b" or right.kind == "b":
        return right if left.kind == "b" else left
    if left.kind == right.kind:
        return left if left.itemsize >= right.itemsize else right
    signed, unsigned = (left, right) if left.kind == "i" else (right, left)
    if signed.itemsize > unsigned.itemsize:
        return signed
    return np.dtype(f"int{min(16 * unsigned.itemsize, 64)}")


def promote(dtypes: Sequence[np.dtype]) -> np.dtype:
    """DALI's promotion over several operands, left to right (``clamp``: value, then lo, then hi)."""
    result = np.dtype(dtypes[0])
    for dtype in dtypes[1:]:
        result = binary_promotion(result, dtype)
    return result


def common_layout(layouts: Sequence[str], what: str) -> str:
    """The one non-empty layout among the operands' (``""`` when none has one), as DALI.

    Raises:
        ValueError: two operands have different non-empty layouts.
    """
    found = ""
    for layout in layouts:
        if layout and found and layout != found:
            raise ValueError(f"{what}: the operands' layouts {found!r} and {layout!r} differ; give them one layout")
        found = found or layout
    return found


def batch_operands(arrays: Sequence[np.ndarray], is_batch: Sequence[bool]) -> list[np.ndarray]:
    """Operands of a whole batch (batch arrays have the batch first; constants have not) shaped so that
    numpy broadcasts per sample: every batch operand gets as many sample axes as the widest operand,
    added right after the batch axis, so a sample axis is never aligned with the batch axis."""
    sample_ndim = max(a.ndim - 1 if batch else a.ndim for a, batch in zip(arrays, is_batch))
    return [
        a.reshape(a.shape[:1] + (1,) * (sample_ndim + 1 - a.ndim) + a.shape[1:]) if batch else a
        for a, batch in zip(arrays, is_batch)
    ]
