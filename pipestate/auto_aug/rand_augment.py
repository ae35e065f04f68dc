"""RandAugment (https://arxiv.org/abs/1909.13719), as DALI's ``nvidia.dali.auto_aug.rand_augment``: each sample
gets ``n`` augmentations drawn uniformly from the suite, each at magnitude bin ``m``. The pipeline needs
``enable_conditionals=True``."""

from __future__ import annotations

import warnings
from typing import Any

from pipestate import fn, types
from pipestate.auto_aug import augmentations as a
from pipestate.auto_aug.core import _Augmentation, signed_bin
from pipestate.auto_aug.core._args import forbid_unused_kwargs as _forbid_unused_kwargs
from pipestate.auto_aug.core._utils import get_translations as _get_translations
from pipestate.auto_aug.core._utils import pretty_select as _pretty_select
from pipestate.graph import DataNode as _DataNode


def rand_augment(
    data: _DataNode,
    n: int,
    m: int,
    num_magnitude_bins: int = 31,
    shape: _DataNode | tuple[int, int] | None = None,
    fill_value: int | None = 128,
    interp_type: Any = None,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
    seed: int | None = None,
    monotonic_mag: bool = True,
    excluded: list[str] | None = None,
) -> _DataNode:
    """Apply RandAugment to a batch of ``uint8`` images (``HWC``) or videos (``FHWC``).

    Args:
        data: The batch.
        n: How many augmentations each sample gets.
        m: Their magnitude bin, in ``[0, num_magnitude_bins - 1]``.
        num_magnitude_bins: Into how many bins the magnitude ranges are divided.
        shape: The images' (height, width): translations are then relative to it (up to ``max_translate_rel``,
            100/224 by default); without it, up to ``max_translate_abs`` pixels (100 by default).
        fill_value: Padding of the warped images (``None``: repeat the border).
        interp_type: Interpolation of the warps.
        max_translate_abs: Largest shift in pixels (one bound, or (height, width)).
        max_translate_rel: Largest shift as a fraction of the shape (with ``shape``).
        seed: Seed of the drawn augmentations and signs.
        monotonic_mag: ``True``: stronger augmentations with higher bins; ``False``: AutoAugment's ranges for the
            colour augmentations (:func:`get_rand_augment_non_monotonic_suite`).
        excluded: Names of augmentations to leave out of the suite.

    Returns:
        The augmented batch.

    Raises:
        ValueError: a name in ``excluded`` that is not in the suite, or a bad ``n``/``m``/``num_magnitude_bins``.
    """
    aug_kwargs: dict[str, Any] = {"fill_value": fill_value, "interp_type": interp_type}
    use_shape = shape is not None
    if use_shape:
        aug_kwargs["shape"] = shape
    suite = get_rand_augment_suite if monotonic_mag else get_rand_augment_non_monotonic_suite
    augmentations = suite(use_shape, max_translate_abs, max_translate_rel)
    names = {aug.name for aug in augmentations}
    for name in excluded or []:
        if name not in names:
            raise ValueError(
                f"The `{name}` was specified in `excluded`, but the RandAugment suite does not contain augmentation "
                f"with this name. The augmentations in the suite are: {', '.join(names)}."
            )
    selected = [aug for aug in augmentations if aug.name not in (excluded or [])]
    return apply_rand_augment(selected, data, n, m, num_magnitude_bins=num_magnitude_bins, seed=seed, **aug_kwargs)


