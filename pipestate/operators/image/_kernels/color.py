"""DALI's colour arithmetic: colour-space conversions, the linear (YIQ) transform behind ``fn.hsv``,
``fn.color_twist``, ``fn.hue`` and ``fn.saturation``, and ``fn.brightness_contrast``.

Every function reproduces DALI 2.4's CPU arithmetic bit for bit (checked against DALI on all 2^24 RGB
colours for the conversions): ``float32`` operations in DALI's order, integer outputs rounded half away from
zero and saturated (``saturate_cast``).

- ``fn.color_space_conversion``: BT.601 studio range with coefficients derived in double precision from
  ``Kr = 0.299, Kb = 0.114`` (``219/255`` luma, ``224/255`` chroma scales), rounded to ``float32``; GRAY from
  RGB/BGR is OpenCV's fixed-point ``cvtColor`` (what DALI calls).
- The colour twist: ``brightness * contrast * YIQ->RGB * hue * saturation * value * RGB->YIQ``, each product
  a ``float32`` matrix product evaluated left to right. ``YIQ->RGB`` is DALI's Gauss-Jordan inverse of
  ``RGB->YIQ`` (partial pivoting, reciprocal of the pivot, fused multiply-adds) and the hue rotation uses
  the C library's ``cosf``/``sinf`` of the angle in radians rounded to ``float32`` (the functions DALI calls;
  where the C library cannot be loaded, ``cos``/``sin`` in double precision rounded to ``float32``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from fractions import Fraction

import numpy as np

from pipestate.operators._kit import saturate_cast

_F = np.float32

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], _F)
# What the image decoder's YCbCr output matches (DALI's decoder converts with the full-precision BT.601 matrix).
DECODER_TO_YCBCR = (
    np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255
).astype(_F)


def _dot3(pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``w0*c0 + w1*c1 + w2*c2`` in float32, left to right (as DALI's ``dot``)."""
    p = pixels.astype(_F, copy=False)
    return (weights[0] * p[..., 0] + weights[1] * p[..., 1]) + weights[2] * p[..., 2]


def _round_u8(values: np.ndarray, half_up: bool = False) -> np.ndarray:
    rounded = np.floor(values + _F(0.5)) if half_up else np.rint(values)
    return np.clip(rounded, 0, 255).astype(np.uint8)


def rgb_to_gray(image: np.ndarray, *, truncate: bool = False) -> np.ndarray:
    """RGB ``uint8`` HWC -> 1-channel luma (0.299, 0.587, 0.114) as DALI's decoder computes it: rounded half
    up, or truncated (``truncate=True``, DALI's PNG path)."""
    luma = _dot3(image, GRAY_WEIGHTS)
    if truncate:
        return np.clip(np.trunc(luma), 0, 255).astype(np.uint8)[..., None]
    return _round_u8(luma, half_up=True)[..., None]


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """RGB ``uint8`` HWC -> BT.601 studio-range YCbCr as DALI's image decoder outputs it (``output_type=YCbCr``)."""
    out = np.empty(image.shape[:-1] + (3,), np.uint8)
    for c in range(3):
        out[..., c] = _round_u8(_dot3(image, DECODER_TO_YCBCR[c]) + _F((16, 128, 128)[c]), half_up=True)
    return out


# ---- fn.color_space_conversion ----------------------------------------------------------------------------
SPACES = ("RGB", "BGR", "GRAY", "YCbCr")
_KR, _KB = 0.299, 0.114
_KG = 1 - _KR - _KB
_LUMA, _CHROMA = 219 / 255, 224 / 255
_TO_YCBCR = np.array(
    [
        [_KR * _LUMA, _KG * _LUMA, _KB * _LUMA],
        [-_KR / (2 * (1 - _KB)) * _CHROMA, -_KG / (2 * (1 - _KB)) * _CHROMA, 0.5 * _CHROMA],
        [0.5 * _CHROMA, -_KG / (2 * (1 - _KR)) * _CHROMA, -_KB / (2 * (1 - _KR)) * _CHROMA],
    ]
).astype(_F)
_YCBCR_OFFSET = (_F(16), _F(128), _F(128))
_Y_SCALE = _F(1 / _LUMA)  # studio luma -> full range
_CR_TO_R = _F(2 * (1 - _KR) / _CHROMA)
_CB_TO_G = _F(2 * (1 - _KB) * _KB / _KG / _CHROMA)
_CR_TO_G = _F(2 * (1 - _KR) * _KR / _KG / _CHROMA)
_CB_TO_B = _F(2 * (1 - _KB) / _CHROMA)


