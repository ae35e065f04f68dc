"""AutoAugment (https://arxiv.org/abs/1805.09501) with the paper's policies, as DALI's
``nvidia.dali.auto_aug.auto_augment``.

Each sample draws a sub-policy uniformly, then runs its steps in order, each with its probability, at its
magnitude bin (signs drawn once per sample). The pipeline needs ``enable_conditionals=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipestate import fn, types
from pipestate.auto_aug import augmentations as a
from pipestate.auto_aug.core import Policy, _Augmentation, signed_bin
from pipestate.auto_aug.core._args import forbid_unused_kwargs as _forbid_unused_kwargs
from pipestate.auto_aug.core._utils import get_translations as _get_translations
from pipestate.auto_aug.core._utils import pretty_select as _pretty_select
from pipestate.graph import DataNode as _DataNode


def auto_augment(
    data: _DataNode,
    policy_name: str = "image_net",
    shape: _DataNode | tuple[int, int] | None = None,
    fill_value: int | None = 128,
    interp_type: Any = None,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
    seed: int | None = None,
) -> _DataNode:
    """Apply one of AutoAugment's policies to a batch of ``uint8`` images (``HWC``) or videos (``FHWC``).

    Args:
        data: The batch.
        policy_name: ``"image_net"``, ``"reduced_image_net"``, ``"svhn"`` or ``"reduced_cifar10"``.
        shape: The images' (height, width): translations are then relative to it (up to ``max_translate_rel``);
            without it, they are up to ``max_translate_abs`` pixels.
        fill_value: Padding of the warped images (``None``: repeat the border).
        interp_type: Interpolation of the warps (``types.INTERP_LINEAR`` by default, or ``types.INTERP_NN``).
        max_translate_abs: Largest shift in pixels (one bound, or (height, width)); 250 by default.
        max_translate_rel: Largest shift as a fraction of the shape (with ``shape``); 1 by default.
        seed: Seed of the sampled sub-policies, steps and signs.

    Returns:
        The augmented batch.

    Raises:
        ValueError: an unknown ``policy_name``.
        TypeError: shape-related arguments for ``reduced_image_net`` (which has no translation), or bounds of the
            wrong kind for the presence of ``shape``.
    """
    predefined = {
        "image_net": get_image_net_policy,
        "reduced_image_net": get_reduced_image_net_policy,
        "svhn": get_svhn_policy,
        "reduced_cifar10": get_reduced_cifar10_policy,
    }
    without_translation = ("reduced_image_net",)
    if not isinstance(policy_name, str) or policy_name not in predefined:
        names = ", ".join(f"`{name}`" for name in predefined)
        raise ValueError(f"The `policy_name` must be a string that takes one of the values: {names}")
    if policy_name in without_translation:
        given = [
            name
            for value, name in (
                (shape, "shape"),
                (max_translate_abs, "max_translate_abs"),
                (max_translate_rel, "max_translate_rel"),
            )
            if value is not None
        ]
        if given:
            raise TypeError(
                f"The policy `{policy_name}` does not contain any augmentations that rely on the image shape. The "
                f"`{given[0]}` argument must not be specified in that case."
            )
        policy = predefined[policy_name]()
    else:
        policy = predefined[policy_name](
            use_shape=shape is not None, max_translate_abs=max_translate_abs, max_translate_rel=max_translate_rel
        )
    aug_kwargs: dict[str, Any] = {"fill_value": fill_value, "interp_type": interp_type}
    if shape is not None:
        aug_kwargs["shape"] = shape
    return apply_auto_augment(policy, data, seed, **aug_kwargs)


def auto_augment_image_net(
    data: _DataNode,
    shape: _DataNode | tuple[int, int] | None = None,
    fill_value: int | None = 128,
    interp_type: Any = None,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
    seed: int | None = None,
) -> _DataNode:
    """:func:`auto_augment` with the ``image_net`` policy."""
    return auto_augment(data, "image_net", shape, fill_value, interp_type, max_translate_abs, max_translate_rel, seed)


def apply_auto_augment(policy: Policy, data: _DataNode, seed: int | None = None, **kwargs: Any) -> _DataNode:
    """Apply ``policy`` in AutoAugment fashion (needs ``enable_conditionals=True``).

    Args:
        policy: The sub-policies to sample from.
        data: The batch.
        seed: Seed of the sampled sub-policies, steps and signs.
        kwargs: Extra arguments passed to the augmentations whose functions name them (``shape``,
            ``fill_value``, ``interp_type``...).

    Returns:
        The augmented batch.

    Raises:
        ValueError: an empty policy.
        UnusedArgException: a keyword argument no augmentation of the policy takes.
    """
    if len(policy.sub_policies) == 0:
        raise ValueError(f"Cannot run empty policy. Got {policy} in `apply_auto_augment` call.")
    max_policy_len = max(len(sub_policy) for sub_policy in policy.sub_policies)
    should_run = fn.random.uniform(range=[0, 1], shape=(max_policy_len,), dtype=types.FLOAT, seed=seed)
    sub_policy_id = fn.random.uniform(values=list(range(len(policy.sub_policies))), seed=seed, dtype=types.INT32)
    run_probabilities = _sub_policy_to_probability_map(policy)[sub_policy_id]
    magnitude_bins = _sub_policy_to_magnitude_bin_map(policy)[sub_policy_id]
    aug_ids, augmentations = _sub_policy_to_augmentation_map(policy)
    aug_ids = aug_ids[sub_policy_id]
    if any(aug.randomly_negate for aug in policy.augmentations.values()):
        magnitude_bins = signed_bin(magnitude_bins, seed=seed, shape=(max_policy_len,))
    _forbid_unused_kwargs(policy.augmentations.values(), kwargs, "apply_auto_augment")
    for stage_id in range(max_policy_len):
        if should_run[stage_id] < run_probabilities[stage_id]:
            op_kwargs = dict(
                data=data,
                magnitude_bin=magnitude_bins[stage_id],
                num_magnitude_bins=policy.num_magnitude_bins,
                **kwargs,
            )
            data = _pretty_select(
                augmentations[stage_id],
                aug_ids[stage_id],
                op_kwargs,
                auto_aug_name="apply_auto_augment",
                ref_suite_name="get_image_net_policy",
            )
    return data


def get_image_net_policy(
    use_shape: bool = False,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
) -> Policy:
    """AutoAugment's ImageNet policy (translations relative to the shape with ``use_shape``)."""
    _, translate_y = _get_translations(use_shape, 250, 1.0, max_translate_abs, max_translate_rel)
    shear_x = a.shear_x.augmentation((0, 0.3), True)
    shear_y = a.shear_y.augmentation((0, 0.3), True)
    rotate = a.rotate.augmentation((0, 30), True)
    color = a.color.augmentation((0.1, 1.9), False, None)
    posterize = a.posterize.augmentation((0, 4), False, a.poster_mask_uint8)
    solarize = a.solarize.augmentation((0, 256), False)
    solarize_add = a.solarize_add.augmentation((0, 110), False)
    invert, equalize, auto_contrast = a.invert, a.equalize, a.auto_contrast
    return Policy(
        name="ImageNetPolicy",
        num_magnitude_bins=11,
        sub_policies=[
            [(equalize, 0.8, None), (shear_y, 0.8, 4)],
            [(color, 0.4, 9), (equalize, 0.6, None)],
            [(color, 0.4, 1), (rotate, 0.6, 8)],
            [(solarize, 0.8, 3), (equalize, 0.4, None)],
            [(solarize, 0.4, 2), (solarize, 0.6, 2)],
            [(color, 0.2, 0), (equalize, 0.8, None)],
            [(equalize, 0.4, None), (solarize_add, 0.8, 3)],
            [(shear_x, 0.2, 9), (rotate, 0.6, 8)],
            [(color, 0.6, 1), (equalize, 1.0, None)],
            [(invert, 0.4, None), (rotate, 0.6, 0)],
            [(equalize, 1.0, None), (shear_y, 0.6, 3)],
            [(color, 0.4, 7), (equalize, 0.6, None)],
            [(posterize, 0.4, 6), (auto_contrast, 0.4, None)],
            [(solarize, 0.6, 8), (color, 0.6, 9)],
            [(solarize, 0.2, 4), (rotate, 0.8, 9)],
            [(rotate, 1.0, 7), (translate_y, 0.8, 9)],
            [(solarize, 0.8, 4)],
            [(shear_y, 0.8, 0), (color, 0.6, 4)],
            [(color, 1.0, 0), (rotate, 0.6, 2)],
            [(equalize, 0.8, None)],
            [(equalize, 1.0, None), (auto_contrast, 0.6, None)],
            [(shear_y, 0.4, 7), (solarize_add, 0.6, 7)],
            [(posterize, 0.8, 2), (solarize, 0.6, 10)],
            [(solarize, 0.6, 8), (equalize, 0.6, None)],
            [(color, 0.8, 6), (rotate, 0.4, 5)],
        ],
    )