def apply_rand_augment(
    augmentations: list[_Augmentation],
    data: _DataNode,
    n: int,
    m: int,
    num_magnitude_bins: int = 31,
    seed: int | None = None,
    **kwargs: Any,
) -> _DataNode:
    """Apply ``n`` augmentations drawn from ``augmentations`` to each sample, each at magnitude bin ``m``.

    Args:
        augmentations: The suite.
        data: The batch.
        n: How many augmentations each sample gets (0: none, with a warning).
        m: The magnitude bin, in ``[0, num_magnitude_bins - 1]``.
        num_magnitude_bins: Into how many bins the magnitude ranges are divided.
        seed: Seed of the drawn augmentations and signs.
        kwargs: Extra arguments passed to the augmentations whose functions name them.

    Returns:
        The augmented batch.

    Raises:
        ValueError: a negative ``n``, a ``num_magnitude_bins`` below 1, an ``m`` out of range, or an empty suite.
        UnusedArgException: a keyword argument no augmentation takes.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"The number of operations to apply `n` must be a non-negative integer, got {n}.")
    if isinstance(num_magnitude_bins, bool) or not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 1:
        raise ValueError(f"The `num_magnitude_bins` must be a positive integer, got {num_magnitude_bins}.")
    if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m < num_magnitude_bins:
        raise ValueError(
            f"The magnitude bin `m` must be an integer from `[0, {num_magnitude_bins - 1}]` range. Got {m}."
        )
    if n == 0:
        warnings.warn(
            "The `apply_rand_augment` was called with `n=0`, no augmentation will be applied.", Warning, stacklevel=2
        )
        return data
    if len(augmentations) == 0:
        raise ValueError(
            "The `augmentations` list cannot be empty, unless n=0. Got empty list in `apply_rand_augment` call."
        )
    shape = () if n == 1 else (n,)
    op_idx = fn.random.uniform(values=list(range(len(augmentations))), seed=seed, shape=shape, dtype=types.INT32)
    signed = any(aug.randomly_negate for aug in augmentations)
    mag_bin = signed_bin(m, seed=seed, shape=shape) if signed else m
    _forbid_unused_kwargs(augmentations, kwargs, "apply_rand_augment")
    for level in range(n):
        level_bin = mag_bin if not signed or n == 1 else mag_bin[level]
        op_kwargs = dict(data=data, magnitude_bin=level_bin, num_magnitude_bins=num_magnitude_bins, **kwargs)
        data = _pretty_select(
            augmentations,
            op_idx if n == 1 else op_idx[level],
            op_kwargs,
            auto_aug_name="apply_rand_augment",
            ref_suite_name="get_rand_augment_suite",
        )
    return data


def get_rand_augment_suite(
    use_shape: bool = False,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
) -> list[_Augmentation]:
    """RandAugment's suite: stronger augmentations with higher magnitude bins."""
    return _get_translations(use_shape, 100, 100 / 224, max_translate_abs, max_translate_rel) + [
        a.shear_x.augmentation((0, 0.3), True),
        a.shear_y.augmentation((0, 0.3), True),
        a.rotate.augmentation((0, 30), True),
        a.brightness.augmentation((0, 0.9), True, a.shift_enhance_range),
        a.contrast.augmentation((0, 0.9), True, a.shift_enhance_range),
        a.color.augmentation((0, 0.9), True, a.shift_enhance_range),
        a.sharpness.augmentation((0, 0.9), True, a.sharpness_kernel),
        a.posterize.augmentation((8, 4), False, a.poster_mask_uint8),
        a.solarize.augmentation((256, 0)),  # a lower threshold is a stronger solarization
        a.equalize,
        a.auto_contrast,
        a.identity,
    ]


def get_rand_augment_non_monotonic_suite(
    use_shape: bool = False,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
) -> list[_Augmentation]:
    """RandAugment's suite with AutoAugment's ranges for brightness, contrast, color, sharpness, posterize and
    solarize (their strength does not grow with the bin)."""
    return _get_translations(use_shape, 100, 100 / 224, max_translate_abs, max_translate_rel) + [
        a.shear_x.augmentation((0, 0.3), True),
        a.shear_y.augmentation((0, 0.3), True),
        a.rotate.augmentation((0, 30), True),
        a.brightness.augmentation((0.1, 1.9), False, None),
        a.contrast.augmentation((0.1, 1.9), False, None),
        a.color.augmentation((0.1, 1.9), False, None),
        a.sharpness.augmentation((0.1, 1.9), False, a.sharpness_kernel_shifted),
        a.posterize.augmentation((0, 4), False, a.poster_mask_uint8),
        a.solarize.augmentation((0, 256), False, None),
        a.equalize,
        a.auto_contrast,
        a.identity,
    ]
