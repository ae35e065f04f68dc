"""``fn.readers.caffe2``: images, labels and extra tensors of Caffe2 ``TensorProtos`` records in LMDB."""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError

from pipestate._proto.pipestate.caffe.v1 import caffe_pb2
from pipestate.operators import schema as sch
from pipestate.operators.base import register
from pipestate.operators.example import Example
from pipestate.operators.readers._base import shard_args
from pipestate.operators.readers._lmdb import LMDBError
from pipestate.operators.readers._lmdb_reader import LMDBReader
from pipestate.operators.schema import Arg

TP = caffe_pb2.TensorProto
SINGLE_LABEL, MULTI_LABEL_SPARSE, MULTI_LABEL_DENSE, MULTI_LABEL_WEIGHTED_SPARSE, NO_LABEL = range(5)
_VALUES = {TP.FLOAT: ("float_data", np.float32), TP.INT32: ("int32_data", np.int32), TP.INT64: ("int64_data", np.int64)}


def _values(proto: caffe_pb2.TensorProto, where: str) -> np.ndarray:
    field, dtype = _VALUES.get(proto.data_type, (None, None))
    if field is None:
        raise LMDBError(f"{where}: unsupported data_type {TP.DataType.Name(proto.data_type)} (float, int32 or int64)")
    return np.asarray(getattr(proto, field), dtype=dtype)


def _proto(protos, index: int, what: str, where: str) -> caffe_pb2.TensorProto:
    if index >= len(protos):
        raise LMDBError(
            f"{where}: the record holds {len(protos)} tensors, the {what} would be tensor {index}; "
            "check image_available, label_type and additional_inputs"
        )
    return protos[index]


def parse_protos(
    raw: bytes, where: str, image: bool, label_type: int, num_labels: int, extra: int, bbox: bool
) -> list[np.ndarray]:
    """Decode a serialized ``caffe2.TensorProtos`` into DALI's outputs (the rules of DALI's Caffe2 parser).

    Raises:
        LMDBError: not a TensorProtos record, or tensors missing or of the wrong type (naming ``where``).
    """
    try:
        protos = caffe_pb2.TensorProtos.FromString(raw).protos
    except (DecodeError, RecursionError) as exc:
        raise LMDBError(f"{where}: the record is not a caffe2.TensorProtos ({exc})") from None
    out, used = [], 0
    if image:
        p = _proto(protos, 0, "image", where)
        if p.data_type == TP.STRING:
            if not p.string_data:
                raise LMDBError(f"{where}: the image tensor (STRING) is empty")
            out.append(np.frombuffer(p.string_data[0], dtype=np.uint8))
        elif p.data_type == TP.BYTE:
            if len(p.dims) < 2:
                raise LMDBError(f"{where}: the raw image tensor (BYTE) needs dims [H, W] or [H, W, C]")
            shape = (int(p.dims[0]), int(p.dims[1]), int(p.dims[2]) if len(p.dims) == 3 else 1)
            data = np.frombuffer(p.byte_data, dtype=np.uint8)
            if data.size != int(np.prod(shape)):
                raise LMDBError(f"{where}: the raw image says {list(shape)} but holds {data.size} bytes")
            out.append(data.reshape(shape))
        else:
            raise LMDBError(f"{where}: the image tensor is {TP.DataType.Name(p.data_type)}, not STRING or BYTE")
        used = 1
    if label_type != NO_LABEL:
        p = _proto(protos, used, "label", where)
        if p.data_type not in (TP.FLOAT, TP.INT32):
            raise LMDBError(f"{where}: unsupported label data_type {TP.DataType.Name(p.data_type)} (float or int32)")
        values = _values(p, where)
        if label_type == SINGLE_LABEL:
            if values.size != 1:
                raise LMDBError(f"{where}: label_type=0 (single label) but the label tensor has {values.size} values")
            out.append(values)
        elif label_type == MULTI_LABEL_DENSE:
            out.append(values)
        else:
            dense = np.zeros(num_labels, dtype=values.dtype if label_type == MULTI_LABEL_SPARSE else np.float32)
            idx = values.astype(np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= num_labels):
                raise LMDBError(f"{where}: a sparse label index is outside [0, num_labels={num_labels})")
            if label_type == MULTI_LABEL_SPARSE:
                dense[idx] = 1
            else:
                weights = _values(_proto(protos, used + 1, "label weights", where), where)
                if weights.size < idx.size:
                    raise LMDBError(f"{where}: {idx.size} sparse labels but {weights.size} weights")
                dense[idx] = weights[: idx.size]
            out.append(dense)
        used += 1
    # DALI's parser starts the additional tensors one further for the sparse label types
    start = used + (1 if label_type in (MULTI_LABEL_SPARSE, MULTI_LABEL_WEIGHTED_SPARSE) else 0)
    for k in range(start, start + extra):
        out.append(_values(_proto(protos, k, f"additional input {k - start}", where), where))
    if bbox:
        if len(protos) == start + extra + 1:
            p = protos[start + extra]
            if p.data_type != TP.INT32 or len(p.int32_data) != 4:
                raise LMDBError(f"{where}: the bounding box tensor must hold 4 int32 values")
            out.append(np.asarray(p.int32_data, dtype=np.int32))
        else:
            out.append(np.zeros(0, dtype=np.int32))
    return out


