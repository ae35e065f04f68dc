"""The ``@augmentation`` decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipestate.auto_aug.core._augmentation import Augmentation


def augmentation(
    function: Callable[..., Any] | None = None,
    *,
    mag_range: tuple[float, float] | np.ndarray | None = None,
    randomly_negate: bool | None = None,
    mag_to_param: Callable[[float], Any] | None = None,
    param_device: str | None = None,
    name: str | None = None,
    augmentation_cls: type[Augmentation] | None = None,
) -> Any:
    """Turn ``function(data, parameter, **extra)``, written with operators, into an :class:`Augmentation` that
    the automatic augmentations can call with a magnitude bin instead of the parameter.

    Args:
        function: Takes the batch (a DataNode) and the parameter, at least two positional arguments.
        mag_range: ``(low, high)``: the magnitudes are ``linspace(low, high, num_magnitude_bins)``; or an array
            of the magnitudes. Without it the parameter is ``None``.
        randomly_negate: Negate the magnitude of a random half of the samples.
        mag_to_param: Maps a magnitude to the parameter (a numpy array, the same shape and type for every
            magnitude: the parameters are computed once and stored as a constant).
        param_device: ``"cpu"`` (default) or ``"auto"``; pipestate runs on the CPU.
        name: The augmentation's name (default: the function's).
        augmentation_cls: The class to create (default :class:`Augmentation`).

    Returns:
        The augmentation, or a decorator when ``function`` is not given.

    Raises:
        TypeError: ``function`` is not callable, is already an augmentation, or takes fewer than two positional
            arguments.
    """

    def decorate(func: Callable[..., Any]) -> Augmentation:
        cls = augmentation_cls or Augmentation
        return cls(
            func,
            mag_range=mag_range,
            mag_to_param=mag_to_param,
            randomly_negate=randomly_negate,
            param_device=param_device,
            name=name,
        )

    if function is None:
        return decorate
    if isinstance(function, Augmentation):
        raise TypeError(
            f"The `@augmentation` was applied to already decorated Augmentation. Please call "
            f"`{function.name}.augmentation` method to modify the augmentation setup or apply the decorator to the "
            f"underlying `{function.name}.op` directly.\nError in augmentation: {function}."
        )
    if not callable(function):
        raise TypeError(
            f"The `@augmentation` decorator was used to decorate the object that is not callable: {function}."
        )
    return decorate(function)
