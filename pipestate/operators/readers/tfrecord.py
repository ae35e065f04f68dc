"""``fn.readers.tfrecord``: ``tf.train.Example`` records from TFRecord files, without TensorFlow."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np
from google.protobuf.message import DecodeError

from pipestate import tfrecord as tfr
from pipestate._proto.pipestate.tfrecord.v1 import example_pb2
from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example
from pipestate.operators.readers import _files
from pipestate.operators.readers._base import SHARD_ARGS, Reader
from pipestate.operators.schema import Arg

_KINDS = {tfr.int64: "int64_list", tfr.float32: "float_list", tfr.string: "bytes_list"}


def _default(spec: tfr.FixedLenFeature | tfr.VarLenFeature, name: str) -> np.ndarray | None:
    """The feature's default value as an output array (``None`` when it has none)."""
    value = spec.default_value
    if value is None:
        return None
    if spec.dtype == tfr.string:
        data = value.encode() if isinstance(value, str) else bytes(value)
        return np.frombuffer(data, dtype=np.uint8).copy()
    arr = np.asarray(value, dtype=tfr._DTYPES[spec.dtype])
    if isinstance(spec, tfr.VarLenFeature):
        return arr.reshape(-1)
    if arr.size == 1:
        return np.full(spec.shape, arr.reshape(-1)[0], dtype=arr.dtype)
    if arr.size != math.prod(spec.shape):
        raise ValueError(
            f"fn.readers.tfrecord(): feature {name!r}: default_value has {arr.size} values, shape "
            f"{list(spec.shape)} needs {math.prod(spec.shape)}"
        )
    return arr.reshape(spec.shape)


