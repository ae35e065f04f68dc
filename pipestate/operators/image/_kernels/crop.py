"""Crop windows as DALI computes them (``fn.crop``, ``crop_mirror_normalize``, ``resize_crop_mirror``) and
``crop_mirror_normalize``'s arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_F = np.float32
OUT_OF_BOUNDS = ("error", "pad", "trim_to_shape")


def crop_window(
    in_size: Sequence[int], crop: Sequence[float], crop_pos: Sequence[float] | None = None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``(anchor, shape)`` of a crop, per spatial axis in shape order.

    DALI truncates a fractional crop size and places the window at ``round(crop_pos * (in - crop))``
    (halves away from zero); the anchor is negative when the crop is larger than the input.

    Args:
        in_size: Input extents, e.g. ``(H, W)``.
        crop: Crop extents (``crop_h``, ``crop_w``); fractions are truncated.
        crop_pos: Relative position of the window per axis (``crop_pos_y``, ``crop_pos_x``), 0.5 by default.

    Returns:
        ``(anchor, shape)`` as tuples of ints.

    Raises:
        ValueError: mismatched lengths, a negative crop size, or a position outside [0, 1].
    """
    if crop_pos is None:
        crop_pos = [0.5] * len(in_size)
    if not len(in_size) == len(crop) == len(crop_pos):
        raise ValueError(
            f"in_size, crop and crop_pos need one value per axis; got {len(in_size)}, {len(crop)} and {len(crop_pos)}"
        )
    anchor, shape = [], []
    for n, c, p in zip(in_size, crop, crop_pos):
        if c < 0:
            raise ValueError(f"crop sizes must not be negative, got {list(crop)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"crop_pos values must be within [0, 1], got {list(crop_pos)}")
        size = int(_F(c))
        offset = float(_F(_F(p) * _F(n - size)))
        anchor.append(int(math.copysign(math.floor(abs(offset) + 0.5), offset)))
        shape.append(size)
    return tuple(anchor), tuple(shape)


def crop_image(
    image: np.ndarray,
    anchor: Sequence[int],
    shape: Sequence[int],
    *,
    out_of_bounds_policy: str = "error",
    fill_values: float | Sequence[float] = 0,
) -> np.ndarray:
    """Cut ``shape`` at ``anchor`` from the leading (spatial) axes of ``image``.

    Args:
        image: ``(H, W[, C])`` array.
        anchor: Window start per spatial axis (may be negative).
        shape: Window extent per spatial axis.
        out_of_bounds_policy: ``"error"``, ``"pad"`` (fill outside pixels) or ``"trim_to_shape"``.
        fill_values: Padding value, or one per channel.

    Returns:
        A new array with the window (C-contiguous).

    Raises:
        ValueError: a window outside the image with policy ``"error"``, or an unknown policy.
    """
    if out_of_bounds_policy not in OUT_OF_BOUNDS:
        raise ValueError(f"out_of_bounds_policy={out_of_bounds_policy!r} is unknown; use one of {list(OUT_OF_BOUNDS)}")
    nd = len(anchor)
    lo = [int(a) for a in anchor]
    hi = [int(a) + int(s) for a, s in zip(anchor, shape)]
    inside = all(0 <= lo[d] and hi[d] <= image.shape[d] for d in range(nd))
    if inside:
        return np.ascontiguousarray(image[tuple(slice(lo[d], hi[d]) for d in range(nd))])
    if out_of_bounds_policy == "error":
        raise ValueError(
            f"the crop window {lo}..{hi} exceeds the input shape {image.shape[:nd]}; use "
            "out_of_bounds_policy='pad' or 'trim_to_shape', or a smaller crop"
        )
    if out_of_bounds_policy == "trim_to_shape":
        return np.ascontiguousarray(image[tuple(slice(max(0, lo[d]), min(image.shape[d], hi[d])) for d in range(nd))])
    out = np.empty(tuple(int(s) for s in shape) + image.shape[nd:], image.dtype)
    out[...] = np.asarray(fill_values, dtype=image.dtype)
    src = tuple(slice(max(0, lo[d]), max(0, min(image.shape[d], hi[d]))) for d in range(nd))
    dst = tuple(slice(s.start - lo[d], s.stop - lo[d]) for d, s in enumerate(src))
    out[dst] = image[src]
    return out


def normalize_params(
    mean: Sequence[float], std: Sequence[float], scale: float = 1.0, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """``(mean, multiplier, shift)`` in ``float32``: ``out = (in - mean) * multiplier + shift`` with
    ``multiplier = (1 / std) * scale``, as DALI's ``crop_mirror_normalize`` computes it.

    Raises:
        ValueError: ``mean`` and ``std`` differ in length, or a standard deviation is 0.
    """
    m = np.atleast_1d(np.asarray(mean, _F))
    s = np.atleast_1d(np.asarray(std, _F))
    if m.size != s.size and 1 not in (m.size, s.size):
        raise ValueError(f"mean has {m.size} values and std {s.size}; give the same number (or one)")
    if np.any(s == 0):
        raise ValueError("std must not contain 0")
    mul = ((_F(1) / s) * _F(scale)).astype(_F)
    return m, mul, _F(shift)


def crop_mirror_normalize(
    image: np.ndarray,
    anchor: Sequence[int],
    shape: Sequence[int],
    *,
    mirror: bool = False,
    mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,),
    scale: float = 1.0,
    shift: float = 0.0,
    dtype: np.dtype | type = np.float32,
    output_layout: str = "CHW",
    pad_output: bool = False,
    out_of_bounds_policy: str = "error",
    fill_values: float | Sequence[float] = 0,
) -> np.ndarray:
    """DALI's ``crop_mirror_normalize`` on one HWC image: crop, mirror horizontally, normalize per channel,
    convert to ``dtype`` (integers round to nearest with saturation), lay out as ``output_layout`` and
    optionally pad the channels to 4.

    Returns:
        The processed image (``CHW`` or ``HWC``).

    Raises:
        ValueError: bad layout, mean/std mismatch or a crop outside the image (see ``crop_image``).
    """
    if output_layout not in ("CHW", "HWC"):
        raise ValueError(f"output_layout={output_layout!r} is not supported for images; use 'CHW' or 'HWC'")
    window = crop_image(image, anchor, shape, out_of_bounds_policy=out_of_bounds_policy, fill_values=fill_values)
    if mirror:
        window = window[:, ::-1]
    m, mul, sh = normalize_params(mean, std, scale, shift)
    values = ((window.astype(_F) - m) * mul + sh).astype(_F)
    out_dtype = np.dtype(dtype)
    if pad_output:
        pad = np.zeros(values.shape[:-1] + (4 - values.shape[-1] % 4 if values.shape[-1] % 4 else 0,), _F)
        values = np.concatenate([values, pad], axis=-1)
    if out_dtype.kind != "f":
        info = np.iinfo(out_dtype)
        values = np.clip(np.floor(values + _F(0.5)), info.min, info.max)
    out = values.astype(out_dtype)
    if output_layout == "CHW":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out)


