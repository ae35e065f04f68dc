"""``fn.io.file.read``: the bytes of the file whose path each sample names."""

from __future__ import annotations

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.readers import _files
from pipestate.operators.schema import Arg


def path_of(sample: np.ndarray, index: int) -> str:
    """Decode a path sample: a 1-D uint8 array of UTF-8 bytes (``np.frombuffer(path.encode(), np.uint8)``).

    Raises:
        TypeError: the sample is not 1-D uint8. ValueError: it is empty or not UTF-8 (naming the sample).
    """
    if sample.dtype != np.uint8 or sample.ndim != 1:
        raise TypeError(f"fn.io.file.read(): sample {index} is {sample.dtype} of shape {sample.shape}; a path is a 1-D "
                        "uint8 array of UTF-8 bytes: np.frombuffer(path.encode('utf-8'), dtype=np.uint8)")
    raw = sample.tobytes()
    if not raw:
        raise ValueError(f"fn.io.file.read(): sample {index} is an empty path")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"fn.io.file.read(): sample {index} is not a UTF-8 path ({exc})") from None


@register
class FileRead(Operator):
    """Read whole files named by a per-sample path (DALI's ``fn.io.file.read``).

    Args (inputs):
        filepaths: 1-D uint8 arrays holding UTF-8 encoded paths.

    Returns:
        Each file's bytes as a 1-D uint8 array.

    Raises:
        FileNotFoundError / PermissionError / IsADirectoryError: naming the file. ValueError: the path is not a
            regular file (a FIFO, a device) or not UTF-8. TypeError: a sample is not 1-D uint8.
    """

    type = "io.file.read"
    ARGS = (
        Arg("dont_use_mmap", sch.Bool(), False, "Accepted for DALI compatibility"),
        Arg("use_o_direct", sch.Bool(), False, "Accepted for DALI compatibility (reads go through the page cache)"),
    )

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError(f"fn.io.file.read() takes one input (the paths), got {len(self.inputs)}")
        if self.args["use_o_direct"] and not self.args["dont_use_mmap"]:
            raise ValueError("fn.io.file.read(): use_o_direct=True needs dont_use_mmap=True (as in DALI)")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        paths = inputs[0]

        def read(i: int) -> np.ndarray:
            path = path_of(np.asarray(paths[i]), i)
            try:
                return np.frombuffer(_files.read_bytes(path, what="fn.io.file.read(): "), dtype=np.uint8)
            except OSError as exc:
                raise type(exc)(exc.errno, f"fn.io.file.read(): cannot read {path!r} (sample {i}): {exc.strerror}",
                                path) from None

        return (Batch(ctx.map(read, range(len(paths)))),)
