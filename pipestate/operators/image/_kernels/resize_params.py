"""DALI's output-size rules of ``fn.resize`` (``ResizeAttr``): size arguments, modes, ``max_size``, the input
region of interest and ``subpixel_scale``.

DALI computes sizes in single precision with some steps in double; the same mix is used here (``numpy.float32``
for DALI's ``float``, Python floats for its ``double``), so fractional sizes round exactly as DALI's do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_F = np.float32
MODES = ("default", "stretch", "not_larger", "not_smaller")


@dataclass(frozen=True)
class ResizeParams:
    """Where an output image samples its input, per spatial axis in shape order (height, width).

    Attributes:
        out_size: Output extent per axis (integers, at least 1 unless the input is empty).
        roi_lo: Source coordinate (in pixels, pixel edges at integers) mapped to the output's first edge.
        roi_hi: Source coordinate mapped to the output's last edge; ``roi_lo > roi_hi`` flips that axis.
    """

    out_size: tuple[int, ...]
    roi_lo: tuple[float, ...]
    roi_hi: tuple[float, ...]


def _round_int(x: float) -> int:
    """``std::roundf`` then ``int``: halves round away from zero."""
    return int(math.copysign(math.floor(abs(float(x)) + 0.5), x))


def _per_axis(value: float | Sequence[float], ndim: int, name: str) -> list[float]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [float(value)] * ndim
    values = [float(v) for v in value]
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise ValueError(f"{name} has {len(values)} values; give one per spatial axis ({ndim}) or a single value")
    return values


def _adjust_output_size(out: list, in_size: list, mode: str, max_size: list | None) -> None:
    """DALI's ``ResizeAttr::AdjustOutputSize``: fills unspecified extents and applies the mode and max_size."""
    ndim = len(out)
    mask = [out[d] != 0 and in_size[d] != 0 for d in range(ndim)]
    scale = [float(_F(out[d]) / _F(in_size[d])) if in_size[d] else 1.0 for d in range(ndim)]
    provided = sum(mask)
    if provided == 0:
        out[:] = [_F(s) for s in in_size]
        return
    if mode in ("default", "stretch"):
        if provided < ndim:
            if mode == "default":
                avg = 1.0
                for d in range(ndim):
                    if mask[d]:
                        avg *= abs(scale[d])
                if provided > 1:
                    avg = avg ** (1.0 / provided)
                for d in range(ndim):
                    if not mask[d]:
                        scale[d] = avg
                        out[d] = _F(float(in_size[d]) * avg)
            else:
                for d in range(ndim):
                    if not mask[d]:
                        out[d] = _F(in_size[d])
        if max_size is not None:
            for d in range(ndim):
                if max_size[d] > 0 and abs(out[d]) > max_size[d]:
                    out[d] = _F(math.copysign(max_size[d], out[d]))
        return
    final = 0.0
    first = True
    for d in range(ndim):
        if mask[d]:
            s = float(_F(abs(scale[d])))
            if first or (mode == "not_smaller" and s > final) or (mode == "not_larger" and s < final):
                final = s
            first = False
    if max_size is not None:
        for d in range(ndim):
            if max_size[d] > 0:
                s = float(max_size[d]) / float(in_size[d])
                if s < final:
                    final = s
    for d in range(ndim):
        if not mask[d] or abs(scale[d]) != final:
            scale[d] = math.copysign(final, scale[d])
            out[d] = _F(float(in_size[d]) * scale[d])