def _channels(image: np.ndarray, order: tuple[int, ...]) -> list[np.ndarray]:
    return [image[..., c].astype(_F) for c in order]


def _to_u8(values: np.ndarray) -> np.ndarray:
    return saturate_cast(values, np.uint8)


def _ycbcr_from_rgb(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(r.shape + (3,), np.uint8)
    acc = np.empty_like(r)
    for k in range(3):
        m = _TO_YCBCR[k]
        np.multiply(r, m[0], out=acc)
        acc += g * m[1]
        acc += b * m[2]
        acc += _YCBCR_OFFSET[k]
        out[..., k] = _to_u8(acc)
    return out


def _rgb_from_ycbcr(image: np.ndarray, order: tuple[int, int, int]) -> np.ndarray:
    y, cb, cr = _channels(image, (0, 1, 2))
    y -= _F(16)
    y *= _Y_SCALE
    cb -= _F(128)
    cr -= _F(128)
    out = np.empty(image.shape, np.uint8)
    out[..., order[0]] = _to_u8(y + _CR_TO_R * cr)
    out[..., order[1]] = _to_u8((y - _CB_TO_G * cb) - _CR_TO_G * cr)
    out[..., order[2]] = _to_u8(y + _CB_TO_B * cb)
    return out


def convert_color_space(image: np.ndarray, image_type: str, output_type: str) -> np.ndarray:
    """``fn.color_space_conversion`` for ``uint8`` channel-last images (``HWC``, ``FHWC``...).

    Args:
        image: ``(..., C)`` ``uint8`` with 1 channel for GRAY, 3 otherwise.
        image_type: ``"RGB"``, ``"BGR"``, ``"GRAY"`` or ``"YCbCr"`` (the input's space).
        output_type: The same choices (the output's space); it must differ from ``image_type``.

    Returns:
        The converted ``uint8`` image (1 channel for GRAY, 3 otherwise).

    Raises:
        ValueError: an unknown colour space, a conversion to the same space (DALI supports none), or a channel
            count that does not fit ``image_type``.
    """
    for name, value in (("image_type", image_type), ("output_type", output_type)):
        if value not in SPACES:
            raise ValueError(f"{name}={value!r} is not supported; use one of {list(SPACES)}")
    if image_type == output_type:
        raise ValueError(f"image_type and output_type are both {image_type}: DALI has no such conversion")
    channels = 1 if image_type == "GRAY" else 3
    if image.ndim < 3 or image.shape[-1] != channels:
        raise ValueError(f"a {image_type} image has {channels} channel(s) (the last axis); got shape {image.shape}")
    if image_type == "GRAY":
        if output_type != "YCbCr":
            return np.repeat(image, 3, axis=-1)
        out = np.full(image.shape[:-1] + (3,), 128, np.uint8)
        out[..., 0] = _to_u8(image[..., 0].astype(_F) * _F(_LUMA) + _F(16))
        return out
    if image_type == "YCbCr":
        if output_type == "GRAY":
            y = image[..., 0].astype(_F)
            y -= _F(16)
            y *= _Y_SCALE
            return _to_u8(y)[..., None]
        return _rgb_from_ycbcr(image, (0, 1, 2) if output_type == "RGB" else (2, 1, 0))
    if output_type == "GRAY":
        return _gray(image, image_type)
    if output_type in ("RGB", "BGR"):
        return np.ascontiguousarray(image[..., ::-1])
    return _ycbcr_from_rgb(*_channels(image, (0, 1, 2) if image_type == "RGB" else (2, 1, 0)))


def _gray(image: np.ndarray, image_type: str) -> np.ndarray:
    import cv2  # the image extra; DALI converts with OpenCV's fixed-point cvtColor

    code = cv2.COLOR_RGB2GRAY if image_type == "RGB" else cv2.COLOR_BGR2GRAY
    flat = np.ascontiguousarray(image).reshape(-1, image.shape[-2], 3)
    return cv2.cvtColor(flat, code).reshape(image.shape[:-1] + (1,))


# ---- the colour twist (fn.hsv, fn.hue, fn.saturation, fn.color_twist) -------------------------------------
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]], _F)


