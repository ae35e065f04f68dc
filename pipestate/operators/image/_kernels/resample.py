"""DALI's separable resampling (``fn.resize`` and the resizing inside ``random_resized_crop`` & co.).

DALI resamples one axis at a time with tabulated filters (a 3-point triangle, a 129-point cubic, a 193-point
Lanczos-3, a 65-point Gaussian) read with linear interpolation, computes the per-output weights in single
precision, normalizes them to sum 1, clamps source indices at the image border, keeps the intermediate image in
``float32`` and rounds the final pass to nearest (ties to even). This module computes the same weights with the
same ``float32`` operations and applies each pass as a sparse matrix product (SciPy's CSR kernels run in C and
release the GIL), so results equal DALI's except for rare rounding ties (see ``docs/images.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from pipestate.operators.image._kernels.resize_params import ResizeParams

_F = np.float32
FILTERS = ("nn", "linear", "triangular", "cubic", "lanczos3", "gaussian")
_INT_RANGES = {
    np.dtype(t): (np.iinfo(t).min, np.iinfo(t).max)
    for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32)
}


@dataclass(frozen=True)
class _Filter:
    table: np.ndarray  # float32 samples
    scale: np.float32  # table samples per source pixel
    anchor: np.float32  # table position of the filter's centre, in source pixels

    def support(self) -> int:
        return int(math.ceil(_F(len(self.table) - 1) / self.scale))

    def rescaled(self, support: float) -> _Filter:
        """DALI's ``ResamplingFilter::rescale``: stretch the table over ``support`` source pixels."""
        scale = _F(_F(len(self.table) - 1) / _F(support))
        return _Filter(self.table, scale, _F(_F(self.anchor * self.scale) / scale))


def _sinc(x: np.ndarray) -> np.ndarray:
    px = (x.astype(np.float64) * math.pi).astype(_F)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(px) < 1e-8, _F(1), np.sin(px) / px).astype(_F)


def _tables() -> dict[str, _Filter]:
    i = np.arange(129, dtype=_F)
    x = (_F(4) * (i - _F(64)) / _F(128)).astype(_F)
    ax = np.abs(x)
    x2, x3 = ax * ax, ax * ax * ax
    cubic = np.where(
        ax >= 2,
        _F(0),
        np.where(ax > 1, _F(-0.5) * x3 + _F(2.5) * x2 - _F(4) * ax + _F(2), _F(1.5) * x3 - _F(2.5) * x2 + _F(1)),
    ).astype(_F)
    i = np.arange(193, dtype=_F)
    x = (_F(6) * (i - _F(96)) / _F(192)).astype(_F)
    lanczos = np.where(np.abs(x) >= 3, _F(0), _sinc(x) * _sinc((x / _F(3)).astype(_F))).astype(_F)
    i = np.arange(65, dtype=_F)
    x = (_F(4) * (i - _F(32)) / _F(64)).astype(_F)
    gaussian = np.exp(-x * x).astype(_F)
    tri = np.array([0, 1, 0], _F)
    return {
        "triangular": _Filter(tri, _F(1), _F(1)),
        "cubic": _Filter(cubic, _F(1), _F(64)).rescaled(4),
        "lanczos3": _Filter(lanczos, _F(1), _F(96)).rescaled(6),
        "gaussian": _Filter(gaussian, _F(1), _F(32)),
    }


_TABLES = _tables()
_PADDED = {id(f.table): np.concatenate(([_F(0)], f.table, [_F(0), _F(0)])).astype(_F) for f in _TABLES.values()}
_TAP_OFFSETS = np.arange(4096, dtype=_F)  # tap k's offset from an output pixel's first source pixel


def _filter_for(kind: str, antialias: bool, in_extent: float, out_size: int) -> _Filter | None:
    """DALI's ``DefaultFilterRadius`` + ``GetResamplingFilter``; ``None`` is nearest neighbour."""
    down = antialias and in_extent > out_size
    ratio = float(_F(in_extent) / _F(out_size)) if out_size else 1.0
    if kind == "nn":
        return None
    if kind == "linear" and not antialias:
        return _TABLES["triangular"].rescaled(max(1.0, 2.0))
    if kind in ("linear", "triangular"):
        radius = ratio if down else 1.0
        return _TABLES["triangular"].rescaled(max(_F(1), _F(2) * _F(radius)))
    if kind == "gaussian":
        radius = ratio if down else 1.0
        sigma = _F(_F(radius) * _F(0.5) / _F(math.sqrt(2)))
        return _TABLES["gaussian"].rescaled(max(_F(1), _F(4 * math.sqrt(2)) * sigma))
    if kind == "cubic":
        radius = 2 * ratio if down else 2.0
        return _TABLES["cubic"].rescaled(_F(2) * max(_F(2), _F(radius)))
    radius = 3 * ratio if down else 3.0
    return _TABLES["lanczos3"].rescaled(_F(2) * max(_F(3), _F(radius)))


