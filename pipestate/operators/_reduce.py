"""DALI's CPU reduction kernels (``dali/kernels/reduce/reduce_cpu.h``), vectorized with numpy.

Floating-point sums depend on the order of the additions, so to give DALI's bits this module adds in
DALI's order: adjacent reduced axes are merged; along each reduced axis, innermost first, a range longer
than the threshold (32 elements, divided by the number of elements under each index) is split in halves
(``n // 2`` first) whose sums are added, and a shorter one is summed left to right from zero. Every level
of that tree is one numpy operation over all samples and positions at once. Integer sums wrap and are
exact in any order; ``min``/``max`` ignore NaN (DALI's ``if (v < acc) acc = v`` from the type's largest
value).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_THRESHOLD = 32  # DALI's kTreeReduceThreshold


def _leaf_fold(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum each range ``[start, start + length)`` of the last axis left to right from 0 (one column per range)."""
    width = int(lengths.max()) if len(lengths) else 0
    if width == 0:
        return np.zeros(values.shape[:-1] + (len(starts),), values.dtype)
    offsets = np.arange(width)
    index = np.minimum(starts[:, None] + offsets, values.shape[-1] - 1)
    gathered = values[..., index]  # [..., ranges, width]
    pad = offsets[None, :] >= lengths[:, None]
    if pad.any():
        gathered[..., pad] = 0
    acc = np.zeros(gathered.shape[:-1], values.dtype) + gathered[..., 0]
    for k in range(1, width):
        acc += gathered[..., k]
    return acc


def _tree_sum_last(values: np.ndarray, threshold: int) -> np.ndarray:
    """Sum the last axis in DALI's tree order: ranges up to ``threshold`` long are leaves."""
    n = values.shape[-1]
    if n <= threshold:
        return _leaf_fold(values, np.zeros(1, np.int64), np.array([n]))[..., 0]
    levels = []  # per level: starts, lengths, is_leaf
    starts, lengths = np.zeros(1, np.int64), np.array([n], np.int64)
    while len(starts):
        leaf = lengths <= threshold
        levels.append((starts, lengths, leaf))
        split = ~leaf
        half = lengths[split] // 2
        starts = np.stack([starts[split], starts[split] + half], axis=1).reshape(-1)
        lengths = np.stack([half, lengths[split] - half], axis=1).reshape(-1)
    below = None
    for starts, lengths, leaf in reversed(levels):
        out = np.empty(values.shape[:-1] + (len(starts),), values.dtype)
        if leaf.any():
            out[..., leaf] = _leaf_fold(values, starts[leaf], lengths[leaf])
        if below is not None:
            out[..., ~leaf] = below[..., 0::2] + below[..., 1::2]
        below = out
    return below[..., 0]


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
    data = values.transpose(kept + axes).reshape([values.shape[a] for a in kept] + sizes)
    for k in range(len(sizes) - 1, -1, -1):
        inner = int(np.prod(sizes[k + 1 :], dtype=np.int64))
        data = _tree_sum_last(data, max(1, _THRESHOLD // max(inner, 1)) if inner else _THRESHOLD)
    return data


def extreme(values: np.ndarray, axes: Sequence[int], largest: bool) -> np.ndarray:
    """DALI's ``min``/``max`` over ``axes``: NaN never wins; an empty range gives the type's extreme value."""
    info = np.finfo(values.dtype) if values.dtype.kind == "f" else np.iinfo(values.dtype)
    if largest:
        return np.fmax.reduce(values, axis=tuple(axes), initial=info.min)
    return np.fmin.reduce(values, axis=tuple(axes), initial=info.max)
