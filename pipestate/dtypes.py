"""The element-type table: DALI's data types, their numpy equivalents and typed scalars. Imports nothing of pipestate,
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


# DALI's ``types._type_name_to_dali_type``: the type names numpy and torch use.
_NAMES = {
    "bool": BOOL,
    "bool_": BOOL,
    "boolean": BOOL,
    "int8": INT8,
    "sbyte": INT8,
    "uint8": UINT8,
    "byte": UINT8,
    "ubyte": UINT8,
    "int16": INT16,
    "short": INT16,
    "uint16": UINT16,
    "ushort": UINT16,
    "int32": INT32,
    "uint32": UINT32,
    "int64": INT64,
    "long": INT64,
    "uint64": UINT64,
    "ulong": UINT64,
    "half": FLOAT16,
    "float16": FLOAT16,
    "float": FLOAT,
    "float32": FLOAT,
    "float64": FLOAT64,
    "double": FLOAT64,
}


def to_dali_type(framework_type: object) -> DALIDataType:
    """DALI's ``types.to_dali_type``: the data type of a numpy/torch type or dtype (``numpy.uint8``,
    ``numpy.dtype("float32")``, ``torch.int64``, ``"float64"``).

    Raises:
        TypeError: the type has no DALI equivalent.
    """
    if isinstance(framework_type, DALIDataType):
        return framework_type
    name = framework_type.__qualname__ if isinstance(framework_type, type) else str(framework_type)
    name = name[6:] if name.startswith("torch.") else name
    if name not in _NAMES:
        raise TypeError(f"'{framework_type}' could not be converted into any known DALIDataType.")
    return _NAMES[name]


_INTEGERS = (INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64)
_FLOATS = (FLOAT16, FLOAT, FLOAT64)


class ScalarConstant:
    """DALI's ``types.ScalarConstant``: a number with the data type it has in arithmetic (what
    ``types.Constant(5)`` returns). Python ``bool``, ``int`` and ``float`` are BOOL, INT32 and FLOAT unless
    ``dtype`` says otherwise; ``.uint8()``, ``.float32()``, ... give the same value with another type.

    Args:
        value: A bool, int, float or numpy scalar (0-d array).
        dtype: Its data type (default: from the value).

    Raises:
        TypeError: ``value`` is not a scalar number, or ``dtype`` is not a numeric type.
    """

    def __init__(self, value: object, dtype: DALIDataType | None = None) -> None:
        value_dtype = getattr(value, "dtype", None)
        if value_dtype is not None:
            dali_type = to_dali_type(value_dtype)
            value = value.item()  # type: ignore[attr-defined]
            dtype = dali_type if dtype is None else dtype
        if not isinstance(value, (bool, int, float)):
            raise TypeError(f"Expected scalar value of type 'bool', 'int' or 'float', got {type(value)}.")
        if dtype is None:
            dtype = BOOL if isinstance(value, bool) else INT32 if isinstance(value, int) else FLOAT
        dtype = to_dali_type(dtype) if not isinstance(dtype, DALIDataType) else dtype
        self.dtype = dtype
        self.shape: list[int] = []
        self.value = bool(value) if dtype == BOOL else int(value) if dtype in _INTEGERS else float(value)

    def as_array(self) -> np.ndarray:
        """The value as a 0-d numpy array of its type (how pipestate's arithmetic takes it)."""
        return np.asarray(self.value, dtype=_TO_NUMPY[self.dtype])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScalarConstant):
            return self.value == other.value and self.dtype == other.dtype
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.value, self.dtype))

    def __bool__(self) -> bool:
        if self.dtype in (BOOL, *_INTEGERS):
            return bool(self.value)
        raise TypeError("a float ScalarConstant must be converted to a bool or int type explicitly before bool()")

    def __int__(self) -> int:
        if self.dtype in (BOOL, *_INTEGERS):
            return int(self.value)
        raise TypeError("a float ScalarConstant must be converted to a bool or int type explicitly before int()")

    def __float__(self) -> float:
        if self.dtype in _FLOATS:
            return float(self.value)
        raise TypeError("an integer ScalarConstant must be converted to a float type explicitly before float()")

    def __str__(self) -> str:
        return f"{self.value}:DALIDataType.{self.dtype.name}"

    def __repr__(self) -> str:
        return f"{self.value}"


def _converter(dtype: DALIDataType):  # DALI's .bool(), .int8(), ..., .float64()
    def convert(self: ScalarConstant) -> ScalarConstant:
        return ScalarConstant(self.value, dtype)

    convert.__doc__ = f"The same value as {dtype.name}."
    return convert


for _method, _dtype in {
    "bool": BOOL,
    "int8": INT8,
    "int16": INT16,
    "int32": INT32,
    "int64": INT64,
    "uint8": UINT8,
    "uint16": UINT16,
    "uint32": UINT32,
    "uint64": UINT64,
    "float16": FLOAT16,
    "float32": FLOAT,
    "float64": FLOAT64,
}.items():
    setattr(ScalarConstant, _method, _converter(_dtype))
