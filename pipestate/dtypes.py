"""The element-type table: DALI's data types and their numpy equivalents. Imports nothing of pipestate,
so every module may use it; :mod:`pipestate.types` re-exports it under DALI's names."""

from __future__ import annotations

import enum

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
