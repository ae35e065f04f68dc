"""``fn.readers.webdataset``: samples of tar archives, grouped by name, one output per extension set."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers import _wds_index as wds
from pipestate.operators.readers._base import Reader, archive_order, shard_args
from pipestate.operators.schema import Arg
from pipestate.rng import derive_key

_DTYPES = frozenset(
    np.dtype(t)
    for t in ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
)
_MISSING = ("", "empty", "skip", "error")
_DEFAULT_ARCHIVE_SEED = 0x5EED_0A2C


@register
class WebdatasetReader(Reader):
    """Read webdataset tar archives (DALI's ``fn.readers.webdataset``), sharded and optionally shuffled.

    A sample is a run of consecutive files of an archive sharing their name up to the first dot; output
    ``k`` holds the bytes of the sample's file whose extension is in ``ext[k]`` (extensions separated by
    ``;``), as a 1-D array of ``dtypes[k]`` (default ``uint8``). Archives are located with DALI's index
    files (``pipestate wds2idx ARCHIVE INDEX``) or scanned at build without them.


    Returns:
        One 1-D array per extension set (a list of DataNodes when there are several).

    Raises:
        ValueError / TypeError: invalid arguments (at definition); ``WebdatasetError`` (a ``ValueError``) for
            a malformed index, a damaged or truncated archive, a component whose size does not fit its
            dtype, or a sample missing a component with ``missing_component_behavior="error"`` (naming the
            file and line or offset).
        FileNotFoundError: a missing archive or index (at build).
    """

    type = "readers.webdataset"
    EXAMPLE = Example(
        setup="tests.operators.readers.datasets:webdataset",
        args={"random_shuffle": True, "initial_fill": 4, "num_shards": 2, "shard_id": 1},
        dali="test:tests/operators/readers/test_dali_parity_formats.py",
    )
    ARCHIVE_ORDER_SHUFFLE = True
    ARGS = (
        Arg("paths", sch.Seq(sch.Path(), min_length=1, broadcast=True), sch.REQUIRED, "The tar archive(s)"),
        Arg(
            "index_paths",
            sch.Seq(sch.Path(), min_length=1, broadcast=True),
            None,
            "One index file per archive (None: scan the archives at build)",
        ),
        Arg(
            "ext",
            sch.Seq(sch.Str(), min_length=1, broadcast=True),
            sch.REQUIRED,
            "The extension set of each output, extensions separated by ';'",
        ),
        Arg(
            "dtypes",
            sch.Seq(sch.DType(), min_length=1, broadcast=True),
            None,
            "The element type of each output (default uint8)",
        ),
        Arg(
            "missing_component_behavior",
            sch.Str(),
            "",
            "What to do when a sample lacks an output's component: 'empty' (default, ''), 'skip' or 'error'",
        ),
        Arg("case_sensitive_extensions", sch.Bool(), True, "Match extensions case-sensitively"),
        Arg(
            "shuffle_after_epoch_seed",
            sch.Int(0, 2**63 - 1),
            None,
            "Seed of the archive-order shuffle of shuffle_after_epoch (default: a fixed seed)",
        ),
        *shard_args(),
    )

    def validate(self) -> None:
        super().validate()
        a, where = self.args, "fn.readers.webdataset()"
        if a["index_paths"] is not None and len(a["index_paths"]) != len(a["paths"]):
            raise ValueError(
                f"{where}: index_paths= has {len(a['index_paths'])} files, paths= has "
                f"{len(a['paths'])}; give one index per archive (or none)"
            )
        behavior = a["missing_component_behavior"].lower()
        if behavior not in _MISSING:
            raise ValueError(
                f"{where}: missing_component_behavior={a['missing_component_behavior']!r} must be one "
                "of 'empty', 'skip', 'error'"
            )
        self.behavior = behavior or "empty"
        fold = (lambda e: e) if a["case_sensitive_extensions"] else str.lower
        self.ext_sets = [{fold(e) for e in spec.split(";")} for spec in a["ext"]]
        self.dtypes = list(a["dtypes"]) if a["dtypes"] is not None else [np.dtype(np.uint8)] * len(self.ext_sets)
        if len(self.dtypes) != len(self.ext_sets):
            raise ValueError(
                f"{where}: dtypes= has {len(self.dtypes)} types for {len(self.ext_sets)} ext= sets; "
                "give one dtype per output"
            )
        for dtype in self.dtypes:
            if dtype not in _DTYPES:
                raise ValueError(f"{where}: dtypes: {dtype} is not supported; use (u)int8..64, float16/32/64")
        self.fold = fold
        self.num_outputs = len(self.ext_sets)

    def discover(self) -> tuple[int, Iterable[bytes]]:
        a = self.args
        ext_map: dict[str, list[int]] = {}
        for k, exts in enumerate(self.ext_sets):
            for e in exts:
                ext_map.setdefault(e, []).append(k)
        nout = self.num_outputs
        comp_file, comp_off, comp_size, comp_out = [], [], [], []  # one row per (component, output)
        sample_start, counts = [0], []
        warned = False
        for f, path in enumerate(a["paths"]):
            if a["index_paths"] is not None:
                src = wds.read_index(a["index_paths"][f], path)
                where = lambda i, f=f, src=src: f"{a['index_paths'][f]}:{int(src.lines[i])}"  # noqa: E731
            else:
                if not os.path.exists(path):
                    raise FileNotFoundError(f"paths: archive {path!r} does not exist")
                src = wds.components_from_samples(wds.scan_tar(path))
                where = lambda i, path=path, src=src: (  # noqa: E731
                    f"{path} at offset {int(src.offsets[src.starts[i]]) if src.starts[i] < len(src.offsets) else 0}"
                )
            kept = 0
            for i in range(len(src.starts) - 1):
                rows = []
                done = [False] * nout
                for c in range(int(src.starts[i]), int(src.starts[i + 1])):
                    for k in ext_map.get(self.fold(src.exts[c]), ()):
                        if done[k]:
                            if not warned:
                                warned = True
                                warnings.warn(
                                    f"fn.readers.webdataset(): several components match output {k} at "
                                    f"{where(i)}; the first one is used",
                                    stacklevel=2,
                                )
                            continue
                        size = int(src.sizes[c])
                        if size % self.dtypes[k].itemsize:
                            raise wds.WebdatasetError(
                                f"{where(i)}: component {src.exts[c]!r} has {size} bytes, not a whole number of "
                                f"{self.dtypes[k]} values (output {k}); check dtypes="
                            )
                        done[k] = True
                        rows.append((f, int(src.offsets[c]), size, k))
                if not all(done):
                    if self.behavior == "skip":
                        continue
                    if self.behavior == "error":
                        missing = [a["ext"][k] for k in range(nout) if not done[k]]
                        raise wds.WebdatasetError(
                            f"{where(i)}: the sample has no component for ext {missing} "
                            "(missing_component_behavior='error')"
                        )
                for f_, off, size, k in rows:
                    comp_file.append(f_)
                    comp_off.append(off)
                    comp_size.append(size)
                    comp_out.append(k)
                sample_start.append(len(comp_out))
                kept += 1
            counts.append(kept)
        if len(sample_start) == 1:
            raise ValueError(f"fn.readers.webdataset(): no samples in {list(a['paths'])} with ext={list(a['ext'])}")
        self.starts = np.asarray(sample_start, dtype=np.int64)
        self.comp = np.stack([np.asarray(x, dtype=np.int64) for x in (comp_file, comp_off, comp_size, comp_out)], 1)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.files = list(a["paths"])
        self.open_files = _files.OpenFiles(self.files, "paths: archive ")
        return len(self.starts) - 1, [self.starts.tobytes(), self.comp.tobytes()]

    def base_order(self, epoch: int) -> np.ndarray | None:
        """With ``shuffle_after_epoch``, the archives are visited in a new order each epoch (as DALI 2.4)."""
        a = self.args
        if not a["shuffle_after_epoch"]:
            return None
        seed = a["shuffle_after_epoch_seed"]
        return archive_order(
            self.counts, derive_key("archive-order", _DEFAULT_ARCHIVE_SEED if seed is None else seed), epoch
        )

    def _read(self, indices: list[int]) -> list[list[np.ndarray]]:
        out = []
        empty = [np.zeros(0, dtype=d) for d in self.dtypes]
        for i in indices:
            sample = list(empty)
            for f, off, size, k in self.comp[self.starts[i] : self.starts[i + 1]].tolist():
                data = os.pread(self.open_files.fd(f), size, off)
                if len(data) != size:
                    raise wds.WebdatasetError(
                        f"{self.files[f]}: the component at offset {off} is truncated ({len(data)} of {size} bytes)"
                    )
                sample[k] = np.frombuffer(data, dtype=self.dtypes[k])
            out.append(sample)
        return out

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        samples = self.read_chunks(ctx, self._read, indices)
        return tuple(Batch([s[k] for s in samples]) for k in range(self.num_outputs))

    def close(self) -> None:
        """Close the archives."""
        open_files = getattr(self, "open_files", None)
        if open_files is not None:
            open_files.close()