def _example_files(directory: str) -> dict:
    """A small TFRecord file with its index for the operator's example (deterministic)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "data.tfrecord")
    records = []
    for i in range(9):
        ex = example_pb2.Example()
        ex.features.feature["x"].int64_list.value.extend([i, i * i])
        ex.features.feature["s"].bytes_list.value.append(bytes(range(i % 4 + 1)))
        records.append(ex.SerializeToString())
    tfr.write_records(path, records)
    tfr.tfrecord2idx(path, path + ".idx")
    features = {"x": tfr.FixedLenFeature([2], tfr.int64, 0), "s": tfr.FixedLenFeature((), tfr.string, "")}
    return {"path": path, "index_path": path + ".idx", "features": features}


@register
class TFRecordReader(Reader):
    """Read ``tf.train.Example`` records (DALI's ``fn.readers.tfrecord``), sharded and optionally shuffled.

    Records are located with index files (``pipestate tfrecord2idx FILE INDEX``, the same format as
    DALI's ``tfrecord2idx``) and every record's CRC-32C checksums are verified.


    Returns:
        A dict ``{feature name: DataNode}``: int64/float32 arrays (FixedLen: the given shape, VarLen: 1-D),
        and a 1-D uint8 array of the bytes for ``string`` features.

    Raises:
        ValueError / TypeError: invalid arguments (at definition); a malformed index or a damaged record
            (``TFRecordError``, naming the file and offset); a missing feature without default, a wrong
            value type or count (naming the feature, file and record).
        FileNotFoundError: a missing TFRecord or index file (at build).
    """

    type = "readers.tfrecord"
    EXAMPLE = Example(
        setup=_example_files,
        args={"random_shuffle": True, "initial_fill": 3},
        dali="test:tests/operators/readers/test_dali_parity.py",
    )
    ARGS = (
        Arg(
            "path",
            sch.Seq(sch.Path(), min_length=1, broadcast=True),
            sch.REQUIRED,
            "A TFRecord file or a list of them",
            positional=True,
        ),
        Arg(
            "index_path",
            sch.Seq(sch.Path(), min_length=1, broadcast=True),
            None,
            "The index file(s), one per path (None: scan the files at build)",
            positional=True,
        ),
        Arg(
            "features",
            sch.Anything("a dict {name: FixedLenFeature | VarLenFeature}"),
            sch.REQUIRED,
            "The features to parse",
            positional=True,
        ),
        *SHARD_ARGS,
    )

    def validate(self) -> None:
        super().validate()
        a, where = self.args, "fn.readers.tfrecord()"
        if a["index_path"] is not None:
            if len(a["index_path"]) != len(a["path"]):
                raise ValueError(
                    f"{where}: index_path= has {len(a['index_path'])} files, path= has {len(a['path'])}; "
                    "give one index per TFRecord file"
                )
        features = a["features"]
        if not isinstance(features, dict) or not features:
            raise TypeError(f"{where}: features= must be a non-empty dict {{name: FixedLenFeature/VarLenFeature}}")
        for name, spec in features.items():
            if not isinstance(name, str) or not isinstance(spec, (tfr.FixedLenFeature, tfr.VarLenFeature)):
                raise TypeError(
                    f"{where}: features[{name!r}] must be pipestate.tfrecord.FixedLenFeature or VarLenFeature"
                )
            if isinstance(spec, tfr.FixedLenFeature) and spec.dtype == tfr.string and math.prod(spec.shape) != 1:
                raise ValueError(f"{where}: string feature {name!r} holds one value: use shape=[]")
        self.names = list(features)
        self.specs = [features[n] for n in self.names]
        self.defaults = [_default(spec, n) for n, spec in zip(self.names, self.specs, strict=True)]
        self.num_outputs = len(self.names)

    def user_outputs(self, outputs: list[DataNode]) -> dict[str, DataNode]:
        """``fn.readers.tfrecord`` returns ``{feature name: DataNode}``, as DALI."""
        return dict(zip(self.names, outputs, strict=True))

    def discover(self) -> tuple[int, Iterable[bytes]]:
        paths, indexes = self.args["path"], self.args["index_path"]
        records: list[tuple[int, int, int]] = []
        for k, path in enumerate(paths):
            if not os.path.exists(path):
                raise FileNotFoundError(f"path: TFRecord file {path!r} does not exist")
            entries = tfr.read_index(indexes[k], path) if indexes is not None else list(tfr.scan(path))
            records += [(k, offset, size) for offset, size in entries]
        if not records:
            raise ValueError(f"fn.readers.tfrecord(): no records in {paths}")
        self.records = np.asarray(records, dtype=np.int64)
        self.files = paths
        self.open_files = _files.OpenFiles(self.files, "TFRecord file ")
        return len(records), ["\0".join(paths).encode(), self.records.tobytes()]

    def _parse(self, index: int) -> list[np.ndarray]:
        k, offset, size = (int(v) for v in self.records[index])
        path = self.files[k]
        raw = os.pread(self.open_files.fd(k), size, offset)
        data = tfr.parse_record(raw, path, offset)
        try:
            example = example_pb2.Example.FromString(data)
        except (DecodeError, RecursionError) as exc:
            raise tfr.TFRecordError(
                f"{path}: the record at offset {offset} is not a tf.train.Example ({exc}); its checksum is "
                "valid, so the file was written with another message type"
            ) from None
        features = example.features.feature
        out = []
        for name, spec, default in zip(self.names, self.specs, self.defaults, strict=True):
            where = f"feature {name!r} of the record at offset {offset} of {path}"
            if name not in features:
                if default is not None:
                    out.append(default)
                elif isinstance(spec, tfr.VarLenFeature):
                    out.append(np.zeros(0, dtype=tfr._DTYPES[spec.dtype]))
                else:
                    raise ValueError(f"{where} is missing and has no default_value")
                continue
            feature = features[name]
            kind = feature.WhichOneof("kind")
            if kind != _KINDS[spec.dtype]:
                raise ValueError(f"{where} is a {kind}, the spec says {spec.dtype}")
            values = getattr(feature, kind).value
            if spec.dtype == tfr.string:
                if len(values) > 1:
                    raise ValueError(f"{where} holds {len(values)} strings; string features hold one")
                out.append(np.frombuffer(values[0] if values else b"", dtype=np.uint8))
                continue
            arr = np.array(values, dtype=tfr._DTYPES[spec.dtype])
            if isinstance(spec, tfr.FixedLenFeature):
                if arr.size != math.prod(spec.shape):
                    raise ValueError(
                        f"{where} has {arr.size} values; shape {list(spec.shape)} needs {math.prod(spec.shape)}"
                    )
                arr = arr.reshape(spec.shape)
            out.append(arr)
        return out

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        samples = [self._parse(i) for i in indices]
        return tuple(Batch.from_samples([s[f] for s in samples]) for f in range(len(self.names)))

    def close(self) -> None:
        """Close the TFRecord files."""
        open_files = getattr(self, "open_files", None)
        if open_files is not None:
            open_files.close()
