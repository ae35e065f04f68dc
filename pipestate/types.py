"""Data types, image types and the per-batch / per-sample info given to external sources.

Names follow ``nvidia.dali.types`` so DALI code reads the same: ``types.FLOAT``, ``types.INT32``,
``types.RGB``, ``types.BatchInfo``, ``types.SampleInfo``.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

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
    to_numpy_dtype,
)
from pipestate.tracing import constant_node


class DALIImageType(enum.IntEnum):
    """Color spaces of decoded images (same member names as DALI's)."""

    RGB = 0
    BGR = 1
    GRAY = 2


RGB = DALIImageType.RGB
BGR = DALIImageType.BGR
GRAY = DALIImageType.GRAY


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
    return constant_node(value, dtype, shape, layout)