def get_reduced_cifar10_policy(
    use_shape: bool = False,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
) -> Policy:
    """AutoAugment's reduced CIFAR-10 policy."""
    translate_x, translate_y = _get_translations(use_shape, 250, 1.0, max_translate_abs, max_translate_rel)
    shear_y = a.shear_y.augmentation((0, 0.3), True)
    rotate = a.rotate.augmentation((0, 30), True)
    brightness = a.brightness.augmentation((0.1, 1.9), False, None)
    color = a.color.augmentation((0.1, 1.9), False, None)
    contrast = a.contrast.augmentation((0.1, 1.9), False, None)
    sharpness = a.sharpness.augmentation((0.1, 1.9), False, a.sharpness_kernel_shifted)
    posterize = a.posterize.augmentation((0, 4), False, a.poster_mask_uint8)
    solarize = a.solarize.augmentation((0, 256), False)
    invert, equalize, auto_contrast = a.invert, a.equalize, a.auto_contrast
    return Policy(
        name="ReducedCifar10Policy",
        num_magnitude_bins=11,
        sub_policies=[
            [(invert, 0.1, None), (contrast, 0.2, 6)],
            [(rotate, 0.7, 2), (translate_x, 0.3, 9)],
            [(sharpness, 0.8, 1), (sharpness, 0.9, 3)],
            [(shear_y, 0.5, 8), (translate_y, 0.7, 9)],
            [(auto_contrast, 0.5, None), (equalize, 0.9, None)],
            [(shear_y, 0.2, 7), (posterize, 0.3, 7)],
            [(color, 0.4, 3), (brightness, 0.6, 7)],
            [(sharpness, 0.3, 9), (brightness, 0.7, 9)],
            [(equalize, 0.6, None), (equalize, 0.5, None)],
            [(contrast, 0.6, 7), (sharpness, 0.6, 5)],
            [(color, 0.7, 7), (translate_x, 0.5, 8)],
            [(equalize, 0.3, None), (auto_contrast, 0.4, None)],
            [(translate_y, 0.4, 3), (sharpness, 0.2, 6)],
            [(brightness, 0.9, 6), (color, 0.2, 8)],
            [(solarize, 0.5, 2)],
            [(equalize, 0.2, None), (auto_contrast, 0.6, None)],
            [(equalize, 0.2, None), (equalize, 0.6, None)],
            [(color, 0.9, 9), (equalize, 0.6, None)],
            [(auto_contrast, 0.8, None), (solarize, 0.2, 8)],
            [(brightness, 0.1, 3), (color, 0.7, 0)],
            [(solarize, 0.4, 5), (auto_contrast, 0.9, None)],
            [(translate_y, 0.9, 9), (translate_y, 0.7, 9)],
            [(auto_contrast, 0.9, None), (solarize, 0.8, 3)],
            [(equalize, 0.8, None), (invert, 0.1, None)],
            [(translate_y, 0.7, 9), (auto_contrast, 0.9, None)],
        ],
    )


