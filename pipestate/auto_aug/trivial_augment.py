"""TrivialAugment Wide (https://arxiv.org/abs/2103.10158), as DALI's ``nvidia.dali.auto_aug.trivial_augment``:
each sample gets one augmentation drawn uniformly from the suite, at a uniformly drawn magnitude bin. The
pipeline needs ``enable_conditionals=True``."""

from __future__ import annotations

from typing import Any

from pipestate import fn, types
from pipestate.auto_aug import augmentations as a
from pipestate.auto_aug.core import _Augmentation, signed_bin
from pipestate.auto_aug.core._args import forbid_unused_kwargs as _forbid_unused_kwargs
from pipestate.auto_aug.core._utils import get_translations as _get_translations
from pipestate.auto_aug.core._utils import pretty_select as _pretty_select
from pipestate.graph import DataNode as _DataNode


def trivial_augment_wide(
    data: _DataNode,
    num_magnitude_bins: int = 31,
    shape: _DataNode | tuple[int, int] | None = None,
    fill_value: int | None = 128,
    interp_type: Any = None,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
    seed: int | None = None,
    excluded: list[str] | None = None,
) -> _DataNode:
    """Apply TrivialAugment Wide to a batch of ``uint8`` images (``HWC``) or videos (``FHWC``).

    Args:
        data: The batch.
        num_magnitude_bins: Into how many bins the magnitude ranges are divided.
        shape: The images' (height, width): translations are then relative to it (up to ``max_translate_rel``, 1
            by default); without it, up to ``max_translate_abs`` pixels (32 by default).
        fill_value: Padding of the warped images (``None``: repeat the border).
        interp_type: Interpolation of the warps.
        max_translate_abs: Largest shift in pixels (one bound, or (height, width)).
        max_translate_rel: Largest shift as a fraction of the shape (with ``shape``).
        seed: Seed of the drawn augmentations, bins and signs.
        excluded: Names of augmentations to leave out of the suite.

    Returns:
        The augmented batch.

    Raises:
        ValueError: a name in ``excluded`` that is not in the suite, or a bad ``num_magnitude_bins``.
    """
    aug_kwargs: dict[str, Any] = {"fill_value": fill_value, "interp_type": interp_type}
    use_shape = shape is not None
    if use_shape:
        aug_kwargs["shape"] = shape
    augmentations = get_trivial_augment_wide_suite(use_shape, max_translate_abs, max_translate_rel)
    names = {aug.name for aug in augmentations}
    for name in excluded or []:
        if name not in names:
            raise ValueError(
                f"The `{name}` was specified in `excluded`, but the TrivialAugmentWide suite does not contain "
                f"augmentation with this name. The augmentations in the suite are: {', '.join(names)}."
            )
    selected = [aug for aug in augmentations if aug.name not in (excluded or [])]
    return apply_trivial_augment(selected, data, num_magnitude_bins=num_magnitude_bins, seed=seed, **aug_kwargs)


def apply_trivial_augment(
    augmentations: list[_Augmentation],
    data: _DataNode,
    num_magnitude_bins: int = 31,
    seed: int | None = None,
    **kwargs: Any,
) -> _DataNode:
    """Apply one augmentation drawn from ``augmentations`` to each sample, at a drawn magnitude bin.

    Args:
        augmentations: The suite.
        data: The batch.
        num_magnitude_bins: Into how many bins the magnitude ranges are divided.
        seed: Seed of the drawn augmentations, bins and signs.
        kwargs: Extra arguments passed to the augmentations whose functions name them.

    Returns:
        The augmented batch.

    Raises:
        ValueError: a ``num_magnitude_bins`` below 1 or an empty suite.
        UnusedArgException: a keyword argument no augmentation takes.
    """
    if isinstance(num_magnitude_bins, bool) or not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 1:
        raise ValueError(f"The `num_magnitude_bins` must be a positive integer, got {num_magnitude_bins}.")
    if len(augmentations) == 0:
        raise ValueError("The `augmentations` list cannot be empty. Got empty list in `apply_trivial_augment` call.")
    magnitude_bin = fn.random.uniform(values=list(range(num_magnitude_bins)), dtype=types.INT32, seed=seed)
    if any(aug.randomly_negate for aug in augmentations):
        magnitude_bin = signed_bin(magnitude_bin, seed=seed)
    _forbid_unused_kwargs(augmentations, kwargs, "apply_trivial_augment")
    op_kwargs = dict(data=data, magnitude_bin=magnitude_bin, num_magnitude_bins=num_magnitude_bins, **kwargs)
    op_idx = fn.random.uniform(values=list(range(len(augmentations))), seed=seed, dtype=types.INT32)
    return _pretty_select(
        augmentations,
        op_idx,
        op_kwargs,
        auto_aug_name="apply_trivial_augment",
        ref_suite_name="get_trivial_augment_wide_suite",
    )


def get_trivial_augment_wide_suite(
    use_shape: bool = False,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
) -> list[_Augmentation]:
    """TrivialAugment Wide's suite."""
    return _get_translations(use_shape, 32, 1.0, max_translate_abs, max_translate_rel) + [
        a.shear_x.augmentation((0, 0.99), True),
        a.shear_y.augmentation((0, 0.99), True),
        a.rotate.augmentation((0, 135), True),
        a.brightness.augmentation((0.01, 0.99), True, a.shift_enhance_range),
        a.contrast.augmentation((0.01, 0.99), True, a.shift_enhance_range),
        a.color.augmentation((0.01, 0.99), True, a.shift_enhance_range),
        a.sharpness.augmentation((0.01, 0.99), True, a.sharpness_kernel),
        a.posterize.augmentation((8, 2), False, a.poster_mask_uint8),
        a.solarize.augmentation((256, 0)),  # a lower threshold is a stronger solarization
        a.equalize,
        a.auto_contrast,
        a.identity,
    ]
