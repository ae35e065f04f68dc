"""``fn.readers.file``: whole files as 1-D uint8 arrays, with int32 labels of shape (1,)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers._base import SHARD_ARGS, Reader
from pipestate.operators.readers._path_table import PathTable
from pipestate.operators.schema import Arg


def read_samples(paths: list[str], where: Callable[[int], str] | None, indices: list[int]) -> list[np.ndarray]:
    """Read the files ``paths[i]`` for ``i`` in ``indices`` as uint8 arrays.

    Raises:
        FileNotFoundError / PermissionError / IsADirectoryError: naming the file (and, from ``where(i)``,
            its ``file_list`` line when it came from one).
        ValueError: the path is not a regular file (a FIFO, a device), named likewise.
    """
    out = []
    for i in indices:
        try:
            data = _files.read_bytes(paths[i])
        except OSError as exc:
            origin = f" (listed at {where(i)})" if where else ""
            raise type(exc)(exc.errno, f"cannot read {paths[i]!r}{origin}: {exc.strerror}") from None
        except ValueError as exc:  # not a regular file
            raise ValueError(f"{exc}{f' (listed at {where(i)})' if where else ''}") from None
        out.append(np.frombuffer(data, dtype=np.uint8))
    return out


def _example_files(directory: str) -> dict:
    """A small class-directory dataset for the operator's example (deterministic)."""
    for label in range(3):
        os.makedirs(os.path.join(directory, f"c{label}"), exist_ok=True)
        for i in range(4 + label):
            with open(os.path.join(directory, f"c{label}", f"{i}.bin"), "wb") as f:
                f.write(bytes((label * 16 + i + k) % 256 for k in range(3 + i)))
    return {"file_root": directory, "file_filters": "*.bin"}


@register
class FileReader(Reader):
    """Read whole files, with a label each, sharded and optionally shuffled (DALI's ``fn.readers.file``).

    Exactly one source of files: ``file_root`` alone (one sub-directory per class, labels in sorted
    sub-directory order), ``file_list`` (lines of ``relative/path label``), or ``files`` (+ ``labels``).


    Returns:
        (file contents as 1-D uint8 arrays, labels as int32 arrays of shape (1,)).

    Raises:
        ValueError / TypeError: invalid or conflicting arguments (at definition), an empty listing or a
            malformed ``file_list`` line (at build).
        FileNotFoundError: a missing ``file_root`` or ``file_list`` (at build); a missing file is reported
            when it is read, naming it and its ``file_list`` line.
    """

    type = "readers.file"
    EXAMPLE = Example(
        setup=_example_files,
        args={"random_shuffle": True, "initial_fill": 4},
        dali="test:tests/operators/readers/test_dali_parity.py",
    )
    ARGS = (
        Arg("file_root", sch.Path(), None, "Directory of class sub-directories, or the base of relative paths"),
        Arg("file_list", sch.Path(), None, "Text file with one 'path label' per line"),
        Arg("files", sch.Seq(sch.Path(), min_length=1), None, "List of file paths"),
        Arg("labels", sch.Seq(sch.Int(-(2**31), 2**31 - 1)), None, "One int32 label per entry of files"),
        Arg(
            "file_filters",
            sch.Seq(sch.Str(), min_length=1, broadcast=True),
            _files.DEFAULT_FILE_FILTERS,
            "Glob(s) a file name must match when listing file_root",
        ),
        Arg("case_sensitive_filter", sch.Bool(), False, "Match file_filters case-sensitively"),
        *SHARD_ARGS,
    )

    def validate(self) -> None:
        super().validate()
        self.num_outputs = 2
        a, where = self.args, "fn.readers.file()"
        _files.check_sources(a, where)
        if a["labels"] is not None:
            if a["files"] is None:
                raise ValueError(f"{where}: labels= goes with files=; file_list= lines carry their own labels")
            if len(a["labels"]) != len(a["files"]):
                raise ValueError(f"{where}: labels= has {len(a['labels'])} entries but files= has {len(a['files'])}")

    def discover(self) -> tuple[int, Iterable[bytes]]:
        a = self.args
        self.where: Callable[[int], str] | None = None
        if a["files"] is not None:
            root = a["file_root"]
            paths = [os.path.join(root, f) if root is not None else f for f in a["files"]]
            labels = a["labels"] if a["labels"] is not None else list(range(len(paths)))
        elif a["file_list"] is not None:
            paths, labels, lines = _files.parse_file_list(a["file_list"], a["file_root"], with_labels=True)
            self.where = lambda i, list_path=a["file_list"]: f"{list_path}:{lines[i]}"  # formatted on error only
        else:
            paths, labels = _files.list_class_dirs(a["file_root"], a["file_filters"], a["case_sensitive_filter"])
        self.paths = PathTable.of(paths)
        self.labels = np.asarray(labels, dtype=np.int32).reshape(-1, 1)
        return len(self.paths), [self.paths.blob, self.labels.tobytes()]

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        samples = self.read_chunks(ctx, lambda chunk: read_samples(self.paths, self.where, chunk), indices)
        sources = [self.paths[i] for i in indices]  # DALI's source_info: the file each sample came from
        return Batch(samples, sources=sources), Batch(self.labels[indices], sources=sources)