def get_svhn_policy(
    use_shape: bool = False,
    max_translate_abs: int | tuple[int, int] | None = None,
    max_translate_rel: float | tuple[float, float] | None = None,
) -> Policy:
    """AutoAugment's SVHN policy."""
    translate_x, translate_y = _get_translations(use_shape, 250, 1.0, max_translate_abs, max_translate_rel)
    shear_x = a.shear_x.augmentation((0, 0.3), True)
    shear_y = a.shear_y.augmentation((0, 0.3), True)
    rotate = a.rotate.augmentation((0, 30), True)
    contrast = a.contrast.augmentation((0.1, 1.9), False, None)
    solarize = a.solarize.augmentation((0, 256), False)
    invert, equalize, auto_contrast = a.invert, a.equalize, a.auto_contrast
    return Policy(
        name="SvhnPolicy",
        num_magnitude_bins=11,
        sub_policies=[
            [(shear_x, 0.9, 4), (invert, 0.2, None)],
            [(shear_y, 0.9, 8), (invert, 0.7, None)],
            [(equalize, 0.6, None), (solarize, 0.6, 6)],
            [(invert, 0.9, None), (equalize, 0.6, None)],
            [(equalize, 0.6, None), (rotate, 0.9, 3)],
            [(shear_x, 0.9, 4), (auto_contrast, 0.8, None)],
            [(shear_y, 0.9, 8), (invert, 0.4, None)],
            [(shear_y, 0.9, 5), (solarize, 0.2, 6)],
            [(invert, 0.9, None), (auto_contrast, 0.8, None)],
            [(equalize, 0.6, None), (rotate, 0.9, 3)],
            [(shear_x, 0.9, 4), (solarize, 0.3, 3)],
            [(shear_y, 0.8, 8), (invert, 0.7, None)],
            [(equalize, 0.9, None), (translate_y, 0.6, 6)],
            [(invert, 0.9, None), (equalize, 0.6, None)],
            [(contrast, 0.3, 3), (rotate, 0.8, 4)],
            [(invert, 0.8, None)],
            [(shear_y, 0.7, 6), (solarize, 0.4, 8)],
            [(invert, 0.6, None), (rotate, 0.8, 4)],
            [(shear_y, 0.3, 7), (translate_x, 0.9, 3)],
            [(shear_x, 0.1, 6), (invert, 0.6, None)],
            [(solarize, 0.7, 2), (translate_y, 0.6, 7)],
            [(shear_y, 0.8, 4), (invert, 0.8, None)],
            [(shear_x, 0.7, 9), (translate_y, 0.8, 3)],
            [(shear_y, 0.8, 5), (auto_contrast, 0.7, None)],
            [(shear_x, 0.7, 2), (invert, 0.1, None)],
        ],
    )


