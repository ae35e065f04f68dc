"""``fn.readers.numpy``: arrays from ``.npy`` files, dtype and shape from each file's header."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import BuildEnv, RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers._base import SHARD_ARGS, Reader
from pipestate.operators.readers._npy_header import parse_header_dict
from pipestate.operators.readers._path_table import PathTable
from pipestate.operators.schema import Arg

_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 1 << 16
"""Longest ``.npy`` header read (version 1 headers cannot be longer; numpy itself stops at 10,000)."""


class NpyHeader(NamedTuple):
    """What a ``.npy`` header says: element type, shape, Fortran order, and where the data starts."""

    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int


def parse_header(path: str, head: bytes) -> NpyHeader:
    """Parse the header at the start of a ``.npy`` file (``head`` holds at least its first bytes).

    Raises:
        ValueError: not a ``.npy`` file, an unsupported version, a header longer than
            :data:`MAX_HEADER_BYTES`, negative dimensions, or an object/structured dtype.
    """
    if not head.startswith(_MAGIC) or len(head) < 10:
        raise ValueError(f"{path!r} is not a .npy file (bad magic)")
    major = head[6]
    if major == 1:
        size, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3):
        size, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise ValueError(f"{path!r}: .npy format version {major}.{head[7]} is not supported")
    if size > MAX_HEADER_BYTES:
        raise ValueError(
            f"{path!r}: the .npy header claims {size} bytes, more than {MAX_HEADER_BYTES}; the file "
            "is damaged or not a .npy file"
        )
    if len(head) < start + size:
        raise ValueError(f"{path!r}: the .npy header is truncated")
    try:
        # not numpy's ast.literal_eval: it is not thread-safe on Python 3.11, and workers parse headers
        meta = parse_header_dict(head[start : start + size].decode("latin1" if major < 3 else "utf8"))
        dtype = np.dtype(meta["descr"])
        shape = tuple(int(d) for d in meta["shape"])
        fortran = bool(meta["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{path!r}: malformed .npy header: {exc}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{path!r}: the .npy header has negative dimensions {shape}")
    if dtype.hasobject or dtype.names is not None:
        raise ValueError(f"{path!r}: dtype {dtype} is not supported (object or structured arrays)")
    return NpyHeader(dtype, shape, fortran, start + size)


def read_npy(path: str, headers: dict[str, NpyHeader]) -> np.ndarray:
    """Read the array in ``path`` in C order; ``headers`` caches parsed headers by path.

    The data is read with ``readinto`` straight into the result: one copy from the page cache and no
    intermediate bytes object (a memory map would need the same copy, since a batch owns its data).

    Raises:
        FileNotFoundError / PermissionError: naming the file. ValueError: a damaged or truncated file, a
            header claiming more data than the file holds, or not a regular file (a FIFO, a device).
    """
    with open(_files.open_regular(path), "rb", buffering=0) as f:
        header = headers.get(path)
        if header is None:
            head = f.read(12)
            if len(head) == 12 and head.startswith(_MAGIC):
                size = (
                    int.from_bytes(head[8:10], "little") - 2 if head[6] == 1 else int.from_bytes(head[8:12], "little")
                )
                head += f.read(min(size, MAX_HEADER_BYTES + 1))  # parse_header refuses longer ones
            header = headers[path] = parse_header(path, head)
        file_size = os.fstat(f.fileno()).st_size
        nbytes = math.prod(header.shape) * header.dtype.itemsize  # Python ints: no overflow
        if nbytes > file_size - header.offset:
            raise ValueError(
                f"{path!r}: the .npy header claims shape {header.shape} {header.dtype} ({nbytes} data bytes), "
                f"but the file holds {max(file_size - header.offset, 0)} data bytes; it is truncated or damaged"
            )
        f.seek(header.offset)
        try:
            arr = np.empty(header.shape[::-1] if header.fortran_order else header.shape, header.dtype)
        except (ValueError, MemoryError) as exc:
            raise ValueError(f"{path!r}: cannot hold shape {header.shape} {header.dtype}: {exc}") from None
        view = memoryview(arr.reshape(-1).view(np.uint8))
        got = 0
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                raise ValueError(
                    f"{path!r} is truncated: {got} of {len(view)} data bytes for shape {header.shape} {header.dtype}"
                )
            got += n
    return np.ascontiguousarray(arr.T) if header.fortran_order else arr


def read_chunk(paths: list[str], headers: dict[str, NpyHeader], indices: list[int]) -> list[np.ndarray]:
    """Read the arrays ``paths[i]`` for ``i`` in ``indices``, naming the file in any error."""
    out = []
    for i in indices:
        try:
            out.append(read_npy(paths[i], headers))
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot read {paths[i]!r}: {exc.strerror}") from None
    return out


def _example_files(directory: str) -> dict:
    """A few small .npy files for the operator's example (deterministic, ragged shapes)."""
    os.makedirs(directory, exist_ok=True)
    for i in range(7):
        np.save(os.path.join(directory, f"{i}.npy"), np.arange((i % 3 + 1) * 2, dtype=np.float32).reshape(-1, 2) - i)
    return {"file_root": directory}