@register
class Caffe2Reader(LMDBReader):
    """Read Caffe2 LMDB databases of ``TensorProtos`` records (DALI's ``fn.readers.caffe2``), in key order.

    Needs the ``lmdb`` package (``pip install pipestate[lmdb]``).


    Returns:
        In order, as present: the image (an encoded one's bytes as 1-D uint8, a raw one as (H, W, C) uint8),
        the label (per ``label_type``), ``additional_inputs`` tensors, the bounding box (4 int32, with ``bbox``).

    Raises:
        ValueError / TypeError: invalid arguments (at definition); ``LMDBError`` (a ``ValueError``) for a
            damaged or truncated database, or a record whose tensors do not match the arguments (naming the
            database and key).
        FileNotFoundError: a missing database directory (at build). ImportError: ``lmdb`` is not installed.
    """

    type = "readers.caffe2"
    EXAMPLE = Example(
        setup="tests.operators.readers.datasets:caffe2",
        args={"random_shuffle": True, "initial_fill": 3},
        dali="test:tests/operators/readers/test_dali_parity_formats.py",
    )
    ARGS = (
        Arg("path", sch.Seq(sch.Path(), min_length=1, broadcast=True), sch.REQUIRED, "The LMDB directory (or list)"),
        Arg("image_available", sch.Bool(), True, "The records hold an image"),
        Arg(
            "label_type",
            sch.Int(0, 4),
            0,
            "0 single label, 1 sparse multi-label, 2 dense multi-label, 3 weighted sparse, 4 no label",
        ),
        Arg("num_labels", sch.Int(1), 1, "Number of classes (for the sparse label types)"),
        Arg("additional_inputs", sch.Int(0), 0, "Extra tensors per record, output after the label"),
        Arg("bbox", sch.Bool(), False, "The records end with a bounding box (4 int32)"),
        *shard_args(shuffle_after_epoch=False),
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        self.num_outputs = (
            int(a["image_available"]) + int(a["label_type"] != NO_LABEL) + a["additional_inputs"] + int(a["bbox"])
        )
        if not self.num_outputs:
            raise ValueError(
                "fn.readers.caffe2(): no output: image_available=False, label_type=4 (no label), no "
                "additional_inputs and bbox=False"
            )

    def _read(self, indices: list[int]) -> list[list[np.ndarray]]:
        a = self.args
        out = []
        for i, raw in zip(indices, self.source.get_many(indices)):
            out.append(
                parse_protos(
                    raw,
                    self.source.where(i),
                    a["image_available"],
                    a["label_type"],
                    a["num_labels"],
                    a["additional_inputs"],
                    a["bbox"],
                )
            )
        return out

