"""The :class:`Augmentation` wrapper and signed magnitude bins.

An augmentation is a function ``op(data, parameter, **extra)`` built from operators, plus how its parameter
follows from a magnitude bin: ``mag_to_param(magnitudes[bin] * (-1) ** sign)`` with
``magnitudes = linspace(mag_range[0], mag_range[1], num_magnitude_bins)`` (or ``mag_range`` itself when it is an
array). The parameters of every bin are computed once, stored as a constant, and indexed per sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from pipestate import fn, types
from pipestate.auto_aug.core._args import (
    MissingArgException,
    filter_extra_accepted_kwargs,
    get_missing_kwargs,
    get_num_positional_args,
)
from pipestate.graph import DataNode


class _UndefinedParam:
    """The default of :meth:`Augmentation.augmentation`'s arguments: "keep the current value"."""


class _SignedMagnitudeBin:
    """A magnitude bin (an int or a per-sample DataNode) with a per-sample random sign (0: keep, 1: negate)."""

    def __init__(self, magnitude_bin: int | DataNode, random_sign: DataNode, signed_magnitude_idx: DataNode) -> None:
        self._magnitude_bin = magnitude_bin
        self._random_sign = random_sign
        self._signed_magnitude_idx = signed_magnitude_idx

    def __getitem__(self, idx: int) -> _SignedMagnitudeBin:
        """The bin of step ``idx`` of a sequence of augmentations (signs drawn once for the whole sequence)."""
        magnitude_bin = self._magnitude_bin if isinstance(self._magnitude_bin, int) else self._magnitude_bin[idx]
        return type(self)(magnitude_bin, self._random_sign[idx], self._signed_magnitude_idx[idx])

    @classmethod
    def create_from_bin(
        cls,
        magnitude_bin: int | DataNode,
        random_sign: DataNode | None = None,
        seed: int | None = None,
        shape: tuple | None = None,
    ) -> _SignedMagnitudeBin:
        if isinstance(magnitude_bin, bool) or not isinstance(magnitude_bin, (int, DataNode)):
            raise TypeError(
                f"The `magnitude_bin` must be an int or _DataNode (output of an operator or `types.Constant`) "
                f"representing batch of ints from `[0..num_magnitude_bins-1]` range. Got {magnitude_bin} instead."
            )
        if random_sign is not None and any(arg is not None for arg in (seed, shape)):
            raise TypeError("The `random_sign` cannot be specified together with neither `seed` nor `shape`.")
        if random_sign is None:
            random_sign = fn.random.uniform(values=[0, 1], dtype=types.INT32, seed=seed, shape=shape)
        # computed right away: the signed bin may be created before a conditional split and read inside it
        return cls(magnitude_bin, random_sign, 2 * magnitude_bin + random_sign)

    @staticmethod
    def _remap_to_signed_magnitudes(magnitudes: Any) -> np.ndarray:
        """``[m0, -m0, m1, -m1, ...]``: the magnitude of signed index ``2 * bin + sign``."""
        return np.array([magnitudes[i // 2] * (-1 if i % 2 else 1) for i in range(2 * len(magnitudes))])

    @property
    def bin(self) -> int | DataNode:
        return self._magnitude_bin

    @property
    def random_sign(self) -> DataNode:
        return self._random_sign

    @property
    def signed_magnitude_idx(self) -> DataNode:
        return self._signed_magnitude_idx


def signed_bin(
    magnitude_bin: int | DataNode,
    random_sign: DataNode | None = None,
    seed: int | None = None,
    shape: tuple | None = None,
) -> _SignedMagnitudeBin:
    """Combine a magnitude bin with a random sign (drawn here unless ``random_sign`` is given).

    Draw the sign once, before splitting the batch between augmentations, instead of inside each of them.

    Args:
        magnitude_bin: The bin, in ``[0, num_magnitude_bins - 1]``: an int or a per-sample DataNode.
        random_sign: Per-sample 0/1 (1 negates the magnitude of augmentations with ``randomly_negate=True``).
        seed: Seed of the drawn signs.
        shape: Shape of the drawn signs (one per step of a sequence of augmentations).

    Returns:
        The signed magnitude bin to pass as ``magnitude_bin``.

    Raises:
        TypeError: a ``magnitude_bin`` that is not an int or DataNode, or ``random_sign`` with ``seed``/``shape``.
    """
    return _SignedMagnitudeBin.create_from_bin(magnitude_bin, random_sign, seed, shape)


def _np_wrap(magnitude: Any) -> np.ndarray:
    return np.array(magnitude)


def _contains_data_node(obj: Any) -> bool:
    if isinstance(obj, (tuple, list)):
        return any(_contains_data_node(el) for el in obj)
    return isinstance(obj, DataNode)


class Augmentation:
    """A transformation built from operators, usable by the automatic augmentations (make one with the
    ``@augmentation`` decorator)."""

    def __init__(
        self,
        op: Callable[..., DataNode],
        mag_range: tuple[float, float] | np.ndarray | None = None,
        randomly_negate: bool | None = None,
        mag_to_param: Callable[[float], Any] | None = None,
        param_device: str | None = None,
        name: str | None = None,
    ) -> None:
        self._op = op
        self._mag_range = mag_range
        self._randomly_negate = randomly_negate
        self._mag_to_param = mag_to_param
        self._param_device = param_device
        self._name = name
        self._validate_op_sig()

    def __repr__(self) -> str:
        params = [f"{k}={v!r}" for k, v in self._get_config().items() if v is not None]
        return f"Augmentation({', '.join([repr(self.op), *params])})"

    def __call__(
        self,
        data: DataNode,
        *,
        magnitude_bin: int | DataNode | _SignedMagnitudeBin | None = None,
        num_magnitude_bins: int | None = None,
        **kwargs: Any,
    ) -> DataNode:
        """Apply ``op(data, mag_to_param(magnitudes[magnitude_bin] * (-1) ** sign), **extra)``.

        Args:
            data: The batch to transform.
            magnitude_bin: The bin (an int, a per-sample DataNode, or a :func:`signed_bin`).
            num_magnitude_bins: The number of bins the magnitude range is divided into.
            kwargs: Extra arguments; those the operation's signature names are passed to it.

        Returns:
            The transformed batch.

        Raises:
            MissingArgException: the operation needs keyword arguments the call lacks.
            ValueError: a bin is needed and missing, or the magnitudes do not fit ``num_magnitude_bins``.
        """
        param = self._get_param(magnitude_bin, num_magnitude_bins, self._infer_param_device(data))
        op_kwargs = filter_extra_accepted_kwargs(self.op, kwargs, 2)
        missing = get_missing_kwargs(self.op, kwargs, 2)
        if missing:
            raise MissingArgException(
                f"The augmentation `{self.name}` requires following named argument(s) which were not provided to "
                f"the call: {', '.join(missing)}. Please make sure to pass the required arguments when calling the "
                f"augmentation.",
                augmentation=self,
                missing_args=missing,
            )
        return self.op(data, param, **op_kwargs)

    @property
    def op(self) -> Callable[..., DataNode]:
        return self._op

    @property
    def mag_range(self) -> tuple[float, float] | np.ndarray | None:
        return self._mag_range

    @property
    def mag_to_param(self) -> Callable[[float], Any]:
        return self._mag_to_param or _np_wrap

    @property
    def randomly_negate(self) -> bool:
        return self._randomly_negate or False

    @property
    def param_device(self) -> str:
        return self._param_device or "cpu"

    @property
    def name(self) -> str:
        return self._name or self.op.__name__

    def augmentation(
        self,
        mag_range: Any = _UndefinedParam,
        randomly_negate: Any = _UndefinedParam,
        mag_to_param: Any = _UndefinedParam,
        param_device: Any = _UndefinedParam,
        name: Any = _UndefinedParam,
        augmentation_cls: type[Augmentation] | None = None,
    ) -> Augmentation:
        """A copy of this augmentation with the given settings changed (the others kept)."""
        config = self._get_config()
        changes = {
            "mag_range": mag_range,
            "randomly_negate": randomly_negate,
            "mag_to_param": mag_to_param,
            "param_device": param_device,
            "name": name,
        }
        config.update({k: v for k, v in changes.items() if v is not _UndefinedParam})
        return (augmentation_cls or type(self))(self.op, **config)

    def _get_config(self) -> dict[str, Any]:
        return {
            "mag_range": self._mag_range,
            "mag_to_param": self._mag_to_param,
            "randomly_negate": self._randomly_negate,
            "param_device": self._param_device,
            "name": self._name,
        }

    def _infer_param_device(self, data: DataNode) -> str:
        if self.param_device == "auto":
            return "cpu"  # pipestate's data lives on the CPU
        return self.param_device

    def _has_custom_magnitudes(self) -> bool:
        return isinstance(self.mag_range, np.ndarray)

    def _map_mag_to_param(self, magnitude: Any) -> np.ndarray:
        param = self.mag_to_param(magnitude)
        if _contains_data_node(param):
            raise TypeError(
                f"The `mag_to_param` callback of `{self.name}` augmentation returned `DataNode`, i.e. an output of "
                f"a pipelined operator, which is not supported there. Instead, the `mag_to_param` callback must "
                f"return parameter that is `np.ndarray` or is directly convertible to `np.ndarray`, so that the all "
                f"parameters can be precomputed and reused across iterations.\n\nYou can move the operators from "
                f"`mag_to_param` callback to the decorated augmentation code.\n\nError in augmentation: {self}."
            )
        return np.array(param)

    def _map_mags_to_params(self, magnitudes: Any) -> np.ndarray:
        params = [self._map_mag_to_param(m) for m in magnitudes]
        for param, magnitude in zip(params, magnitudes):
            if param.shape != params[0].shape or param.dtype != params[0].dtype:
                raise ValueError(
                    f"The `mag_to_param` callback of `{self.name}` augmentation must return the arrays of the same "
                    f"type and shape for different magnitudes. Got param of shape {params[0].shape} and "
                    f"{params[0].dtype} type for magnitude {magnitudes[0]}, but for magnitude {magnitude} the "
                    f"returned array has shape {param.shape} and type {param.dtype}.\n\nError in augmentation: {self}."
                )
        return np.array(params)

    def _get_magnitudes(self, num_magnitude_bins: int | None) -> np.ndarray | None:
        mag_range = self.mag_range
        if mag_range is None:
            return None
        if self._has_custom_magnitudes():
            if num_magnitude_bins is not None and len(mag_range) != num_magnitude_bins:
                raise ValueError(
                    f"The augmentation `{self.name}` has nd.array of length {len(mag_range)} specified as the "
                    f"`mag_range`. However, the `num_magnitude_bins` passed to the call is {num_magnitude_bins}."
                )
            return mag_range
        if num_magnitude_bins is None:
            raise TypeError(
                f"The `num_magnitude_bins` argument is missing in the call of the `{self.name}` augmentation. "
                f"Please specify the `num_magnitude_bins` along with the samples and magnitude_bin."
                f"\nError in augmentation: {self}."
            )
        if not hasattr(mag_range, "__len__") or len(mag_range) != 2:
            raise ValueError(
                f"The `mag_range` must be a tuple of (low, high) ends of magnitude range or nd.array of explicitly "
                f"defined magnitudes. Got `{self.mag_range}` for augmentation `{self.name}`."
            )
        low, high = mag_range
        return np.linspace(low, high, num_magnitude_bins, dtype=np.float32)

    def _get_param(self, magnitude_bin: Any, num_magnitude_bins: int | None, param_device: str) -> DataNode | None:
        magnitudes = self._get_magnitudes(num_magnitude_bins)
        if magnitudes is None:
            return None
        if magnitude_bin is None:
            raise TypeError(
                f"The augmentation `{self.name}` has `mag_range` specified, so when called, it requires "
                f"`magnitude_bin` parameter to select the magnitude from the `mag_range`.\n"
                f"Error in augmentation: {self}."
            )
        if self.randomly_negate and not isinstance(magnitude_bin, _SignedMagnitudeBin):
            magnitude_bin = signed_bin(magnitude_bin)
            warnings.warn(
                f"The augmentation `{self.name}` was declared with `random_negate=True`, but unsigned "
                f"`magnitude_bin` was passed to the augmentation call. The augmentation will randomly negate the "
                f"magnitudes manually. However, for better performance, if you conditionally split batch between "
                f"multiple augmentations, it is better to call `signed_magnitude_bin = signed_bin(magnitude_bin)` "
                f"before the split and pass the signed bins instead.",
                Warning,
                stacklevel=3,
            )
        if self.randomly_negate:
            if isinstance(magnitude_bin.bin, int):
                magnitudes, index = [magnitudes[magnitude_bin.bin]], magnitude_bin.random_sign
            else:
                index = magnitude_bin.signed_magnitude_idx
            params = self._map_mags_to_params(_SignedMagnitudeBin._remap_to_signed_magnitudes(magnitudes))
            return types.Constant(params, device=param_device)[index]
        plain = magnitude_bin.bin if isinstance(magnitude_bin, _SignedMagnitudeBin) else magnitude_bin
        if isinstance(plain, int):
            return types.Constant(self._map_mag_to_param(magnitudes[plain]), device=param_device)
        return types.Constant(self._map_mags_to_params(magnitudes), device=param_device)[plain]

    def _validate_op_sig(self) -> None:
        count = get_num_positional_args(self.op)
        if count <= 1:
            raise TypeError(
                f"The {self.op} accepts {count} positional argument(s), but the functions decorated with "
                f"`@augmentation` must accept at least two positional arguments: the samples and parameters."
                f"\nError in: {self}."
            )
