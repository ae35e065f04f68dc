"""Axis-aligned boxes as numpy arrays, with DALI's float32 arithmetic and box layouts.

A box array has shape ``(n, 2, ndim)``: ``[:, 0]`` the start corner, ``[:, 1]`` the end corner. Layouts are
DALI's strings (``"xyXY"``: starts then ends; ``"xyWH"``: starts then extents; any permutation of them,
``z``/``Z``/``D`` in 3-D).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
_START = "xyz"
_END = "XYZ"
_EXTENT = "WHD"


def default_layout(ndim: int, ltrb: bool = True) -> str:
    """``"xyXY"``/``"xyzXYZ"`` (start and end) or ``"xyWH"``/``"xyzWHD"`` (start and extent)."""
    return _START[:ndim] + (_END if ltrb else _EXTENT)[:ndim]


def check_layout(layout: str, ndim: int, where: str) -> bool:
    """Whether ``layout`` gives extents (True) or ends (False).

    Raises:
        ValueError: ``layout`` is not a permutation of the start-end or start-extent layout of ``ndim``.
    """
    if sorted(layout) == sorted(default_layout(ndim, True)):
        return False
    if sorted(layout) == sorted(default_layout(ndim, False)):
        return True
    raise ValueError(
        f"{where}: bbox_layout={layout!r} must be a permutation of {default_layout(ndim, True)!r} or "
        f"{default_layout(ndim, False)!r} for boxes of {2 * ndim} coordinates"
    )


def read_boxes(coords: np.ndarray, layout: str) -> np.ndarray:
    """(n, 2*ndim) coordinates in ``layout`` -> (n, 2, ndim) start/end boxes (float32)."""
    ndim = len(layout) // 2
    if layout == default_layout(ndim):  # starts then ends: a view
        return coords.reshape(len(coords), 2, ndim)
    boxes = np.empty((len(coords), 2, ndim), dtype=F32)
    extents = False
    for k, letter in enumerate(layout):
        if letter in _START:
            boxes[:, 0, _START.index(letter)] = coords[:, k]
        elif letter in _END:
            boxes[:, 1, _END.index(letter)] = coords[:, k]
        else:
            boxes[:, 1, _EXTENT.index(letter)] = coords[:, k]
            extents = True
    if extents:
        boxes[:, 1] += boxes[:, 0]
    return boxes


def write_boxes(boxes: np.ndarray, layout: str) -> np.ndarray:
    """(n, 2, ndim) start/end boxes -> (n, 2*ndim) coordinates in ``layout`` (float32)."""
    out = np.empty((len(boxes), len(layout)), dtype=F32)
    for k, letter in enumerate(layout):
        if letter in _START:
            out[:, k] = boxes[:, 0, _START.index(letter)]
        elif letter in _END:
            out[:, k] = boxes[:, 1, _END.index(letter)]
        else:
            d = _EXTENT.index(letter)
            out[:, k] = boxes[:, 1, d] - boxes[:, 0, d]
    return out


def volume(boxes: np.ndarray) -> np.ndarray:
    """Volumes of (..., 2, ndim) boxes: the product of extents, left to right in float32."""
    out = boxes[..., 1, 0] - boxes[..., 0, 0]
    for d in range(1, boxes.shape[-1]):
        out = out * (boxes[..., 1, d] - boxes[..., 0, d])
    return out


def intersection_volume(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Volumes of the intersections of boxes ``a`` and ``b`` (``(..., 2, ndim)``, broadcast), 0 where they do
    not overlap, as DALI's ``volume(intersection(a, b))`` (per dimension: no reductions over tiny axes)."""
    vol = empty = None
    for d in range(a.shape[-1]):
        w = np.minimum(a[..., 1, d], b[..., 1, d])
        w -= np.maximum(a[..., 0, d], b[..., 0, d])
        empty = (w <= 0) if empty is None else (empty | (w <= 0))
        vol = w if vol is None else vol * w
    vol[empty] = 0
    return vol.astype(F32, copy=False)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` and ``b`` (broadcast), 0 without overlap, float32."""
    inter = intersection_volume(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = inter / (volume(a) + volume(b) - inter)
    return np.where(inter == 0, F32(0), out).astype(F32)


def overlap(crop: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The fraction of each box's volume inside ``crop`` (broadcast), float32."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (intersection_volume(crop, boxes) / volume(boxes)).astype(F32)


def remap(boxes: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """(n, 2, ndim) boxes in the coordinates of one ``crop`` (its start at 0, its end at 1), clamped to [0, 1]."""
    lo, hi = crop[0], crop[1]
    extent = hi - lo
    out = np.empty(boxes.shape, dtype=F32)
    np.maximum(boxes[:, 0], lo, out=out[:, 0])
    np.minimum(boxes[:, 1], hi, out=out[:, 1])
    out -= lo
    if (extent == 0).any():  # a degenerate window: inf and NaN, as DALI's division gives
        with np.errstate(divide="ignore", invalid="ignore"):
            out /= extent
    else:
        out /= extent
    return np.clip(out, F32(0), F32(1), out=out)


def centroids_inside(boxes: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """Mask of the (n, 2, ndim) boxes whose centre ``(start + end) * 0.5`` lies in ``[crop start, crop end)``."""
    center = (boxes[:, 0] + boxes[:, 1]) * F32(0.5)
    return ((center >= crop[0]) & (center < crop[1])).all(axis=1)