def slice_nd(array: np.ndarray, anchor: Sequence[int], shape: Sequence[int], *, out_of_bounds_policy: str = "error",
             fill_values: Sequence[float] = (0.0,), channel_axis: int | None = None) -> np.ndarray:
    """Cut the window ``[anchor, anchor + shape)`` (one entry per axis) from ``array``, as DALI's ``fn.slice``.

    Args:
        array: Any array.
        anchor: Window start per axis (may be negative).
        shape: Window extent per axis.
        out_of_bounds_policy: ``"error"``, ``"pad"`` (or ``"constant"``: fill the outside) or ``"trim_to_shape"``.
        fill_values: One padding value, or one per channel along ``channel_axis``.
        channel_axis: The channel axis, when ``fill_values`` has several values.

    Returns:
        A new C-contiguous array.

    Raises:
        ValueError: a window outside the array with policy ``"error"``, or fill values that do not match the
            channels.
    """
    if out_of_bounds_policy == "constant":
        out_of_bounds_policy = "pad"
    if out_of_bounds_policy not in OUT_OF_BOUNDS:
        raise ValueError(f"out_of_bounds_policy={out_of_bounds_policy!r} is unknown; use one of "
                         f"{list(OUT_OF_BOUNDS)}")
    lo = [int(a) for a in anchor]
    hi = [int(a) + int(s) for a, s in zip(anchor, shape)]
    if math.prod(int(s) for s in shape) > 2**28:
        raise ValueError(f"the slice shape {[int(s) for s in shape]} is too large (over 2**28 values)")
    if all(0 <= lo[d] and hi[d] <= array.shape[d] for d in range(array.ndim)):
        return np.ascontiguousarray(array[tuple(slice(lo[d], hi[d]) for d in range(array.ndim))])
    if out_of_bounds_policy == "error":
        raise ValueError(f"the slice [{lo}, {hi}) exceeds the input shape {list(array.shape)}; use "
                         "out_of_bounds_policy='pad' or 'trim_to_shape', or a smaller window")
    if out_of_bounds_policy == "trim_to_shape":
        return np.ascontiguousarray(array[tuple(slice(max(0, lo[d]), max(0, min(array.shape[d], hi[d])))
                                                for d in range(array.ndim))])
    out = np.empty(tuple(int(s) for s in shape), array.dtype)
    fill = np.asarray(fill_values, np.float64)
    if fill.size > 1:
        if channel_axis is None or out.shape[channel_axis] != fill.size:
            raise ValueError(f"fill_values has {fill.size} values; give one, or one per channel "
                             f"({'no channel axis' if channel_axis is None else out.shape[channel_axis]})")
        index = [None] * out.ndim
        index[channel_axis] = slice(None)
        fill = fill[tuple(index)]
    out[...] = fill.astype(array.dtype) if array.dtype.kind == "f" else np.clip(np.rint(fill), *_limits(array.dtype))
    src = tuple(slice(max(0, lo[d]), max(max(0, lo[d]), min(array.shape[d], hi[d]))) for d in range(array.ndim))
    dst = tuple(slice(s.start - lo[d], s.stop - lo[d]) for d, s in enumerate(src))
    out[dst] = array[src]
    return out


def _limits(dtype: np.dtype) -> tuple[int, int]:
    if dtype.kind == "b":
        return 0, 1
    info = np.iinfo(dtype)
    return info.min, info.max
