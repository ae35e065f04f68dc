"""COCO segmentations as pixelwise label maps (``fn.readers.coco(pixelwise_masks=True)``).

Polygons are rasterized as the COCO API does (``maskApi.c``: ``rleFrPoly``, whose boundary walk on a 5x
upsampled grid decides every edge pixel), run-length encoded segmentations (``{"counts": [...], "size":
[h, w]}``, column-major; compressed string counts too) are decoded, and each mask is painted with its label
over a zero background, masks with higher labels over lower ones, as DALI does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def polygon_boundary_rle(xy: Sequence[float], height: int, width: int) -> np.ndarray:
    """The column-major RLE ``counts`` of one polygon (``[x0, y0, x1, y1, ...]``), as ``rleFrPoly``."""
    scale = 5.0
    k = len(xy) // 2
    x = [int(scale * xy[2 * j] + 0.5) for j in range(k)] + [0]
    y = [int(scale * xy[2 * j + 1] + 0.5) for j in range(k)] + [0]
    x[k], y[k] = x[0], y[0]
    u: list[int] = []
    v: list[int] = []
    for j in range(k):
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx else 0.0
            for d in range(dx + 1):
                t = dx - d if flip else d
                u.append(t + xs)
                v.append(int(ys + s * t + 0.5))
        else:
            s = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v.append(t + ys)
                u.append(int(xs + s * t + 0.5))
    starts = []
    for j in range(1, len(u)):
        if u[j] == u[j - 1]:
            continue
        xd = float(u[j] if u[j] < u[j - 1] else u[j] - 1)
        xd = (xd + 0.5) / scale - 0.5
        if math.floor(xd) != xd or xd < 0 or xd > width - 1:
            continue
        yd = float(v[j] if v[j] < v[j - 1] else v[j - 1])
        yd = (yd + 0.5) / scale - 0.5
        yd = min(max(yd, 0.0), float(height))
        starts.append(int(xd) * height + int(math.ceil(yd)))
    a = sorted(starts + [height * width])
    diffs = np.diff(np.asarray([0, *a], dtype=np.int64))
    counts = [int(diffs[0])]
    j = 1
    while j < len(diffs):
        if diffs[j] > 0:
            counts.append(int(diffs[j]))
            j += 1
        else:  # a zero-length run: merge the next run into the previous one
            j += 1
            if j < len(diffs):
                counts[-1] += int(diffs[j])
                j += 1
    return np.asarray(counts, dtype=np.int64)


def _string_counts(text: str) -> list[int]:
    """Decode the COCO API's compressed RLE string (``rleFrString``)."""
    counts: list[int] = []
    p, m = 0, 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if m > 2:
            x += counts[m - 2]
        counts.append(x)
        m += 1
    return counts


def decode_rle(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """A (height, width) bool mask from column-major RLE ``counts`` (alternating runs of 0 and 1)."""
    flat = np.zeros(height * width, dtype=bool)
    ends = np.cumsum(np.asarray(counts, dtype=np.int64))
    starts = ends - np.asarray(counts, dtype=np.int64)
    for begin, end in zip(starts[1::2], ends[1::2]):
        flat[begin : min(end, flat.size)] = True
    return flat.reshape(width, height).T


def segmentation_mask(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
    """The (height, width) bool mask of one annotation's ``segmentation`` (polygons or RLE).

    Raises:
        ValueError: an RLE whose size is not the image's, or a segmentation of another form (naming ``where``).
    """
    if isinstance(segmentation, list):
        mask = np.zeros((height, width), dtype=bool)
        for poly in segmentation:
            mask |= decode_rle(polygon_boundary_rle(poly, height, width), height, width)
        return mask
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = list(segmentation.get("size", [height, width]))
        if size != [height, width]:
            raise ValueError(f"fn.readers.coco(): {where}: an RLE mask of size {size} on a {height}x{width} image")
        counts = segmentation["counts"]
        counts = _string_counts(counts) if isinstance(counts, str) else counts
        return decode_rle(counts, height, width)
    if segmentation is None:
        return np.zeros((height, width), dtype=bool)
    raise ValueError(f"fn.readers.coco(): {where}: a segmentation that is neither polygons nor RLE")


def label_map(segmentations: Sequence[Any], labels: np.ndarray, height: int, width: int, where: str) -> np.ndarray:
    """The (height, width, 1) int32 map of the labels of the masks (0 where none), higher labels on top."""
    out = np.zeros((height, width), dtype=np.int32)
    for k in np.argsort(labels, kind="stable"):
        out[segmentation_mask(segmentations[k], height, width, where)] = labels[k]
    return out[:, :, None]
