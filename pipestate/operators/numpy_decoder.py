"""``fn.decoders.numpy``: arrays from the bytes of ``.npy`` files."""

from __future__ import annotations

import math

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext, register
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
        raise TypeError(f"fn.decoders.numpy(): sample {index} is {data.dtype} of shape {data.shape}; the input is the "
                        "bytes of a .npy file as a 1-D uint8 array")
    raw = data.tobytes()
    where = f"sample {index}"
    header = parse_header(where, raw[: 12 + MAX_HEADER_BYTES + 1])
    count = math.prod(header.shape)
    need = count * header.dtype.itemsize
    if len(raw) - header.offset < need:
        raise ValueError(f"fn.decoders.numpy(): {where}: the header says {header.shape} {header.dtype} ({need} bytes) "
                         f"but {len(raw) - header.offset} data bytes follow it")
    flat = np.frombuffer(raw, dtype=header.dtype, count=count, offset=header.offset)
    if header.fortran_order:
        return np.ascontiguousarray(flat.reshape(header.shape[::-1]).T)
    return flat.reshape(header.shape).copy()


@register
class NumpyDecoder(Operator):
    """Decode ``.npy`` file contents into arrays (DALI's ``fn.decoders.numpy``).

    Args (inputs):
        data: the bytes of a ``.npy`` file, as a 1-D uint8 array per sample.

    Returns:
        The arrays, with the dtype and shape of each header (or cast to ``dtype``). Without ``dtype`` every
        sample of a batch must have the same element type and number of dimensions.

    Raises:
        TypeError / ValueError: the input is not 1-D uint8, a header is malformed or the data is short
            (naming the sample), or samples differ in dtype or dimensions without ``dtype``.
    """

    type = "decoders.numpy"
    ARGS = (Arg("dtype", sch.DType(), None, "Cast the decoded arrays to this type"),)

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError(f"fn.decoders.numpy() takes one input (the encoded files), got {len(self.inputs)}")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        data = inputs[0]
        arrays = ctx.map(lambda i: decode_npy(np.asarray(data[i]), i), range(len(data)))
        dtype = self.args["dtype"]
        if dtype is not None:
            arrays = [a.astype(dtype, copy=False) for a in arrays]
        elif arrays:
            kinds = {(a.dtype, a.ndim) for a in arrays}
            if len(kinds) > 1:
                raise ValueError(f"fn.decoders.numpy(): the samples differ in dtype or number of dimensions "
                                 f"{sorted((str(d), n) for d, n in kinds)}; give dtype= to cast them to one type")
        return (Batch.from_samples(arrays),)