@register
class NumpyReader(Reader):
    """Read ``.npy`` files as arrays (DALI's ``fn.readers.numpy``), sharded and optionally shuffled.


    Returns:
        The arrays, with the dtype and shape of each file's header (C order).

    Raises:
        ValueError / TypeError: invalid arguments or an empty listing; a file that is not ``.npy``, is
            truncated or holds an object array (when read, naming it).
        FileNotFoundError: a missing ``file_root``/``file_list`` (at build) or file (when read).
    """

    type = "readers.numpy"
    EXAMPLE = Example(
        setup=_example_files,
        args={"shuffle_after_epoch": True},
        dali="test:tests/operators/readers/test_dali_parity.py",
    )
    ARGS = (
        Arg("file_root", sch.Path(), None, "Directory to list (recursively), or the base of relative paths"),
        Arg("files", sch.Seq(sch.Path(), min_length=1), None, "List of .npy file paths"),
        Arg("file_list", sch.Path(), None, "Text file with one path per line"),
        Arg(
            "file_filter",
            sch.Seq(sch.Str(), min_length=1, broadcast=True),
            ("*.npy",),
            "Glob(s) a file name must match when listing file_root",
        ),
        Arg("case_sensitive_filter", sch.Bool(), False, "Match file_filter case-sensitively"),
        *SHARD_ARGS,
    )

    def validate(self) -> None:
        super().validate()
        a, where = self.args, "fn.readers.numpy()"
        _files.check_sources(a, where)

    def setup(self, env: BuildEnv) -> None:
        super().setup(env)
        self.headers: dict[str, NpyHeader] = {}

    def discover(self) -> tuple[int, Iterable[bytes]]:
        a = self.args
        root = a["file_root"]
        if a["files"] is not None:
            paths = [os.path.join(root, f) if root is not None else f for f in a["files"]]
        elif a["file_list"] is not None:
            paths, _, _ = _files.parse_file_list(a["file_list"], root, with_labels=False)
        else:
            paths = _files.list_tree(root, a["file_filter"], a["case_sensitive_filter"])
        self.paths = PathTable.of(paths)
        return len(self.paths), [self.paths.blob]

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        samples = self.read_chunks(ctx, lambda chunk: read_chunk(self.paths, self.headers, chunk), indices)
        paths = [self.paths[i] for i in indices]
        for path, sample in zip(paths[1:], samples[1:]):
            if sample.dtype != samples[0].dtype or sample.ndim != samples[0].ndim:
                raise ValueError(
                    f"all samples of a batch must have one data type and number of dimensions (as in DALI): "
                    f"{paths[0]!r} is {samples[0].dtype} with {samples[0].ndim} dims, {path!r} is {sample.dtype} "
                    f"with {sample.ndim} dims; keep such files in separate readers or use batch_size=1"
                )
        return (Batch(samples, sources=paths),)
