"""The standard suite of AutoAugment (ImageNet), RandAugment and TrivialAugmentWide, built from operators as
DALI's ``nvidia.dali.auto_aug.augmentations``.

Each augmentation is declared with ``@augmentation`` and an example setup (magnitude range, random negation,
magnitude-to-parameter mapping); adjust one with ``.augmentation(...)``, e.g.
``shear_x.augmentation(mag_range=(0, 0.5))``. Called, an augmentation takes the batch, ``magnitude_bin`` and
``num_magnitude_bins`` (and the extra arguments its function names: ``fill_value``, ``interp_type``,
``shape``...).

The geometric augmentations (``shear_x``/``shear_y``, ``translate_x``/``translate_y``, ``rotate``) use
``fn.transforms.shear``/``fn.transforms.translation`` with ``fn.warp_affine`` and ``fn.rotate``; ``contrast`` and
``auto_contrast`` use ``fn.reductions``: where pipestate lacks those operators, calling these augmentations
raises an ``AttributeError`` naming the missing operator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipestate import fn, types
from pipestate.auto_aug.core import augmentation
from pipestate.graph import DataNode


def warp_x_param(magnitude: Any) -> list:
    """``[magnitude, 0]``: a shear or translation along x."""
    return [magnitude, 0]


def warp_y_param(magnitude: Any) -> list:
    """``[0, magnitude]``: a shear or translation along y."""
    return [0, magnitude]


def _warp(data: DataNode, matrix: DataNode, fill_value: Any, interp_type: Any) -> DataNode:
    return fn.warp_affine(data, matrix=matrix, fill_value=fill_value, interp_type=interp_type, inverse_map=False)


@augmentation(mag_range=(0, 0.3), randomly_negate=True, mag_to_param=warp_x_param)
def shear_x(data: DataNode, shear: DataNode, fill_value: Any = 128, interp_type: Any = None) -> DataNode:
    """Shear along x by the magnitude."""
    return _warp(data, fn.transforms.shear(shear=shear), fill_value, interp_type)


@augmentation(mag_range=(0, 0.3), randomly_negate=True, mag_to_param=warp_y_param)
def shear_y(data: DataNode, shear: DataNode, fill_value: Any = 128, interp_type: Any = None) -> DataNode:
    """Shear along y by the magnitude."""
    return _warp(data, fn.transforms.shear(shear=shear), fill_value, interp_type)


@augmentation(mag_range=(0.0, 1.0), randomly_negate=True, mag_to_param=warp_x_param)
def translate_x(
    data: DataNode, rel_offset: DataNode, shape: Any, fill_value: Any = 128, interp_type: Any = None
) -> DataNode:
    """Translate along x by the magnitude times the width (``shape``: the samples' HWC shape)."""
    return _warp(data, fn.transforms.translation(offset=rel_offset * shape[1]), fill_value, interp_type)


@augmentation(mag_range=(0, 250), randomly_negate=True, mag_to_param=warp_x_param, name="translate_x")
def translate_x_no_shape(data: DataNode, offset: DataNode, fill_value: Any = 128, interp_type: Any = None) -> DataNode:
    """Translate along x by the magnitude, in pixels."""
    return _warp(data, fn.transforms.translation(offset=offset), fill_value, interp_type)


@augmentation(mag_range=(0.0, 1.0), randomly_negate=True, mag_to_param=warp_y_param)
def translate_y(
    data: DataNode, rel_offset: DataNode, shape: Any, fill_value: Any = 128, interp_type: Any = None
) -> DataNode:
    """Translate along y by the magnitude times the height (``shape``: the samples' HWC shape)."""
    return _warp(data, fn.transforms.translation(offset=rel_offset * shape[0]), fill_value, interp_type)


@augmentation(mag_range=(0, 250), randomly_negate=True, mag_to_param=warp_y_param, name="translate_y")
def translate_y_no_shape(data: DataNode, offset: DataNode, fill_value: Any = 128, interp_type: Any = None) -> DataNode:
    """Translate along y by the magnitude, in pixels."""
    return _warp(data, fn.transforms.translation(offset=offset), fill_value, interp_type)


@augmentation(mag_range=(0, 30), randomly_negate=True)
def rotate(
    data: DataNode, angle: DataNode, fill_value: Any = 128, interp_type: Any = None, rotate_keep_size: bool = True
) -> DataNode:
    """Rotate by the magnitude, in degrees."""
    return fn.rotate(data, angle=angle, fill_value=fill_value, interp_type=interp_type, keep_size=rotate_keep_size)


def shift_enhance_range(magnitude: Any) -> Any:
    """``1 + magnitude``: the enhance operations take factors around 1 (the identity); the magnitude, from
    ``[0, 1]`` and randomly negated, says how far from it."""
    return 1 + magnitude


@augmentation(mag_range=(0, 0.9), randomly_negate=True, mag_to_param=shift_enhance_range)
def brightness(data: DataNode, parameter: DataNode) -> DataNode:
    """Multiply the brightness by the parameter."""
    return fn.brightness(data, brightness=parameter)


@augmentation(mag_range=(0, 0.9), randomly_negate=True, mag_to_param=shift_enhance_range)
def contrast(data: DataNode, parameter: DataNode) -> DataNode:
    """Scale the contrast around the channel-weighted mean (PIL's ImageEnhance.Contrast centre)."""
    mean = fn.reductions.mean(data, axis_names="HW", keep_dims=True)
    rgb_weights = types.Constant(np.array([0.299, 0.587, 0.114], dtype=np.float32))
    center = fn.reductions.sum(mean * rgb_weights, axis_names="C", keep_dims=True)
    return fn.cast_like(center + (data - center) * parameter, data)


@augmentation(mag_range=(0, 0.9), randomly_negate=True, mag_to_param=shift_enhance_range)
def color(data: DataNode, parameter: DataNode) -> DataNode:
    """Scale the saturation by the parameter."""
    return fn.saturation(data, saturation=parameter)


def sharpness_kernel(magnitude: Any) -> np.ndarray:
    """The 3x3 filter of PIL's ImageEnhance.Sharpness for a magnitude in ``[-1, 1]``."""
    blur = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13
    ident = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    return -magnitude * blur + (1 + magnitude) * ident


def sharpness_kernel_shifted(magnitude: Any) -> np.ndarray:
    """:func:`sharpness_kernel` for a magnitude in ``[0, 2]``."""
    return sharpness_kernel(magnitude - 1)


@augmentation(mag_range=(0, 0.9), randomly_negate=True, mag_to_param=sharpness_kernel, param_device="auto")
def sharpness(data: DataNode, kernel: DataNode) -> DataNode:
    """Sharpen (or blur) with PIL's sharpness filter (the 1-pixel border differs: PIL copies the input there)."""
    return fn.experimental.filter(data, kernel)


def poster_mask_uint8(magnitude: Any) -> np.ndarray:
    """The mask keeping the ``round(magnitude)`` highest bits (1 to 8; 0 is remapped to 1, as RandAugment's
    reference implementation, to avoid blank images)."""
    bits = int(np.clip(np.round(magnitude), 1, 8))
    removal_mask = np.uint8(2) ** np.uint8(8 - bits) - np.uint8(1)
    return np.array(np.uint8(255) ^ removal_mask, dtype=np.uint8)


@augmentation(mag_range=(0, 4), mag_to_param=poster_mask_uint8, param_device="auto")
def posterize(data: DataNode, mask: DataNode) -> DataNode:
    """Keep the highest bits of each value."""
    return data & mask


@augmentation(mag_range=(256, 0), param_device="auto")
def solarize(data: DataNode, threshold: DataNode) -> DataNode:
    """Invert the values at or above the threshold."""
    inverted = types.Constant(255, dtype=types.UINT8) - data
    unchanged = data < threshold
    return unchanged * data + (unchanged ^ True) * inverted


def solarize_add_shift(shift: Any) -> np.uint8:
    """The shift as uint8 (it must be below 128).

    Raises:
        ValueError: a shift of 128 or more.
    """
    if shift >= 128:
        raise ValueError("The solarize_add augmentation accepts shifts from 0 to 128")
    return np.uint8(shift)


@augmentation(mag_range=(0, 110), param_device="auto", mag_to_param=solarize_add_shift)
def solarize_add(data: DataNode, shift: DataNode) -> DataNode:
    """Add the shift to the values below 128."""
    shifted = data < types.Constant(128, dtype=types.UINT8)
    return shifted * (data + shift) + (shifted ^ True) * data


@augmentation
def invert(data: DataNode, _: Any) -> DataNode:
    """``255 - value``."""
    return types.Constant(255, dtype=types.UINT8) - data


@augmentation
def equalize(data: DataNode, _: Any) -> DataNode:
    """Histogram equalization (OpenCV's formula; PIL maps the cumulative histogram slightly differently)."""
    return fn.experimental.equalize(data)


@augmentation
def auto_contrast(data: DataNode, _: Any) -> DataNode:
    """Stretch each channel to the full ``[0, 255]`` range (unchanged where a channel is constant)."""
    low = fn.reductions.min(data, axis_names="HW", keep_dims=True)
    high = fn.reductions.max(data, axis_names="HW", keep_dims=True)
    span = high - low
    stretch = span > 0
    divisor = span * stretch + types.Constant(255, dtype=types.UINT8) * (stretch ^ True)
    return fn.cast_like((data - low * stretch) * (255 / divisor), data)


@augmentation
def identity(data: DataNode, _: Any) -> DataNode:
    """The input unchanged."""
    return data
