"""``fn.readers.caffe``: (image, label) pairs of Caffe ``Datum`` records in LMDB databases."""

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


def parse_datum(raw: bytes, where: str, image: bool, label: bool) -> list[np.ndarray]:
    """Decode a serialized ``caffe.Datum`` into DALI's outputs.

    The image is the ``data`` bytes as 1-D uint8 when encoded, else shaped ``(height, width, channels)``
    (the bytes as stored, as DALI); the label is int32 of shape (1,).

    Raises:
        LMDBError: not a Datum, or a requested field is absent (naming ``where``).
    """
    try:
        datum = caffe_pb2.Datum.FromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise LMDBError(f"{where}: the record is not a caffe.Datum ({exc})") from None
    out = []
    if image:
        if not datum.HasField("data"):
            raise LMDBError(
                f"{where}: the Datum has no image data; pass image_available=False if the database holds none"
            )
        data = np.frombuffer(datum.data, dtype=np.uint8)
        if datum.HasField("encoded") and not datum.encoded:
            shape = (datum.height, datum.width, datum.channels)
            if int(np.prod(shape)) != data.size:
                raise LMDBError(
                    f"{where}: the raw Datum says {shape} (height, width, channels) but holds {data.size} bytes"
                )
            data = data.reshape(shape)
        out.append(data)
    if label:
        if not datum.HasField("label"):
            raise LMDBError(f"{where}: the Datum has no label; pass label_available=False if the database holds none")
        out.append(np.array([datum.label], dtype=np.int32))
    return out


@register
class CaffeReader(LMDBReader):
    """Read Caffe LMDB databases of ``Datum`` records (DALI's ``fn.readers.caffe``), in key order.

    Needs the ``lmdb`` package (``pip install pipestate[lmdb]``).


    Returns:
        (images, labels), or just one of them with ``image_available``/``label_available``: an encoded
        image's bytes as 1-D uint8 (a raw one as ``(height, width, channels)`` uint8), labels as int32 (1,).

    Raises:
        ValueError / TypeError: invalid arguments (at definition); ``LMDBError`` (a ``ValueError``) for a
            damaged or truncated database (at build) or a record that is not a Datum (naming the database
            and key).
        FileNotFoundError: a missing database directory (at build). ImportError: ``lmdb`` is not installed.
    """

    type = "readers.caffe"
    EXAMPLE = Example(
        setup="tests.operators.readers.datasets:caffe",
        args={"stick_to_shard": True, "num_shards": 2},
        dali="test:tests/operators/readers/test_dali_parity_formats.py",
    )
    ARGS = (
        Arg("path", sch.Seq(sch.Path(), min_length=1, broadcast=True), sch.REQUIRED, "The LMDB directory (or list)"),
        Arg("image_available", sch.Bool(), True, "The records hold an image"),
        Arg("label_available", sch.Bool(), True, "The records hold a label"),
        *shard_args(shuffle_after_epoch=False),
    )

    def validate(self) -> None:
        super().validate()
        self.num_outputs = int(self.args["image_available"]) + int(self.args["label_available"])
        if not self.num_outputs:
            raise ValueError("fn.readers.caffe(): image_available=False and label_available=False leave no output")

    def _read(self, indices: list[int]) -> list[list[np.ndarray]]:
        a = self.args
        out = []
        for i, raw in zip(indices, self.source.get_many(indices)):
            out.append(parse_datum(raw, self.source.where(i), a["image_available"], a["label_available"]))
        return out