def resize_params(
    in_size: Sequence[int],
    *,
    resize_x: float | None = None,
    resize_y: float | None = None,
    size: float | Sequence[float] | None = None,
    resize_shorter: float | None = None,
    resize_longer: float | None = None,
    mode: str | None = None,
    max_size: float | Sequence[float] | None = None,
    roi_start: Sequence[float] | None = None,
    roi_end: Sequence[float] | None = None,
    roi_relative: bool = False,
    subpixel_scale: bool = True,
) -> ResizeParams:
    """Compute the output size and source window of one image exactly as DALI's ``fn.resize`` does.

    Arguments left as ``None`` are "not given" (DALI distinguishes an argument set to 0 from an absent one).

    Args:
        in_size: Input spatial extents in shape order, ``(height, width)``.
        resize_x: Output width; 0 or ``None`` keeps the aspect ratio from ``resize_y``; negative flips.
        resize_y: Output height, as ``resize_x``.
        size: Output extents in shape order (0 = derive from the others), or one value for all axes.
        resize_shorter: Shorter side length (mode ``not_smaller``).
        resize_longer: Longer side length (mode ``not_larger``).
        mode: ``"default"``, ``"stretch"``, ``"not_larger"`` or ``"not_smaller"``.
        max_size: Upper limit per axis (shape order) or one value for all axes.
        roi_start: Input region start in shape order (pixels, or 0..1 with ``roi_relative``).
        roi_end: Input region end; a start greater than the end flips that axis.
        roi_relative: ``roi_start``/``roi_end`` are fractions of the input size.
        subpixel_scale: Keep the exact (fractional) scale by adjusting the source window when the output size
            is rounded; otherwise stretch the window onto the rounded size.

    Returns:
        The output size and the source window per axis.

    Raises:
        ValueError: zero or several ways of giving the size, ``mode`` together with ``resize_shorter`` or
            ``resize_longer``, an unknown mode, only one of ``roi_start``/``roi_end``, a wrong number of
            values, or a non-empty output requested from an empty input.
    """
    ndim = len(in_size)
    separate = resize_x is not None or resize_y is not None
    methods = int(separate) + int(size is not None) + int(resize_shorter is not None) + int(resize_longer is not None)
    if methods != 1:
        raise ValueError(
            "give the output size in exactly one way: resize_x/resize_y, size, resize_shorter or resize_longer"
        )
    if (resize_shorter is not None) + (resize_longer is not None) + (mode is not None) > 1:
        raise ValueError("resize_shorter, resize_longer and mode are mutually exclusive; drop mode")
    if resize_shorter is not None:
        mode = "not_smaller"
    elif resize_longer is not None:
        mode = "not_larger"
    elif mode is None:
        mode = "default"
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; use one of {list(MODES)}")
    if (roi_start is None) != (roi_end is None):
        raise ValueError("roi_start and roi_end must be given together")

    if separate:
        if ndim != 2:
            raise ValueError("resize_x/resize_y need 2 spatial axes; use size for other ranks")
        requested = [_F(resize_y or 0.0), _F(resize_x or 0.0)]
    elif size is not None:
        requested = [_F(v) for v in _per_axis(size, ndim, "size")]
    else:
        value = resize_shorter if resize_shorter is not None else resize_longer
        requested = [_F(value)] * ndim
    limits = None
    if max_size is not None:
        limits = [float(_F(v)) for v in _per_axis(max_size, ndim, "max_size")]

    lo, hi = [], []
    empty_input = any(int(s) == 0 for s in in_size)
    for d in range(ndim):
        if roi_start is not None and in_size[d] > 0:
            starts = _per_axis(roi_start, ndim, "roi_start")
            ends = _per_axis(roi_end, ndim, "roi_end")
            a, b = float(_F(starts[d])), float(_F(ends[d]))
            if roi_relative:
                a *= in_size[d]
                b *= in_size[d]
            if abs(b - a) < 1e-3:
                offset = float(_F(0.5e-3)) if a <= b else -float(_F(0.5e-3))
                a -= offset
                b += offset
            lo.append(_F(a))
            hi.append(_F(b))
        else:
            lo.append(_F(0))
            hi.append(_F(in_size[d]))

    extent = []
    for d in range(ndim):
        sz = _F(hi[d] - lo[d])
        if sz < 0:
            lo[d], hi[d] = hi[d], lo[d]
            requested[d] = -requested[d]
            sz = -sz
        extent.append(sz)

    _adjust_output_size(requested, extent, mode, limits)
    for d in range(ndim):
        if lo[d] == hi[d] and requested[d] != 0:
            raise ValueError("cannot produce a non-empty output from an empty input region; widen roi_start/roi_end")

    min_size = 0 if empty_input else 1
    out_size, roi_lo, roi_hi = [], [], []
    for d in range(ndim):
        out_sz = float(requested[d])
        a, b = lo[d], hi[d]
        if out_sz < 0:
            a, b = b, a
        dst = max(min_size, _round_int(_F(abs(out_sz))))
        if subpixel_scale and dst != abs(out_sz):
            adjustment = min(max(dst / abs(out_sz), -10.0), 10.0)
            center = float(_F(a + b)) * 0.5
            a = _F(min(max(center + (float(a) - center) * adjustment, -1e9), 1e9))
            b = _F(min(max(center + (float(b) - center) * adjustment, -1e9), 1e9))
        out_size.append(dst)
        roi_lo.append(float(a))
        roi_hi.append(float(b))
    return ResizeParams(tuple(out_size), tuple(roi_lo), tuple(roi_hi))