def _lookup(flt: _Filter, x: np.ndarray) -> np.ndarray:
    """``ResamplingFilter::operator()``: the table read with linear interpolation, 0 outside."""
    n = len(flt.table)
    padded = _PADDED[id(flt.table)]  # [0, *table, 0, 0]: index i + 1 reads table[i], 0 outside it
    x0 = np.floor(x)
    d = x - x0
    i0 = np.minimum(np.maximum(x0, _F(-1)), _F(n)).astype(np.intp)
    i0 += 1
    f0 = padded[i0]
    i0 += 1
    f1 = padded[i0]
    f1 -= f0
    f1 *= d
    f1 += f0  # f0 + d * (f1 - f0), in float32
    f1[(x <= -1) | (x >= n)] = 0
    return f1


def _weights(out_size: int, origin: np.float32, scale: np.float32, flt: _Filter) -> tuple[np.ndarray, np.ndarray]:
    """``InitializeResamplingFilter``: first source index and normalized weights of every output pixel."""
    start = _F(origin + _F(_F(_F(_F(0.5) * scale) - _F(0.5)) - flt.anchor))
    support = flt.support()
    pos = np.arange(out_size, dtype=_F)
    pos *= scale
    pos += start
    first = np.ceil(pos)
    frac = first - pos
    offsets = _TAP_OFFSETS[:support] if support <= len(_TAP_OFFSETS) else np.arange(support, dtype=_F)
    taps = offsets[:, None] + frac  # (support, out_size): a tap's row is contiguous
    taps *= flt.scale
    coeffs = _lookup(flt, taps)
    total = np.cumsum(coeffs, axis=0)[-1]  # summed tap after tap, as DALI's loop (a sum may pair them up)
    zero = total == 0
    total[zero] = 1
    coeffs /= total  # a zero total leaves its (zero) weights as they are
    return first.astype(np.int64), coeffs.T


def _nn_indices(out_size: int, origin: np.float32, scale: np.float32, accumulate: bool) -> np.ndarray:
    """``ResampleNN``: columns use ``origin + (x + 0.5) * scale``; rows accumulate ``scale`` step by step."""
    if accumulate:
        steps = np.full(out_size, scale, _F)
        steps[0] = _F(origin + _F(_F(0.5) * scale))
        pos = np.add.accumulate(steps, dtype=_F)
    else:
        pos = (origin + ((np.arange(out_size, dtype=_F) + _F(0.5)) * scale).astype(_F)).astype(_F)
    return np.floor(pos).astype(np.int64)


@dataclass
class _Axis:
    out: int
    origin: np.float32
    scale: np.float32
    filter: _Filter | None
    lo: int  # DALI's clamped source footprint, used for the processing order and the origin shift
    hi: int


def _plan_axis(n: int, out: int, lo: float, hi: float, kind: str, antialias: bool) -> _Axis:
    start, end = _F(lo), _F(hi)
    extent = abs(float(_F(end - start)))
    flt = _filter_for(kind, antialias, extent, out)
    scale = _F(_F(end - start) / _F(out)) if out else _F(0)
    support = flt.support() if flt is not None else 1
    anchor = flt.anchor if flt is not None else _F(0)
    a, b = (start, end) if start <= end else (end, start)
    flo = math.floor(_F(a - anchor))
    fhi = math.ceil(_F(_F(b - anchor) + _F(support)))
    return _Axis(out, start, scale, flt, max(0, min(n, flo)), max(0, min(n, fhi)))


