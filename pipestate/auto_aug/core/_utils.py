"""Translations with absolute or shape-relative bounds, and ``select`` with a helpful error for ``shape``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipestate.auto_aug.core._args import MissingArgException
from pipestate.auto_aug.core._augmentation import Augmentation
from pipestate.auto_aug.core._select import select
from pipestate.graph import DataNode


def max_translate_hw(max_translate: Any) -> tuple[Any, Any]:
    """``(height, width)`` bounds from one bound or a pair."""
    if isinstance(max_translate, (tuple, list)):
        height, width = max_translate
        return height, width
    return max_translate, max_translate


def parse_validate_offset(
    use_shape: bool,
    max_translate_abs: Any = None,
    max_translate_rel: Any = None,
    default_translate_abs: Any = 250,
    default_translate_rel: Any = 1.0,
) -> tuple[Any, Any]:
    """The ``(height, width)`` translation bounds: relative to the shape (``use_shape``) or absolute.

    Raises:
        TypeError: ``use_shape`` is not a bool, or the bound of the other kind is given.
    """
    if not isinstance(use_shape, bool):
        raise TypeError(f"The `use_shape` is a flag that should be set to either True or False, got {use_shape}.")
    if use_shape:
        if max_translate_abs is not None:
            raise TypeError(
                "The argument `max_translate_abs` cannot be used with image shapes. You may use `max_translate_rel` "
                "instead."
            )
        return max_translate_hw(default_translate_rel if max_translate_rel is None else max_translate_rel)
    if max_translate_rel is not None:
        raise TypeError(
            "The argument `max_translate_rel` cannot be used without image shapes. You may use `max_translate_abs` "
            "instead."
        )
    return max_translate_hw(default_translate_abs if max_translate_abs is None else max_translate_abs)


def get_translations(
    use_shape: bool,
    default_translate_abs: Any,
    default_translate_rel: Any,
    max_translate_abs: Any = None,
    max_translate_rel: Any = None,
) -> list[Augmentation]:
    """``[translate_x, translate_y]`` of the standard suite with the bounds set."""
    from pipestate.auto_aug import augmentations as a

    height, width = parse_validate_offset(
        use_shape, max_translate_abs, max_translate_rel, default_translate_abs, default_translate_rel
    )
    if use_shape:
        return [a.translate_x.augmentation((0, width), True), a.translate_y.augmentation((0, height), True)]
    return [
        a.translate_x_no_shape.augmentation((0, width), True),
        a.translate_y_no_shape.augmentation((0, height), True),
    ]


def pretty_select(
    augmentations: Sequence[Augmentation], aug_ids: DataNode, op_kwargs: dict, auto_aug_name: str, ref_suite_name: str
) -> DataNode:
    """:func:`select`, explaining a missing ``shape`` of the shape-relative translations."""
    from pipestate.auto_aug import augmentations as a

    try:
        return select(augmentations, aug_ids, **op_kwargs)
    except MissingArgException as exc:
        if exc.missing_args != ["shape"] or exc.augmentation.op not in (a.translate_x.op, a.translate_y.op):
            raise
        raise TypeError(
            f"The augmentation `{exc.augmentation.name}` requires `shape` argument that describes image shape (in "
            f"HWC layout). Please provide it as `shape` argument to `{auto_aug_name}` call. You can get the image "
            f"shape from encoded images with `fn.peek_image_shape`. Alternatively, you can use "
            f"`translate_x_no_shape`/`translate_y_no_shape` that does not rely on image shape, but uses offset from "
            f"fixed range: for reference see `{ref_suite_name}` and its `use_shape` argument. "
        ) from exc
