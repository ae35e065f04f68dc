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
    (starts, longest first, so the leaves still growing at step ``k`` are a prefix), with the steps grouped in
    runs where the same leaves grow (``(first k, last k + 1, number of leaves)``)."""
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
    runs = []
    for k in range(int(sorted_lengths.max(initial=0))):
        count = int((sorted_lengths > k).sum())
        if runs and runs[-1][2] == count:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, count])
    levels = tuple((count, leaf, rank[slots]) for count, leaf, slots in levels)
    return levels, sorted_starts, tuple(tuple(r) for r in runs)


_NARROW = 16  # rows at most this wide are summed column by column (1-D gathers beat tiny row gathers)


def _tree_rows(rows: np.ndarray, threshold: int, dtype: np.dtype) -> np.ndarray:
    """Sum the rows of ``rows`` (shape ``[n, R]``, or ``[n]``) in ``dtype`` in DALI's tree order; returns ``[R]``
    (or a scalar). Each value is converted to ``dtype`` as it is added (as DALI's accumulator does)."""
    if rows.ndim == 2 and rows.shape[1] <= _NARROW:
        out = np.empty(rows.shape[1], dtype)
        for c in range(rows.shape[1]):
            out[c] = _tree_rows(rows[:, c], threshold, dtype)
        return out
    n = rows.shape[0]
    if n == 0:
        return np.zeros(rows.shape[1:], dtype)
    levels, starts, runs = _plan(n, threshold)
    # Leaves: left to right from zero (0.0 + x, so -0.0 sums are 0.0, as DALI's). Within a run of steps the
    # same leaves grow, so the run is one gather ([steps, leaves, ...]).
    acc = np.zeros((len(starts), *rows.shape[1:]), dtype)
    for first, last, count in runs:
        block = np.take(rows, starts[:count] + np.arange(first, last)[:, None], axis=0)
        part = acc[:count]
        for step in block:  # one vectorized add per step, in order (numpy's reduce may sum pairwise)
            part += step
    below = None
    for count, leaf, slots in reversed(levels):
        if len(slots) == count:
            below = acc[slots]
        elif not len(slots):
            below = below[0::2] + below[1::2]
        else:
            out = np.empty((count, *rows.shape[1:]), dtype)
            out[leaf] = acc[slots]
            out[~leaf] = below[0::2] + below[1::2]
            below = out
    return below[0]


def tree_sum(values: np.ndarray, axes: Sequence[int], dtype: np.dtype | None = None) -> np.ndarray:
    """Sum ``values`` over ``axes`` (distinct, non-negative) in DALI's order, accumulating in ``dtype`` (default:
    the values' type; integers of at most 16 bits convert exactly to float32); the other axes stay, in order."""
    dtype = np.dtype(dtype or values.dtype)
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
        data = _tree_rows(rows, threshold, dtype).reshape(sizes[:k] + [width])
    return data.reshape(kept_shape)


def _by_channel(reduce, values: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """``reduce(values, axes)``, one call per index of a short kept last axis (e.g. the C of HWC): numpy's
    reductions are slow when the innermost loop is that axis."""
    last = values.ndim - 1
    if not axes or last in axes or values.shape[last] > _NARROW:
        return reduce(values, axes)
    return np.stack([reduce(values[..., c], axes) for c in range(values.shape[last])], axis=-1)


def int_sum(values: np.ndarray, axes: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """The wrapping integer sum of ``values`` over ``axes`` in ``dtype`` (exact in any order)."""
    return _by_channel(lambda v, a: np.add.reduce(v, axis=tuple(a), dtype=dtype), values, axes)


def extreme(values: np.ndarray, axes: Sequence[int], largest: bool) -> np.ndarray:
    """DALI's ``min``/``max`` over ``axes``: NaN never wins; an empty range gives the type's extreme value."""
    return _by_channel(lambda v, a: _extreme(v, a, largest), values, axes)


def _extreme(values: np.ndarray, axes: Sequence[int], largest: bool) -> np.ndarray:
    info = np.finfo(values.dtype) if values.dtype.kind == "f" else np.iinfo(values.dtype)
    initial = info.min if largest else info.max
    out = (np.maximum if largest else np.minimum).reduce(values, axis=tuple(axes), initial=initial)
    if values.dtype.kind == "f" and np.isnan(out).any():  # numpy's propagate NaN; DALI's skip it
        out = (np.fmax if largest else np.fmin).reduce(values, axis=tuple(axes), initial=initial)
    return out