def get_reduced_image_net_policy() -> Policy:
    """AutoAugment's reduced ImageNet policy (no translations)."""
    shear_x = a.shear_x.augmentation((0, 0.3), True)
    rotate = a.rotate.augmentation((0, 30), True)
    color = a.color.augmentation((0.1, 1.9), False, None)
    contrast = a.contrast.augmentation((0.1, 1.9), False, None)
    sharpness = a.sharpness.augmentation((0.1, 1.9), False, a.sharpness_kernel_shifted)
    posterize = a.posterize.augmentation((0, 4), False, a.poster_mask_uint8)
    solarize = a.solarize.augmentation((0, 256), False)
    invert, equalize, auto_contrast = a.invert, a.equalize, a.auto_contrast
    return Policy(
        name="ReducedImageNetPolicy",
        num_magnitude_bins=11,
        sub_policies=[
            [(posterize, 0.4, 8), (rotate, 0.6, 9)],
            [(solarize, 0.6, 5), (auto_contrast, 0.6, None)],
            [(equalize, 0.8, None), (equalize, 0.6, None)],
            [(posterize, 0.6, 7), (posterize, 0.6, 6)],
            [(equalize, 0.4, None), (solarize, 0.2, 4)],
            [(equalize, 0.4, None), (rotate, 0.8, 8)],
            [(solarize, 0.6, 3), (equalize, 0.6, None)],
            [(posterize, 0.8, 5), (equalize, 1.0, None)],
            [(rotate, 0.2, 3), (solarize, 0.6, 8)],
            [(equalize, 0.6, None), (posterize, 0.4, 6)],
            [(rotate, 0.8, 8), (color, 0.4, 0)],
            [(rotate, 0.4, 9), (equalize, 0.6, None)],
            [(equalize, 0.8, None)],
            [(invert, 0.6, None), (equalize, 1.0, None)],
            [(color, 0.6, 4), (contrast, 1.0, 8)],
            [(rotate, 0.8, 8), (color, 1.0, 2)],
            [(color, 0.8, 8), (solarize, 0.8, 7)],
            [(sharpness, 0.4, 7), (invert, 0.6, None)],
            [(shear_x, 0.6, 5), (equalize, 1.0, None)],
            [(color, 0.4, 0), (equalize, 0.6, None)],
            [(equalize, 0.4, None), (solarize, 0.2, 4)],
            [(solarize, 0.6, 5), (auto_contrast, 0.6, None)],
            [(invert, 0.6, None), (equalize, 1.0, None)],
            [(color, 0.6, 4), (contrast, 1.0, 8)],
            [(equalize, 0.8, None), (equalize, 0.6, None)],
        ],
    )


