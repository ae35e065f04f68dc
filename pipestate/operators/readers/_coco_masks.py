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
    """The column-major RLE ``counts`` of one polygon (``[x0, y0, x1, y1, ...]``), as ``rleFrPoly`` computes it
    from DALI's float32 coordinates."""
    scale = 5.0
    xy = np.asarray(xy, dtype=np.float32).astype(np.float64).tolist()  # DALI keeps the coordinates as float32
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


def _mask_counts(mask: np.ndarray) -> list[int]:
    """Column-major RLE counts of a bool mask (runs of 0 and 1, starting with 0)."""
    flat = mask.T.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat.size and flat[0] else counts


def _merge(a_cnts: list[int], a_vals: list[int], b_cnts: list[int], label: int) -> tuple[list[int], list[int]]:
    """DALI's merge of the label map so far (runs ``a_cnts`` with values ``a_vals``) with the mask of a higher
    ``label``: the new label wins where both are set, except in the last run of the map so far."""
    cnt_a, cnt_b = a_cnts[0], b_cnts[0]
    next_val_a = val_a = a_vals[0]
    next_vb = vb = False
    seq_a = seq_b = 1
    cnts, vals = [], []
    total = 1
    while total > 0:
        c = min(cnt_a, cnt_b)
        total = 0
        cnt_a -= c
        if not cnt_a and seq_a < len(a_cnts):
            cnt_a, next_val_a = a_cnts[seq_a], a_vals[seq_a]
            seq_a += 1
        total += cnt_a
        cnt_b -= c
        if not cnt_b and seq_b < len(b_cnts):
            cnt_b = b_cnts[seq_b]
            seq_b += 1
            next_vb = not next_vb
        total += cnt_b
        if val_a and vb:
            vals.append(val_a if not cnt_a else label)
        else:
            vals.append(val_a if val_a else (label if vb else 0))
        cnts.append(c)
        val_a, vb = next_val_a, next_vb
        if cnt_a == 0:
            break
    return cnts, vals


def label_map(segmentations: Sequence[Any], labels: np.ndarray, height: int, width: int, where: str) -> np.ndarray:
    """The (height, width, 1) int32 label map of an image's masks, computed as DALI does: a label's mask is
    the union of its polygons (its RLE masks are then ignored) or else its last RLE mask; labels are merged
    in increasing order, a higher label over a lower one. When the smallest label has no mask at all, DALI's
    merge yields an empty map, and so does this."""
    out = np.zeros(height * width, dtype=np.int32)
    present = sorted(set(int(v) for v in labels))
    if not present:
        return out.reshape(height, width, 1)
    rles: dict[int, np.ndarray] = {}
    polygons: dict[int, np.ndarray] = {}
    for segmentation, label in zip(segmentations, labels.tolist()):
        if isinstance(segmentation, list):
            if not segmentation:
                continue  # no polygon: the label gets no mask from this annotation
            union = polygons.setdefault(label, np.zeros((height, width), dtype=bool))
            union |= segmentation_mask(segmentation, height, width, where)
        elif segmentation is not None:
            rles[label] = segmentation_mask(segmentation, height, width, where)
    masks = {**rles, **polygons}
    first = present[0]
    if first not in masks:
        return out.reshape(height, width, 1)
    a_cnts = _mask_counts(masks[first])
    a_vals = [first if k % 2 else 0 for k in range(len(a_cnts))]
    for label in present[1:]:
        if label in masks:
            a_cnts, a_vals = _merge(a_cnts, a_vals, _mask_counts(masks[label]), label)
    flat = np.repeat(np.asarray(a_vals, dtype=np.int32), a_cnts)[: height * width]
    out[: len(flat)] = flat
    return out.reshape(width, height).T[:, :, None]
