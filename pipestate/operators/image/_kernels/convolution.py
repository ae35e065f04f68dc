"""Convolution kernels with DALI's CPU arithmetic: the Gaussian and Laplacian windows DALI computes, separable
correlation in ``float32`` (bit-exact with DALI's ``gaussian_blur`` and ``laplacian``), and the 2-D
``filter`` (OpenCV's ``filter2D``, which DALI's CPU operator calls).

Separable correlation follows DALI's order: the innermost data axis first, each output element accumulated
from zero as ``acc += in[i + k - r] * w[k]`` for ``k`` in window order, in ``float32``, with the ``reflect_101``
border (``dcb|abcd|cba``); the intermediate results stay ``float32``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_F = np.float32
MAX_LAPLACIAN_WINDOW = 31
MAX_GAUSSIAN_WINDOW = 2049  # a bound DALI does not set (it fails allocating); it keeps a typo from hanging a pipeline
MAX_GAUSSIAN_SIGMA = 341.0  # its window: 2 * ceil(3 * 341) + 1 = 2047


def gaussian_window_size(sigma: float) -> int:
    """DALI's window for a sigma: ``2 * ceil(3 * sigma) + 1`` (in float32)."""
    return 2 * math.ceil(float(_F(sigma) * _F(3))) + 1


def gaussian_sigma(window_size: int) -> float:
    """DALI's (OpenCV's) sigma for a window: ``(radius - 1) * 0.3 + 0.8``."""
    radius = (window_size - 1) // 2
    return float(_F((radius - 1) * 0.3 + 0.8))


def gaussian_window(sigma: float, size: int) -> np.ndarray:
    """The normalized Gaussian window DALI computes (symmetric, the centre 1 before normalization)."""
    r = (size - 1) // 2
    window = np.zeros(size, _F)
    if size == 1:
        window[0] = 1
        return window
    exp_scale = _F(0.5) / (_F(sigma) * _F(sigma))
    total = _F(0)
    for x in range(-r, 0):
        window[x + r] = _F(math.exp(-float(_F(x * x) * exp_scale)))
        total = _F(total + window[x + r])
    total = _F(float(total) * 2.0 + 1.0)
    scale = _F(1) / total
    window[r] = scale
    window[:r] *= scale
    window[r + 1 :] = window[:r][::-1]
    return window


def _recurse(window: np.ndarray, sign: int) -> np.ndarray:
    """One step of DALI's window recursion in float32: ``[w0, w1 + s*w0, ..., s*w_last]`` flipped for ``sign=-1``
    (the convolution with ``[1, 1]``, or with ``[-1, 1]``)."""
    out = np.empty(len(window) + 1, _F)
    out[0] = window[0] if sign > 0 else -window[0]
    out[1:-1] = window[:-1] + window[1:] if sign > 0 else window[:-1] - window[1:]
    out[-1] = window[-1]
    return out


def smoothing_window(size: int) -> np.ndarray:
    """Binomial coefficients of ``(1 + 1) ** (size - 1)``: DALI's (OpenCV's) Laplacian smoothing window, built
    by DALI's float32 recursion."""
    window = np.ones(1, _F)
    while len(window) < size:
        window = _recurse(window, 1)
    return window


def derivative_window(size: int) -> np.ndarray:
    """The second-derivative window: the smoothing window of ``size - 2`` differenced twice (``[1, -2, 1]`` for
    size 3), as DALI builds it."""
    return _recurse(_recurse(smoothing_window(size - 2), -1), -1)


def laplacian_normalization(sizes: Sequence[int], ndim: int) -> float:
    """DALI's ``normalized_kernel`` factor of one partial derivative: ``2 ** -(sum(sizes) - ndim - 2)``."""
    return float(2.0 ** -(sum(sizes) - ndim - 2))


def correlate1d(data: np.ndarray, window: np.ndarray, axis: int) -> np.ndarray:
    """Correlate ``float32`` data along ``axis`` with ``window`` (odd length), reflect-101 border, accumulating
    each output from zero in window order (DALI's CPU convolution)."""
    r = len(window) // 2
    n = data.shape[axis]
    if r == 0:
        return data * window[0] + _F(0)
    index = np.arange(-r, n + r)
    if n == 1:
        index = np.zeros_like(index)
    else:
        period = 2 * (n - 1)
        index = np.abs(index) % period
        index = np.where(index >= n, period - index, index)
    padded = np.take(data, index, axis=axis)
    out = np.zeros(data.shape, _F)
    term = np.empty(data.shape, _F)
    where = [slice(None)] * data.ndim
    for k, w in enumerate(window):
        where[axis] = slice(k, k + n)
        np.multiply(padded[tuple(where)], w, out=term)
        out += term
    return out


def separable(data: np.ndarray, windows: Sequence[np.ndarray], axes: Sequence[int]) -> np.ndarray:
    """Correlate ``data`` (converted to ``float32``) with ``windows[i]`` along ``axes[i]``, innermost axis first."""
    out = data.astype(_F)
    for axis, window in sorted(zip(axes, windows), key=lambda aw: -aw[0]):
        out = correlate1d(out, window, axis)
    return out


# ---- fn.filter (OpenCV filter2D, as DALI's CPU operator) ---------------------------------------------------
BORDERS = ("reflect_101", "reflect_1001", "wrap", "clamp", "constant")


def filter2d(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, int],
    border: str,
    fill_value: float,
    valid: bool,
    out_dtype: np.dtype,
) -> np.ndarray:
    """DALI's CPU ``filter`` of one ``HW`` or ``HWC`` image: ``cv2.filter2D`` (correlation) with ``anchor``
    (``-1``: the middle), one of :data:`BORDERS`, or the ``"valid"`` output (``valid=True``).

    The intermediate type is ``float32``; an integer ``out_dtype`` (the input's) rounds and saturates as OpenCV."""
    import cv2

    kernel = np.ascontiguousarray(kernel, dtype=_F)
    kh, kw = kernel.shape
    ay = kh // 2 if anchor[0] < 0 else anchor[0]
    ax = kw // 2 if anchor[1] < 0 else anchor[1]
    depth = -1 if out_dtype == image.dtype else cv2.CV_32F
    src = np.ascontiguousarray(image)
    if valid:
        full = cv2.filter2D(src, depth, kernel, anchor=(kw // 2, kh // 2), borderType=cv2.BORDER_REFLECT_101)
        h, w = image.shape[0] - kh + 1, image.shape[1] - kw + 1
        return full[kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w]
    simple = {"reflect_101": cv2.BORDER_REFLECT_101, "reflect_1001": cv2.BORDER_REFLECT, "clamp": cv2.BORDER_REPLICATE}
    if border in simple or (border == "constant" and fill_value == 0):
        code = simple.get(border, cv2.BORDER_CONSTANT)
        return cv2.filter2D(src, depth, kernel, anchor=(ax, ay), borderType=code)
    top, bottom, left, right = ay, kh - ay - 1, ax, kw - ax - 1
    if border == "wrap":
        padded = cv2.copyMakeBorder(src, top, bottom, left, right, cv2.BORDER_WRAP)
    else:
        channels = 1 if src.ndim == 2 else src.shape[2]
        padded = cv2.copyMakeBorder(src, top, bottom, left, right, cv2.BORDER_CONSTANT, value=[fill_value] * channels)
    if padded.ndim < src.ndim:
        padded = padded[..., None]
    full = cv2.filter2D(padded, depth, kernel, anchor=(ax, ay), borderType=cv2.BORDER_REFLECT_101)
    return full[top : top + image.shape[0], left : left + image.shape[1]]