def _horizontal_first(axes: list[_Axis]) -> bool:
    """DALI's ``ProcessingOrderCalculator`` for 2D: cost of each pass = (support * weight + 3) * volume after it."""
    (y, x) = axes
    sup = [max(1, a.filter.support() if a.filter is not None else -1) for a in axes]
    ext_y, ext_x = y.hi - y.lo, x.hi - x.lo
    cost_xy = _F(_F(1.4 * sup[1] * (x.out * ext_y)) + _F(3 * x.out * ext_y)) + _F(
        _F(1.0 * sup[0] * (x.out * y.out)) + _F(3 * x.out * y.out)
    )
    cost_yx = _F(_F(1.0 * sup[0] * (ext_x * y.out)) + _F(3 * ext_x * y.out)) + _F(
        _F(1.4 * sup[1] * (x.out * y.out)) + _F(3 * x.out * y.out)
    )
    return not cost_yx < cost_xy


@dataclass(frozen=True)
class _Pass:
    """One pass as a CSR matrix (``rows`` outputs x ``cols`` inputs) over the input slice starting at ``offset``."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    rows: int
    cols: int
    offset: int

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``matrix @ x`` for a 2-D ``x`` of ``cols`` rows, in float32 (the products accumulate in CSR order)."""
        x = np.ascontiguousarray(x, dtype=_F)
        if _csr_matvecs is None:  # pragma: no cover - SciPy's public path, same arithmetic
            matrix = scipy.sparse.csr_matrix((self.data, self.indices, self.indptr), shape=(self.rows, self.cols))
            return np.asarray(matrix @ x, dtype=_F)
        out = np.zeros((self.rows, x.shape[1]), _F)
        _csr_matvecs(self.rows, self.cols, x.shape[1], self.indptr, self.indices, self.data, x.ravel(), out.ravel())
        return out


try:  # SciPy's C kernel behind ``csr_matrix @ dense``, called directly: the wrapper costs more than the product
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover
    _csr_matvecs = None


def _pass_matrix(axis: _Axis, n: int, accumulate_nn: bool, first_pass: bool) -> _Pass:
    """The pass as a CSR matrix over the input slice ``[offset, offset + cols)``."""
    origin = axis.origin if first_pass else _F(axis.origin - _F(axis.lo))
    shift = 0 if first_pass else axis.lo
    if axis.filter is None:
        cols = _nn_indices(axis.out, origin, axis.scale, accumulate_nn)[:, None] + shift
        coeffs = np.ones((axis.out, 1), _F)
    else:
        first, coeffs = _weights(axis.out, origin, axis.scale, axis.filter)
        cols = first[:, None] + np.arange(coeffs.shape[1])[None, :] + shift
    np.minimum(cols, n - 1, out=cols)
    np.maximum(cols, 0, out=cols)
    offset = int(cols.min()) if cols.size else 0
    width = int(cols.max()) - offset + 1 if cols.size else 1
    support = coeffs.shape[1]
    return _Pass(np.arange(0, axis.out * support + 1, support, dtype=np.int32),
                 (cols - offset).astype(np.int32).ravel(), np.ascontiguousarray(coeffs, _F).ravel(),
                 axis.out, width, offset)


def _swap(array: np.ndarray) -> np.ndarray:
    """``array`` (``(A, B, C)``) with its first two axes swapped, C-contiguous: OpenCV's blocked transpose where
    it handles the pixel size (much faster than numpy's strided copy), numpy otherwise."""
    pixel = array.shape[2] * array.itemsize
    if pixel in _CV_PIXEL_BYTES and array.dtype in _CV_DEPTHS and max(array.shape[:2]) < 2**31:
        import cv2

        out = cv2.transpose(array)
        return out.reshape(array.shape[1], array.shape[0], array.shape[2])
    return np.ascontiguousarray(array.transpose(1, 0, 2))


_CV_PIXEL_BYTES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
_CV_DEPTHS = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64))


