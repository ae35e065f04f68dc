"""DALI's ``nvidia.dali.tensors``: the classes of pipeline outputs, for ``isinstance`` checks and construction.

``TensorListCPU`` is :class:`pipestate.Batch` (what ``Pipeline.run()`` returns), so
``isinstance(out, TensorListCPU)`` holds and ``TensorListCPU(array, "HWC")`` builds a batch. A sample
(``batch[i]``, ``batch.at(i)``) is a numpy array, as DALI's ``at()`` returns; :class:`TensorCPU` wraps one
array with DALI's ``Tensor`` methods where code needs that type. ``TensorGPU`` and ``TensorListGPU`` exist
so that code checking for GPU outputs runs unchanged; nothing is ever one of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipestate.batch import Batch

__all__ = ["TensorCPU", "TensorGPU", "TensorListCPU", "TensorListGPU"]

TensorListCPU = Batch


class TensorCPU:
    """One sample with DALI's ``TensorCPU`` methods.

    Args:
        data: An array (or anything ``numpy.asarray`` takes), not copied.
        layout: Its layout, e.g. ``"HWC"``.
    """

    def __init__(self, data: Any, layout: str | None = None) -> None:
        self._data = np.asarray(data)
        self._layout = layout or ""

    def shape(self) -> list[int]:
        """The sample's shape, as a list (DALI's ``Tensor.shape()``)."""
        return list(self._data.shape)

    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def layout(self) -> str:
        """The layout (``""`` when it has none)."""
        return self._layout

    def set_layout(self, layout: str | None) -> None:
        """Set the layout."""
        self._layout = layout or ""

    @property
    def dtype(self) -> np.dtype:
        """The element type, as a numpy dtype (as :attr:`pipestate.Batch.dtype`)."""
        return self._data.dtype

    def source_info(self) -> str:
        """Where the sample came from (``""``: unknown)."""
        return ""

    def as_cpu(self) -> TensorCPU:
        """This tensor (it is on the CPU)."""
        return self

    def as_array(self) -> np.ndarray:
        """The sample as a numpy array (not copied)."""
        return self._data

    def squeeze(self, dim: int | None = None) -> bool:
        """Remove axes of extent 1 (all, or ``dim``) in place; return whether the shape changed."""
        before = self._data.shape
        self._data = np.squeeze(self._data, axis=dim)
        return self._data.shape != before

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self._data if dtype is None else self._data.astype(dtype)
        return array.copy() if copy else array

    def __repr__(self) -> str:
        return f"TensorCPU(dtype={self._data.dtype}, layout={self._layout!r}, shape={tuple(self._data.shape)})"


class _NoGPU:
    """A GPU tensor class of DALI's: pipestate runs on the CPU, so nothing is an instance of it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self).__name__}: pipestate runs on the CPU; use TensorCPU / TensorListCPU")


class TensorGPU(_NoGPU):
    """DALI's ``TensorGPU``; pipestate has no GPU data (constructing one raises ``TypeError``)."""


class TensorListGPU(_NoGPU):
    """DALI's ``TensorListGPU``; pipestate has no GPU data (constructing one raises ``TypeError``)."""
