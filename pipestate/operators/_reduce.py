"""DALI's CPU reduction kernels (``dali/kernels/reduce/reduce_cpu.h``), vectorized with numpy.

Floating-point sums depend on the order of the additions, so to give DALI's bits this module adds in
DALI's order: adjacent reduced axes are merged; along each reduced axis, innermost first, a range longer
than the threshold (32 elements, divided by the number of elements under each index) is split in halves
(``n // 2`` first) whose sums are added, and a shorter one is summed left to right from zero. The reduced
axis is moved first, so that a range is a block of rows and every step adds whole rows (all kept
positions, all samples of a batch) at once. Integer sums wrap and are exact in any order; ``min``/``max``
ignore NaN (DALI's ``if (v < acc) acc = v`` from the type's largest value).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

_THRESHOLD = 32  # DALI's kTreeReduceThreshold


@functools.lru_cache(maxsize=256)
def _plan(n: int, threshold: int) -> tuple:
    """The tree over ``n`` rows: its levels (top first: segment count, leaf mask, leaf slots) and its leaves
    (starts and lengths, longest first, so the leaves still growing at each step are a prefix)."""
    levels, leaf_starts, leaf_lengths = [], [], []
    starts, lengths = np.zeros(1, np.int64), np.array([n], np.int64)
    while len(starts):
        leaf = lengths <= threshold
        slots = np.arange(len(leaf_starts), len(leaf_starts) + int(leaf.sum()))
        leaf_starts += starts[leaf].tolist()
        leaf_lengths += lengths[leaf].tolist()
        levels.append((len(starts), leaf, slots))
        split = ~leaf
        half = lengths[split] // 2
        starts = np.stack([starts[split], starts[split] + half], axis=1).reshape(-1)
        lengths = np.stack([half, lengths[split] - half], axis=1).reshape(-1)
    order = np.argsort(-np.asarray(leaf_lengths), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    sorted_starts = np.asarray(leaf_starts, np.int64)[order]
    sorted_lengths = np.asarray(leaf_lengths, np.int64)[order]
    growing = [int((sorted_lengths > k).sum()) for k in range(int(sorted_lengths.max(initial=0)))]
    return tuple((count, leaf, rank[slots]) for count, leaf, slots in levels), sorted_starts, growing


def _tree_rows(rows: np.ndarray, threshold: int) -> np.ndarray:
    """Sum the rows of ``rows`` (shape ``[n, R]``) in DALI's tree order; returns ``[R]``."""
    n = rows.shape[0]
    if n == 0:
        return np.zeros(rows.shape[1:], rows.dtype)
    levels, starts, growing = _plan(n, threshold)
    acc = np.zeros((len(starts), *rows.shape[1:]), rows.dtype)
    acc += rows[starts]  # 0 + x: DALI starts every leaf from zero (so -0.0 becomes 0.0)
    for k, count in enumerate(growing[1:], 1):
        acc[:count] += rows[starts[:count] + k]
    below = None
    for count, leaf, slots in reversed(levels):
        out = np.empty((count, *rows.shape[1:]), rows.dtype)
        if len(slots):
            out[leaf] = acc[slots]
        if below is not None:
            out[~leaf] = below[0::2] + below[1::2]
        below = out
    return below[0]


def tree_sum(values: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Sum ``values`` over ``axes`` (distinct, non-negative) in DALI's order; the other axes stay, in order."""
    axes = sorted(axes)
    kept = [a for a in range(values.ndim) if a not in axes]
    groups: list[list[int]] = []
    for axis in axes:
        if groups and groups[-1][-1] == axis - 1:
            groups[-1].append(axis)
        else:
            groups.append([axis])
    sizes = [int(np.prod([values.shape[a] for a in group], dtype=np.int64)) for group in groups]
    kept_shape = [values.shape[a] for a in kept]
    width = int(np.prod(kept_shape, dtype=np.int64))
    data = values.transpose(axes + kept).reshape(sizes + [width])
    for k in range(len(sizes) - 1, -1, -1):
        inner = int(np.prod(sizes[k + 1 :], dtype=np.int64))
        threshold = max(1, _THRESHOLD // inner) if inner else values.size + 1
        outer = int(np.prod(sizes[:k], dtype=np.int64)) * width
        rows = np.ascontiguousarray(np.moveaxis(data, k, 0)).reshape(sizes[k], outer)
        data = _tree_rows(rows, threshold).reshape(sizes[:k] + [width])
    return data.reshape(kept_shape)


def int_sum(values: np.ndarray, axes: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """The wrapping integer sum of ``values`` over ``axes`` in ``dtype`` (exact in any order)."""
    letters = "abcdefghijklmnopqrstuvwxyz"[: values.ndim]
    out = "".join(c for i, c in enumerate(letters) if i not in axes)
    return np.einsum(f"{letters}->{out}", values, dtype=dtype, casting="unsafe")


def extreme(values: np.ndarray, axes: Sequence[int], largest: bool) -> np.ndarray:
    """DALI's ``min``/``max`` over ``axes``: NaN never wins; an empty range gives the type's extreme value."""
    info = np.finfo(values.dtype) if values.dtype.kind == "f" else np.iinfo(values.dtype)
    initial = info.min if largest else info.max
    out = (np.maximum if largest else np.minimum).reduce(values, axis=tuple(axes), initial=initial)
    if values.dtype.kind == "f" and np.isnan(out).any():  # numpy's propagate NaN; DALI's skip it
        out = (np.fmax if largest else np.fmin).reduce(values, axis=tuple(axes), initial=initial)
    return out
