"""Writers for the reader tests: webdataset tars, MXNet RecordIO, Caffe/Caffe2 LMDBs, NeMo manifests, frame
directories. Each sample carries its index so a test can tell which sample a reader returned."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile

import numpy as np

RECORDIO_MAGIC = 0xCED7230A


def write_tar(path: str, members: list[tuple[str, bytes]]) -> str:
    """Write a tar archive of regular files ``(name, data)``, in order."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def wds_members(start: int, count: int, exts: tuple[str, ...] = ("jpg", "cls")) -> list[tuple[str, bytes]]:
    """Samples ``start .. start + count - 1``: ``cls`` holds the index as text, ``jpg`` 4..12 bytes of it."""
    out = []
    for i in range(start, start + count):
        for ext in exts:
            data = str(i).encode() if ext == "cls" else i.to_bytes(4, "little") * (1 + i % 3)
            out.append((f"{i:06d}.{ext}", data))
    return out


def recordio_record(payload: bytes) -> bytes:
    """One RecordIO record as dmlc's writer frames it: split at 4-aligned embedded magic numbers."""
    magic = struct.pack("<I", RECORDIO_MAGIC)
    cuts = [i for i in range(0, len(payload) - 3, 4) if payload[i : i + 4] == magic]
    pieces, start = [], 0
    for c in cuts:
        pieces.append(payload[start:c])
        start = c + 4
    pieces.append(payload[start:])
    out = []
    for k, piece in enumerate(pieces):
        cflag = 0 if len(pieces) == 1 else (1 if k == 0 else (3 if k == len(pieces) - 1 else 2))
        out.append(struct.pack("<II", RECORDIO_MAGIC, (cflag << 29) | len(piece)) + piece + b"\0" * (-len(piece) % 4))
    return b"".join(out)


def image_record(index: int, labels: list[float] | None = None, image: bytes | None = None) -> bytes:
    """An MXNet image record payload: IRHeader (flag, label, id, id2), optional labels, image bytes."""
    image = image if image is not None else index.to_bytes(4, "little") * (1 + index % 3)
    if labels is None:
        return struct.pack("<IfQQ", 0, float(index), index, 0) + image
    return struct.pack("<IfQQ", len(labels), 0.0, index, 0) + np.asarray(labels, np.float32).tobytes() + image


def write_recordio(paths: list[str], index_path: str, payloads: list[bytes], per_file: list[int]) -> None:
    """Write ``payloads`` over ``paths`` (``per_file`` records each) and one ``key\\toffset`` index."""
    lines, base, k = [], 0, 0
    for path, n in zip(paths, per_file):
        with open(path, "wb") as f:
            for _ in range(n):
                lines.append(f"{k}\t{base + f.tell()}\n")
                f.write(recordio_record(payloads[k]))
                k += 1
            base += f.tell()
    with open(index_path, "w") as f:
        f.writelines(lines)


def write_manifest(path: str, entries: list[dict]) -> str:
    """A NeMo manifest: one JSON object per line."""
    with open(path, "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in entries)
    return path


def makedirs(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def write_lmdb(path: str, values: list[bytes], keys: list[bytes] | None = None) -> str:
    """An LMDB database of ``values`` under ``keys`` (default: zero-padded indices, so key order = index)."""
    import lmdb

    env = lmdb.open(path, map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k, v in enumerate(values):
            txn.put(keys[k] if keys else b"%08d" % k, v)
    env.close()
    return path


def caffe_datum(index: int, encoded: bool = True) -> bytes:
    """A caffe.Datum: encoded bytes (or a raw 2x3x1 image) identifying ``index``, label ``index``."""
    from pipestate._proto.pipestate.caffe.v1 import caffe_pb2

    d = caffe_pb2.Datum(label=index)
    if encoded:
        d.data, d.encoded = index.to_bytes(4, "little") * (1 + index % 3), True
    else:
        d.data, d.encoded, d.height, d.width, d.channels = bytes([index % 256] * 6), False, 2, 3, 1
    return d.SerializeToString()


def caffe2_protos(index: int, label_type: int = 0, extra: int = 0, bbox: bool = False, raw: bool = False) -> bytes:
    """A caffe2.TensorProtos record: image identifying ``index``, a label per ``label_type``, extras, bbox."""
    from pipestate._proto.pipestate.caffe.v1 import caffe_pb2

    tp = caffe_pb2.TensorProto
    protos = caffe_pb2.TensorProtos()
    img = protos.protos.add()
    if raw:
        img.data_type, img.byte_data = tp.BYTE, bytes([index % 256] * 12)
        img.dims.extend([2, 2, 3])
    else:
        img.data_type = tp.STRING
        img.string_data.append(index.to_bytes(4, "little") * (1 + index % 3))
    if label_type != 4:
        lab = protos.protos.add()
        lab.data_type = tp.INT32
        lab.int32_data.extend([index] if label_type == 0 else [index % 5, (index + 2) % 5])
        if label_type == 3:
            w = protos.protos.add()
            w.data_type = tp.FLOAT
            w.float_data.extend([0.5, 0.25])
    for e in range(extra):
        t = protos.protos.add()
        t.data_type = tp.FLOAT if e % 2 == 0 else tp.INT64
        (t.float_data if e % 2 == 0 else t.int64_data).extend([index, e])
    if bbox:
        b = protos.protos.add()
        b.data_type = tp.INT32
        b.int32_data.extend([index, 1, 2, 3])
    return protos.SerializeToString()
