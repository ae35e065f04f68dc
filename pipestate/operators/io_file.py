"""``fn.io.file.read``: the bytes of the file whose path each sample names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.readers import _files
from pipestate.operators.schema import Arg


def path_of(sample: np.ndarray, index: int) -> str:
    """Decode a path sample: a 1-D uint8 or int8 array of UTF-8 bytes (``np.frombuffer(path.encode(),
    np.uint8)``; DALI's own tests pass int8).

    Raises:
        TypeError: the sample is not 1-D (u)int8. ValueError: it is empty or not UTF-8 (naming the sample).
    """
    if sample.dtype not in (np.uint8, np.int8) or sample.ndim != 1:
        raise TypeError(
            f"fn.io.file.read(): sample {index} is {sample.dtype} of shape {sample.shape}; a path is a 1-D "
            "uint8 array of UTF-8 bytes: np.frombuffer(path.encode('utf-8'), dtype=np.uint8)"
        )
    raw = sample.tobytes()
    if not raw:
        raise ValueError(f"fn.io.file.read(): sample {index} is an empty path")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"fn.io.file.read(): sample {index} is not a UTF-8 path ({exc})") from None


def _example_files(directory: str) -> dict:
    """The files the example's paths name (deterministic)."""
    os.makedirs(directory, exist_ok=True)
    for i in range(4):
        with open(os.path.join(directory, f"f{i}.bin"), "wb") as f:
            f.write(bytes(range(i * 3, i * 3 + 2 + i)))
    return {}


@register
class FileRead(SampleOperator):
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
    INPUTS = (
        sch.Input(
            "filepaths", "UTF-8 encoded paths, one 1-D uint8 (or int8) array per sample", ("uint8", "int8"), (1,)
        ),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (0,), values=lambda i: np.frombuffer(f"data/f{i % 4}.bin".encode(), np.uint8)),),
        setup=_example_files,
    )
    ARGS = (
        Arg("dont_use_mmap", sch.Bool(), False, "Accepted for DALI compatibility"),
        Arg("use_o_direct", sch.Bool(), False, "Accepted for DALI compatibility (reads go through the page cache)"),
    )

    def validate(self) -> None:
        super().validate()
        if self.args["use_o_direct"] and not self.args["dont_use_mmap"]:
            raise ValueError("fn.io.file.read(): use_o_direct=True needs dont_use_mmap=True (as in DALI)")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        path = path_of(inputs[0], s.index)
        try:
            return np.frombuffer(_files.read_bytes(path, what="fn.io.file.read(): "), dtype=np.uint8)
        except OSError as exc:
            raise type(exc)(exc.errno, f"fn.io.file.read(): cannot read {path!r}: {exc.strerror}", path) from None
