"""Data types, image types and the per-batch / per-sample info given to external sources.

Names follow ``nvidia.dali.types`` so DALI code reads the same: ``types.FLOAT``, ``types.INT32``,
``types.RGB``, ``types.BatchInfo``, ``types.SampleInfo``, ``types.Constant``, ``types.to_dali_type``,
``types.INTERP_LINEAR``. DALI's names that pipestate lacks are listed, with the reason, in
``tests/test_dali_module_names.py``.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import numpy as np

from pipestate.dtypes import (  # noqa: F401 - DALI's names for the element types
    BOOL,
    FLOAT,
    FLOAT16,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    INT64,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    DALIDataType,
    ScalarConstant,
    to_dali_type,
    to_numpy_dtype,
)
from pipestate.tracing import constant_node


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


def to_numpy_type(dali_type: DALIDataType) -> type:
    """DALI's ``types.to_numpy_type``: the numpy scalar type of ``dali_type`` (``types.UINT8`` -> ``numpy.uint8``).

    Raises:
        TypeError: ``dali_type`` is not a numeric data type.
    """
    return to_numpy_dtype(dali_type).type


class TensorLayout(str):
    """DALI's ``types.TensorLayout``: a layout string such as ``"HWC"``."""


NHWC = "HWC"  # DALI's layout shorthands (the batch dimension is not part of a sample's layout)
NCHW = "CHW"
NFHWC = "FHWC"
NFCHW = "FCHW"
SAME = ""

CPU_ONLY_DEVICE_ID = -99999  # DALI's device_id of a pipeline without a GPU


class PipelineAPIType(enum.Enum):
    """DALI's ``types.PipelineAPIType`` (which of DALI's running APIs a pipeline uses; pipestate has one)."""

    BASIC = 0
    ITERATOR = 1
    SCHEDULED = 2


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


def _scalar_shape(shape: Any) -> bool:
    return shape is None or shape in ((), [], 1, [1], (1,))  # DALI's legacy pseudo-scalars included


def Constant(value, dtype=None, shape=None, layout=None, device=None, **kwargs):  # noqa: N802 - DALI's name
    """DALI's ``types.Constant``.

    A scalar (a number or a 0-d array) without ``shape``, ``layout``, ``device`` or other arguments is a
    :class:`ScalarConstant`: a number with a type, used in arithmetic (``x + types.Constant(1).uint8()``)
    and turned into a constant tensor where an input is expected. Anything else (a list, an array, or a
    scalar with ``shape``/``layout``/``device``) is a constant DataNode holding ``value`` in every sample
    (call it inside a pipeline definition). Python ints become int32 and floats float32 unless ``dtype``
    is given.

    Raises:
        ValueError: ``device`` is not ``"cpu"`` (pipestate runs on the CPU).
        TypeError: ``value`` is not a number or numeric array.
    """
    if device not in (None, "cpu"):
        raise ValueError(f"types.Constant(device={device!r}): pipestate runs on the CPU; use device='cpu'")
    scalar = isinstance(value, (bool, int, float, np.generic)) or (isinstance(value, np.ndarray) and value.ndim == 0)
    if scalar and device is None and layout is None and not kwargs and _scalar_shape(shape):
        return ScalarConstant(value, dtype)
    return ConstantNode(device, value, dtype, shape, layout, **kwargs)


def ConstantNode(device, value, dtype, shape, layout, **kwargs):  # noqa: N802 - DALI's name
    """DALI's ``types.ConstantNode``: a constant DataNode holding ``value`` in every sample.

    Args:
        device: ``None`` or ``"cpu"``.
        value: A number, a list of numbers or a numeric array.
        dtype: The output's data type (default: int32 for Python ints, float32 for floats, the array's own).
        shape: The output's shape (default: the value's).
        layout: The output's layout, e.g. ``"HWC"``.
        **kwargs: Other arguments of ``fn.constant`` (``name``, ...).

    Raises:
        ValueError: ``device`` is not ``"cpu"``.
        TypeError: ``value`` is not a number or numeric array.
    """
    if device not in (None, "cpu"):
        raise ValueError(f"types.ConstantNode(device={device!r}): pipestate runs on the CPU; use device='cpu'")
    return constant_node(value, dtype, shape, layout, **kwargs)


class DALIInterpType(enum.IntEnum):
    """Interpolation methods (DALI's ``types.DALIInterpType``: same members and values)."""

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