def _sub_policy_to_probability_map(policy: Policy) -> _DataNode:
    """A (sub-policies, steps) float32 constant of the steps' probabilities (0 past a sub-policy's end)."""
    width = max(len(sub) for sub in policy.sub_policies)
    prob = np.zeros((len(policy.sub_policies), width), dtype=np.float32)
    for i, sub_policy in enumerate(policy.sub_policies):
        for j, (_, p, _) in enumerate(sub_policy):
            prob[i, j] = p
    return types.Constant(prob)


def _sub_policy_to_magnitude_bin_map(policy: Policy) -> _DataNode:
    """A (sub-policies, steps) int32 constant of the steps' bins (-999 where there is none: never read)."""
    width = max(len(sub) for sub in policy.sub_policies)
    bins = np.zeros((len(policy.sub_policies), width), dtype=np.int32)
    for i, sub_policy in enumerate(policy.sub_policies):
        for j, (_, _, mag) in enumerate(sub_policy):
            bins[i, j] = mag if mag is not None else -999
    return types.Constant(bins)


def _sub_policy_to_augmentation_matrix_map(policy: Policy) -> tuple[np.ndarray, list[list[_Augmentation]]]:
    """Per step, the distinct augmentations used at that step (plus ``identity``), and the (sub-policies, steps)
    matrix of each step's index into that list (``identity`` past a sub-policy's end)."""
    width = max(len(sub) for sub in policy.sub_policies)
    stages: list[list[_Augmentation]] = []
    for j in range(width):
        used = list(dict.fromkeys(sub[j][0] for sub in policy.sub_policies if j < len(sub)))
        stages.append([*used, a.identity])
    index = [{aug: k for k, aug in enumerate(stage)} for stage in stages]
    matrix = np.array([[len(stage) - 1 for stage in stages] for _ in policy.sub_policies], dtype=np.int32)
    for i, sub_policy in enumerate(policy.sub_policies):
        for j, (aug, _, _) in enumerate(sub_policy):
            matrix[i, j] = index[j][aug]
    return matrix, stages


def _sub_policy_to_augmentation_map(policy: Policy) -> tuple[_DataNode, list[list[_Augmentation]]]:
    matrix, stages = _sub_policy_to_augmentation_matrix_map(policy)
    return types.Constant(matrix), stages
