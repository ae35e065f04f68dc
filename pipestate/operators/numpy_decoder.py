"""``fn.decoders.numpy``: arrays from the bytes of ``.npy`` files."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.readers.numpy import MAX_HEADER_BYTES, parse_header
from pipestate.operators.schema import Arg


def decode_npy(data: np.ndarray, index: int) -> np.ndarray:
    """Decode one serialized ``.npy`` file (1-D uint8) into a C-ordered array (a Fortran-ordered one is
    transposed into C order, as DALI).

    Raises:
        TypeError: the sample is not 1-D uint8. ValueError: not ``.npy`` data, an unsupported header, or fewer
            data bytes than the header's shape needs (naming the sample).
    """
    if data.dtype != np.uint8 or data.ndim != 1:
        raise TypeError(
            f"fn.decoders.numpy(): sample {index} is {data.dtype} of shape {data.shape}; the input is the "
            "bytes of a .npy file as a 1-D uint8 array"
        )
    raw = data.tobytes()
    where = f"sample {index}"
    header = parse_header(where, raw[: 12 + MAX_HEADER_BYTES + 1])
    count = math.prod(header.shape)
    need = count * header.dtype.itemsize
    if len(raw) - header.offset < need:
        raise ValueError(
            f"fn.decoders.numpy(): {where}: the header says {header.shape} {header.dtype} ({need} bytes) "
            f"but {len(raw) - header.offset} data bytes follow it"
        )
    flat = np.frombuffer(raw, dtype=header.dtype, count=count, offset=header.offset)
    if header.fortran_order:
        return np.ascontiguousarray(flat.reshape(header.shape[::-1]).T)
    return flat.reshape(header.shape).copy()


def _example_npy(index: int) -> np.ndarray:
    """A serialized .npy file (ragged shapes, both memory orders) for the operator's example."""
    import io

    array = np.arange(6 + 2 * (index % 3), dtype=np.int16).reshape(2, -1)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asfortranarray(array) if index % 2 else array, allow_pickle=False)
    return np.frombuffer(buffer.getvalue(), np.uint8)


@register
class NumpyDecoder(SampleOperator):
    """Decode ``.npy`` file contents into arrays (DALI's ``fn.decoders.numpy``).

    Args (inputs):
        data: the bytes of a ``.npy`` file, as a 1-D uint8 array per sample.

    Returns:
        The arrays, with the dtype and shape of each header (or cast to ``dtype``). Every sample of a batch
        must have the same element type (give ``dtype`` to cast) and number of dimensions.

    Raises:
        TypeError / ValueError: the input is not 1-D uint8, a header is malformed or the data is short
            (naming the sample), or samples differ in dtype or dimensions without ``dtype``.
    """

    type = "decoders.numpy"
    INPUTS = (sch.Input("data", "The bytes of a .npy file, one 1-D uint8 array per sample", ("uint8",), (1,)),)
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (0,), values=_example_npy),),
        dali="none: DALI 2.4's CPU decoders.numpy needs CUDA; the tests compare with numpy.load instead",
    )
    ARGS = (Arg("dtype", sch.DType(), None, "Cast the decoded arrays to this type"),)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        array = decode_npy(inputs[0], s.index)
        return array if args["dtype"] is None else array.astype(args["dtype"], copy=False)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""