def _to_output(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return np.ascontiguousarray(values, dtype=dtype)
    if dtype == np.uint8 and values.dtype == _F and values.flags.c_contiguous and values.size:
        import cv2  # rounds half to even and saturates in one pass, as the numpy path below (~20x faster)

        flat = values.reshape(values.shape[0], -1)
        np.maximum(flat, _F(0), out=flat)  # OpenCV's conversion takes the absolute value
        return cv2.convertScaleAbs(flat).reshape(values.shape)
    lo, hi = _INT_RANGES[dtype]
    rounded = np.rint(values, out=values if values.flags.writeable and values.dtype.kind == "f" else None)
    np.clip(rounded, lo, hi, out=rounded)
    return np.ascontiguousarray(rounded.astype(dtype))


def resample(
    image: np.ndarray,
    params: ResizeParams,
    *,
    min_filter: str = "linear",
    mag_filter: str = "linear",
    antialias: bool = True,
    dtype: np.dtype | type | None = None,
) -> np.ndarray:
    """Resample an HWC (or HW) image onto ``params`` as DALI's CPU ``fn.resize`` does.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array of ``uint8``, ``int16``, ``uint16``, ``int32`` or ``float32``.
        params: Output size and source window (from ``resize_params`` or built directly).
        min_filter: Filter used on an axis that shrinks: one of ``FILTERS``.
        mag_filter: Filter used on an axis that grows or keeps its size.
        antialias: Widen the filter when shrinking (DALI's default); nearest neighbour never widens.
        dtype: Output element type: the input's (default) or ``float32`` (no rounding).

    Returns:
        A new C-contiguous array of ``params.out_size`` (plus the channel axis if the input had one).

    Raises:
        ValueError: unknown filter name, an image that is not 2D/3D, a mismatched ``params`` rank, or an
            output ``dtype`` other than the input's or ``float32``.
    """
    for name, value in (("min_filter", min_filter), ("mag_filter", mag_filter)):
        if value not in FILTERS:
            raise ValueError(f"{name}={value!r} is unknown; use one of {list(FILTERS)}")
    if image.ndim not in (2, 3):
        raise ValueError(f"resample expects an HWC or HW image, got shape {image.shape}")
    if len(params.out_size) != 2:
        raise ValueError(f"params describe {len(params.out_size)} spatial axes; images have 2")
    out_dtype = np.dtype(dtype) if dtype is not None else image.dtype
    if out_dtype != image.dtype and out_dtype != np.float32:
        raise ValueError(f"dtype={out_dtype} is not allowed: the output is the input's type or float32")
    if out_dtype.kind != "f" and out_dtype not in _INT_RANGES:
        raise ValueError(f"images of {out_dtype} are not supported; convert to float32 or an integer type")
    squeeze = image.ndim == 2
    img = image[:, :, None] if squeeze else image
    shape = img.shape
    out_h, out_w = params.out_size
    if out_h == 0 or out_w == 0 or shape[0] == 0 or shape[1] == 0:
        out = np.zeros((out_h, out_w, shape[2]), out_dtype)
        return out[:, :, 0] if squeeze else out

    axes = []
    for d in range(2):
        extent = abs(float(_F(_F(params.roi_hi[d]) - _F(params.roi_lo[d]))))
        kind = min_filter if params.out_size[d] < extent else mag_filter
        axes.append(_plan_axis(shape[d], params.out_size[d], params.roi_lo[d], params.roi_hi[d], kind, antialias))

    if axes[0].filter is None and axes[1].filter is None:
        rows = np.clip(_nn_indices(out_h, axes[0].origin, axes[0].scale, accumulate=True), 0, shape[0] - 1)
        cols = np.clip(_nn_indices(out_w, axes[1].origin, axes[1].scale, accumulate=False), 0, shape[1] - 1)
        out = img[rows[:, None], cols[None, :]]
        out = out.astype(out_dtype) if out_dtype != img.dtype else np.ascontiguousarray(out)
        return out[:, :, 0] if squeeze else out

    channels = shape[2]
    if _horizontal_first(axes):
        px = _pass_matrix(axes[1], shape[1], False, first_pass=True)
        py = _pass_matrix(axes[0], shape[0], True, first_pass=False)
        src = _swap(img[py.offset:py.offset + py.cols, px.offset:px.offset + px.cols])  # (W, H, C)
        tmp = _swap(px.apply(src.reshape(src.shape[0], -1)).reshape(out_w, -1, channels))
        result = py.apply(tmp.reshape(tmp.shape[0], -1)).reshape(out_h, out_w, channels)
    else:
        py = _pass_matrix(axes[0], shape[0], True, first_pass=True)
        px = _pass_matrix(axes[1], shape[1], False, first_pass=False)
        src = np.ascontiguousarray(img[py.offset:py.offset + py.cols, px.offset:px.offset + px.cols], dtype=_F)
        tmp = _swap(py.apply(src.reshape(src.shape[0], -1)).reshape(out_h, -1, channels))
        result = _swap(px.apply(tmp.reshape(tmp.shape[0], -1)).reshape(out_w, out_h, channels))
    out = _to_output(result, out_dtype)
    return out[:, :, 0] if squeeze else out