def _fma32(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """``a * b + c`` rounded once to float32 (round half to even), as C's ``fmaf``."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    near = _F(float(exact))
    candidates = (np.nextafter(near, _F(-np.inf)), near, np.nextafter(near, _F(np.inf)))
    return min(candidates, key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.uint32)) & 1))


def _gauss_inverse(matrix: np.ndarray) -> np.ndarray:
    """DALI's ``inverse`` of a 3x3 float32 matrix: Gauss-Jordan elimination with partial pivoting."""
    a = matrix.astype(_F).copy()
    out = np.eye(3, dtype=_F)
    for v in range(3):
        pivot = v + int(np.argmax(np.abs(a[v:, v])))  # the first of equal maxima, as DALI's strict '>'
        if pivot != v:
            a[[v, pivot]] = a[[pivot, v]]
            out[[v, pivot]] = out[[pivot, v]]
        x = _F(1) / a[v, v]
        a[v, v] = 1
        a[v, v + 1 :] *= x
        out[v] *= x
        for i in range(3):
            if i != v:
                c = -a[i, v]
                a[i, v] = 0
                for j in range(v + 1, 3):
                    a[i, j] = _fma32(c, a[v, j], a[i, j])
                for j in range(3):
                    out[i, j] = _fma32(c, out[v, j], out[i, j])
    return out


_YIQ_TO_RGB = _gauss_inverse(_RGB_TO_YIQ)


def _libm():
    name = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:  # pragma: no cover - every supported platform has a C math library
        return None
    if lib is None:  # pragma: no cover
        return None
    for fn in (lib.cosf, lib.sinf):
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


_LIBM = _libm()


def cos_sin(radians: np.float32) -> tuple[np.float32, np.float32]:
    """``cosf`` and ``sinf`` of a float32 angle from the C library (what DALI's kernels call)."""
    if _LIBM is not None:
        return _F(_LIBM.cosf(float(radians))), _F(_LIBM.sinf(float(radians)))
    return _F(math.cos(float(radians))), _F(math.sin(float(radians)))  # pragma: no cover


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A 3x3 float32 product, each element ``a0*b0 + a1*b1 + a2*b2`` rounded after every operation."""
    out = np.empty((3, 3), _F)
    for i in range(3):
        for j in range(3):
            out[i, j] = (a[i, 0] * b[0, j] + a[i, 1] * b[1, j]) + a[i, 2] * b[2, j]
    return out


def twist_matrix(
    brightness: float = 1.0, contrast: float = 1.0, hue: float = 0.0, saturation: float = 1.0, value: float = 1.0
) -> np.ndarray:
    """The 3x3 ``float32`` matrix DALI's colour twist applies to each RGB pixel (hue in degrees)."""
    radians = _F(float(_F(hue)) * math.pi / 180)
    cos, sin = cos_sin(radians)
    rotation = np.eye(3, dtype=_F)
    rotation[1, 1] = rotation[2, 2] = cos
    rotation[1, 2], rotation[2, 1] = sin, -sin
    sat = np.diag(np.array([1, saturation, saturation], _F))
    m = np.eye(3, dtype=_F) * _F(brightness) * _F(contrast)  # diagonal products are exact
    for factor in (_YIQ_TO_RGB, rotation, sat, np.eye(3, dtype=_F) * _F(value), _RGB_TO_YIQ):
        m = _matmul(m, factor)
    return m


def hsv_matrix(hue: float = 0.0, saturation: float = 1.0, value: float = 1.0) -> np.ndarray:
    """The matrix of ``fn.hsv`` (hue in degrees): :func:`twist_matrix` without brightness and contrast."""
    return twist_matrix(1.0, 1.0, hue, saturation, value)


def color_twist_matrix(
    brightness: float = 1.0,
    contrast: float = 1.0,
    hue: float = 0.0,
    saturation: float = 1.0,
    value: float = 1.0,
    *,
    half_range: float = 128.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``fn.color_twist``'s matrix and offset ``(half_range - half_range * contrast) * brightness`` (``half_range``
    is 128 for integer inputs, 0.5 for floating-point ones)."""
    half = _F(half_range)
    offset = (half - half * _F(contrast)) * _F(brightness)
    return twist_matrix(brightness, contrast, hue, saturation, value), np.full(3, offset, _F)


def apply_linear(
    image: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray | None = None,
    dtype: np.dtype | type | None = None,
) -> np.ndarray:
    """``out = matrix @ pixel + offset`` per pixel of a channel-last 3-channel image, in ``float32`` with DALI's
    order (``((m0*p0 + m1*p1) + m2*p2) + offset``), converted to ``dtype`` (default: the input's) with
    ``saturate_cast``."""
    out_dtype = np.dtype(dtype) if dtype is not None else image.dtype
    m = np.asarray(matrix, _F)
    off = np.zeros(3, _F) if offset is None else np.asarray(offset, _F)
    planes = _channels(image, (0, 1, 2))
    out = np.empty(image.shape, out_dtype)
    acc = np.empty_like(planes[0])
    for r in range(3):
        np.multiply(planes[0], m[r, 0], out=acc)
        acc += planes[1] * m[r, 1]
        acc += planes[2] * m[r, 2]
        acc += off[r]
        out[..., r] = saturate_cast(acc, out_dtype)
    return out


# ---- fn.brightness_contrast --------------------------------------------------------------------------------
def full_range(dtype: np.dtype) -> np.float32:
    """DALI's ``FullRange``: the largest value of an integer type (as float32), 1 for floating point."""
    return _F(np.iinfo(dtype).max) if dtype.kind in "iu" else _F(1)


def half_range(dtype: np.dtype) -> np.float32:
    """DALI's ``HalfRange``: ``2**(bits - 1)`` of an unsigned type, ``2**(bits - 2)`` of a signed one, 0.5 for
    floating point (the default contrast centre)."""
    if dtype.kind in "iu":
        return _F(1 << (8 * dtype.itemsize - (dtype.kind == "i") - 1))
    return _F(0.5)


def brightness_contrast(
    image: np.ndarray,
    brightness: float,
    brightness_shift: float,
    contrast: float,
    contrast_center: float | None,
    dtype: np.dtype,
) -> np.ndarray:
    """``brightness_shift * range(dtype) + brightness * (center + contrast * (in - center))`` as DALI
    evaluates it (a multiplier and an addend in float32), saturated to ``dtype``.

    ``contrast_center`` ``None`` means half the input type's positive range (0.5 for floating point).
    """
    dtype = np.dtype(dtype)
    center = half_range(image.dtype) if contrast_center is None else _F(contrast_center)
    b, c = _F(brightness), _F(contrast)
    addend = _F(brightness_shift) * full_range(dtype) + b * (center - c * center)
    multiplier = b * c
    if image.dtype == np.uint8:  # a table of the 256 results, computed with the same float32 operations
        table = saturate_cast(np.arange(256, dtype=_F) * multiplier + addend, dtype)
        if dtype in (np.uint8, np.int16, np.int32, np.float32):  # OpenCV's LUT keeps any of these types
            import cv2

            return cv2.LUT(np.ascontiguousarray(image).reshape(-1, image.shape[-1]), table).reshape(image.shape)
        return np.take(table, image)
    values = image.astype(_F) * multiplier
    values += addend
    return saturate_cast(values, dtype)
