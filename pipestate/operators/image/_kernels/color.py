"""DALI's colour arithmetic: colour-space conversions and the linear (YIQ) transform behind ``fn.hsv`` and
``fn.color_twist``. All arithmetic is ``float32`` as in DALI's kernels; integer outputs round to nearest."""

from __future__ import annotations

import math

import numpy as np

_F = np.float32

# fn.color_space_conversion (DALI kernels/imgproc/color_manipulation/color_space_conversion_impl.h):
# ITU-R BT.601 studio range for YCbCr, the JPEG luma weights for GRAY.
BT601_TO_YCBCR = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], _F)
YCBCR_OFFSET = np.array([16, 128, 128], _F)
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], _F)
# What the image decoder's YCbCr output matches (DALI's decoder converts with the full-precision BT.601 matrix).
DECODER_TO_YCBCR = (np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
                    / 255).astype(_F)
# fn.hsv / fn.color_twist (DALI operators/image/color/color_twist.h).
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]], _F)
YIQ_TO_RGB = np.array([[1, 0.956, 0.621], [1, -0.272, -0.647], [1, -1.107, 1.705]], _F)


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
        out[..., c] = _round_u8(_dot3(image, DECODER_TO_YCBCR[c]) + YCBCR_OFFSET[c], half_up=True)
    return out


def convert_color_space(image: np.ndarray, image_type: str, output_type: str) -> np.ndarray:
    """``fn.color_space_conversion`` for ``uint8`` HWC images.

    Args:
        image: ``(H, W, C)`` ``uint8``.
        image_type: ``"RGB"``, ``"BGR"``, ``"GRAY"`` or ``"YCbCr"`` (the input's space).
        output_type: The same choices (the output's space).

    Returns:
        The converted ``uint8`` image (1 channel for GRAY, 3 otherwise).

    Raises:
        ValueError: an unknown colour space or a channel count that does not fit ``image_type``.
    """
    spaces = ("RGB", "BGR", "GRAY", "YCbCr")
    for name, value in (("image_type", image_type), ("output_type", output_type)):
        if value not in spaces:
            raise ValueError(f"{name}={value!r} is not supported; use one of {list(spaces)}")
    channels = 1 if image_type == "GRAY" else 3
    if image.ndim != 3 or image.shape[2] != channels:
        raise ValueError(f"a {image_type} image has {channels} channel(s); got shape {image.shape}")
    if image_type == output_type:
        return image.copy()
    if image_type == "GRAY":
        gray = image[..., 0].astype(_F)
        if output_type == "YCbCr":
            out = np.empty(image.shape[:2] + (3,), np.uint8)
            out[..., 0] = _round_u8(gray * _F(0.257 + 0.504 + 0.098) + _F(0.0625))
            out[..., 1:] = 128
            return out
        return np.repeat(image, 3, axis=2)
    if image_type == "YCbCr":
        y = image[..., 0].astype(_F) - _F(16)
        cb = image[..., 1].astype(_F) - _F(128)
        cr = image[..., 2].astype(_F) - _F(128)
        if output_type == "GRAY":
            return _round_u8(_F(1 / (0.257 + 0.504 + 0.098)) * y)[..., None]
        ty = _F(1.164) * y
        rgb = np.stack([_round_u8(ty + _F(1.596) * cr), _round_u8(ty - _F(0.813) * cr - _F(0.392) * cb),
                        _round_u8(ty + _F(2.017) * cb)], axis=-1)
        return rgb if output_type == "RGB" else rgb[..., ::-1].copy()
    rgb = image if image_type == "RGB" else image[..., ::-1]
    if output_type == "GRAY":
        return _round_u8(_dot3(rgb, GRAY_WEIGHTS))[..., None]
    if output_type in ("RGB", "BGR"):
        return rgb[..., ::-1].copy()
    out = np.empty(image.shape[:2] + (3,), np.uint8)
    for c in range(3):
        values = _round_u8(_dot3(rgb, BT601_TO_YCBCR[c]) + YCBCR_OFFSET[c])
        if c:  # DALI returns exactly 128 chroma for grey pixels
            grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 0] == rgb[..., 2])
            values = np.where(grey, np.uint8(128), values)
        out[..., c] = values
    return out


def hsv_matrix(hue: float = 0.0, saturation: float = 1.0, value: float = 1.0) -> np.ndarray:
    """The 3x3 matrix ``fn.hsv`` applies to RGB pixels: ``YIQ->RGB . hue rotation . saturation . value . RGB->YIQ``
    (hue in degrees)."""
    h = _F(hue) * math.pi / 180
    rot = np.eye(3, dtype=_F)
    rot[1, 1] = rot[2, 2] = _F(math.cos(h))
    rot[1, 2] = _F(math.sin(h))
    rot[2, 1] = -_F(math.sin(h))
    sat = np.diag(np.array([1, saturation, saturation], _F))
    return (((YIQ_TO_RGB @ rot).astype(_F) @ sat).astype(_F) @ (np.eye(3, dtype=_F) * _F(value))).astype(_F) \
        @ RGB_TO_YIQ


def color_twist_matrix(brightness: float = 1.0, contrast: float = 1.0, hue: float = 0.0, saturation: float = 1.0,
                       value: float = 1.0, *, half_range: float = 128.0) -> tuple[np.ndarray, np.ndarray]:
    """``fn.color_twist``'s matrix and offset: ``brightness * contrast * hsv_matrix(...)`` and
    ``(half_range - half_range * contrast) * brightness`` (``half_range`` is 128 for integer inputs, 0.5 for
    floats)."""
    m = (_F(brightness) * _F(contrast) * hsv_matrix(hue, saturation, value)).astype(_F)
    offset = _F((_F(half_range) - _F(half_range) * _F(contrast)) * _F(brightness))
    return m, np.full(3, offset, _F)


def apply_linear(image: np.ndarray, matrix: np.ndarray, offset: np.ndarray | None = None,
                 dtype: np.dtype | type | None = None) -> np.ndarray:
    """``out = matrix @ pixel + offset`` per pixel of an HWC image (DALI's ``LinearTransformationCpu``), converted
    to ``dtype`` (default: the input's) with rounding and saturation for integer types."""
    out_dtype = np.dtype(dtype) if dtype is not None else image.dtype
    m = np.asarray(matrix, _F)
    off = np.zeros(m.shape[0], _F) if offset is None else np.asarray(offset, _F)
    px = image.astype(_F, copy=False)
    out = np.empty(image.shape[:-1] + (m.shape[0],), _F)
    for r in range(m.shape[0]):
        acc = np.zeros(image.shape[:-1], _F)
        for c in range(m.shape[1]):
            acc += m[r, c] * px[..., c]
        out[..., r] = acc + off[r]
    if out_dtype.kind == "f":
        return out.astype(out_dtype)
    info = np.iinfo(out_dtype)
    return np.clip(np.rint(out), info.min, info.max).astype(out_dtype)
