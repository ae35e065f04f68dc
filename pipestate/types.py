"""Data types, image types and the per-batch / per-sample info given to external sources.

Names follow ``nvidia.dali.types`` so DALI code reads the same: ``types.FLOAT``, ``types.INT32``,
``types.RGB``, ``types.BatchInfo``, ``types.SampleInfo``.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np


class DALIDataType(enum.IntEnum):
    """Element types of pipeline data (same member names as DALI's)."""

    BOOL = 1
    UINT8 = 2
    UINT16 = 3
    UINT32 = 4
    UINT64 = 5
    INT8 = 6
    INT16 = 7
    INT32 = 8
    INT64 = 9
    FLOAT16 = 10
    FLOAT = 11
    FLOAT64 = 12


_TO_NUMPY = {
    DALIDataType.BOOL: np.dtype(np.bool_),
    DALIDataType.UINT8: np.dtype(np.uint8),
    DALIDataType.UINT16: np.dtype(np.uint16),
    DALIDataType.UINT32: np.dtype(np.uint32),
    DALIDataType.UINT64: np.dtype(np.uint64),
    DALIDataType.INT8: np.dtype(np.int8),
    DALIDataType.INT16: np.dtype(np.int16),
    DALIDataType.INT32: np.dtype(np.int32),
    DALIDataType.INT64: np.dtype(np.int64),
    DALIDataType.FLOAT16: np.dtype(np.float16),
    DALIDataType.FLOAT: np.dtype(np.float32),
    DALIDataType.FLOAT64: np.dtype(np.float64),
}

BOOL = DALIDataType.BOOL
UINT8 = DALIDataType.UINT8
UINT16 = DALIDataType.UINT16
UINT32 = DALIDataType.UINT32
UINT64 = DALIDataType.UINT64
INT8 = DALIDataType.INT8
INT16 = DALIDataType.INT16
INT32 = DALIDataType.INT32
INT64 = DALIDataType.INT64
FLOAT16 = DALIDataType.FLOAT16
FLOAT = DALIDataType.FLOAT
FLOAT64 = DALIDataType.FLOAT64


def to_numpy_dtype(dtype: DALIDataType | np.dtype | type | str) -> np.dtype:
    """Return the numpy dtype for a ``types.*`` member or anything ``numpy.dtype`` accepts.

    Raises:
        TypeError: if ``dtype`` names no supported element type.
    """
    if isinstance(dtype, DALIDataType):
        return _TO_NUMPY[dtype]
    try:
        result = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype={dtype!r} is not a data type; use e.g. types.FLOAT or numpy.float32") from exc
    if result not in _TO_NUMPY.values():
        raise TypeError(f"dtype={dtype!r} is not supported; use one of {sorted(m.name for m in DALIDataType)}")
    return result


class DALIImageType(enum.IntEnum):
    """Colour spaces of images (DALI's member names and values): what ``fn.decoders.image`` produces
    (``output_type``) and what colour operators take (``image_type``). ``ANY_DATA`` keeps an image's own
    channels."""

    RGB = 0
    BGR = 1
    GRAY = 2
    YCbCr = 3
    ANY_DATA = 4


RGB = DALIImageType.RGB
BGR = DALIImageType.BGR
GRAY = DALIImageType.GRAY
YCbCr = DALIImageType.YCbCr
ANY_DATA = DALIImageType.ANY_DATA


class DALIInterpType(enum.IntEnum):
    """Interpolation methods of the resampling and warping operators (DALI's member names and values)."""

    INTERP_NN = 0
    INTERP_LINEAR = 1
    INTERP_CUBIC = 2
    INTERP_LANCZOS3 = 3
    INTERP_TRIANGULAR = 4
    INTERP_GAUSSIAN = 5


INTERP_NN = DALIInterpType.INTERP_NN
INTERP_LINEAR = DALIInterpType.INTERP_LINEAR
INTERP_CUBIC = DALIInterpType.INTERP_CUBIC
INTERP_LANCZOS3 = DALIInterpType.INTERP_LANCZOS3
INTERP_TRIANGULAR = DALIInterpType.INTERP_TRIANGULAR
INTERP_GAUSSIAN = DALIInterpType.INTERP_GAUSSIAN


class BatchInfo(NamedTuple):
    """What an external source receives with ``batch_info=True``.

    Attributes:
        iteration: Index of the batch within the current epoch.
        epoch_idx: Index of the current epoch (incremented by ``Pipeline.reset()``).
    """

    iteration: int
    epoch_idx: int


class SampleInfo(NamedTuple):
    """What an external source receives with ``batch=False``.

    Attributes:
        idx_in_epoch: Index of the sample within the current epoch.
        idx_in_batch: Index of the sample within its batch.
        iteration: Index of the batch within the current epoch.
        epoch_idx: Index of the current epoch.
    """

    idx_in_epoch: int
    idx_in_batch: int
    iteration: int
    epoch_idx: int


def Constant(value, dtype=None, shape=None, layout=None, device=None):  # noqa: N802 - DALI's name
    """DALI's ``types.Constant``: a DataNode holding ``value`` in every sample (call it inside a pipeline
    definition). Python ints become int32 and floats float32 unless ``dtype`` is given.

    Raises:
        ValueError: ``device`` is not ``"cpu"`` (pipestate runs on the CPU).
        TypeError: ``value`` is not a number or numeric array.
    """
    if device not in (None, "cpu"):
        raise ValueError(f"types.Constant(device={device!r}): pipestate runs on the CPU; use device='cpu'")
    from pipestate.tracing import constant_node  # the one import: a user call that adds a node

    return constant_node(value, dtype, shape, layout)
