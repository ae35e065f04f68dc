"""fn.readers.tfrecord and pipestate.tfrecord: parsing against TensorFlow, DALI-compatible indexes,
CRC checks, checkpoints and errors."""

from __future__ import annotations

import functools
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from pipestate import tfrecord as tfr
from pipestate._proto.pipestate.tfrecord.v1 import example_pb2
from pipestate.testing import assert_equal_output_after_checkpoint

FEATURES = {
    "label": tfr.FixedLenFeature([], tfr.int64, -1),
    "vec": tfr.FixedLenFeature([2, 3], tfr.float32),
    "ids": tfr.VarLenFeature(tfr.int64),
    "name": tfr.FixedLenFeature([], tfr.string, ""),
}


def example(i: int) -> bytes:
    ex = example_pb2.Example()
    f = ex.features.feature
    if i % 4:
        f["label"].int64_list.value.append(i)
    f["vec"].float_list.value.extend([i + 0.5 * k for k in range(6)])
    f["ids"].int64_list.value.extend(range(i % 3))
    f["name"].bytes_list.value.append(f"n{i}".encode())
    return ex.SerializeToString()


def frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", tfr.masked_crc32c(length)) + data + struct.pack("<I", tfr.masked_crc32c(data))


@pytest.fixture
def records(tmp_path) -> tuple[str, str]:
    path = os.fspath(tmp_path / "data.tfrecord")
    with open(path, "wb") as f:
        for i in range(11):
            f.write(frame(example(i)))
    index = os.fspath(tmp_path / "data.idx")
    assert tfr.tfrecord2idx(path, index) == 11
    return path, index


@pipeline_def(batch_size=3, seed=2, num_threads=1, enable_checkpointing=True)
def tf_pipe(path, index, features=FEATURES, **kw):
    out = fn.readers.tfrecord(path=path, index_path=index, features=features, name="r", **kw)
    return tuple(out[k] for k in features)


def test_reads_features(records) -> None:
    path, index = records
    pipe = tf_pipe(path, index, batch_size=4)
    label, vec, ids, name = pipe.run()
    assert [int(v) for v in label] == [-1, 1, 2, 3]
    assert np.asarray(vec).shape == (4, 2, 3) and np.asarray(vec).dtype == np.float32
    assert (vec[1] == np.arange(6).reshape(2, 3) * 0.5 + 1).all()
    assert [list(v) for v in ids] == [[], [0], [0, 1], []]
    assert [bytes(v) for v in name] == [b"n0", b"n1", b"n2", b"n3"]
    assert pipe.reader_meta("r")["epoch_size"] == 11
    same = tf_pipe(path, None, batch_size=4)  # no index: records found by scanning
    assert [bytes(v) for v in same.run()[3]] == [b"n0", b"n1", b"n2", b"n3"]


def test_checkpoints(records) -> None:
    path, index = records
    make = functools.partial(tf_pipe, path, index, random_shuffle=True, initial_fill=4)
    assert_equal_output_after_checkpoint(make, steps=9)


def test_index_matches_dalis_tfrecord2idx(records, tmp_path) -> None:
    script = shutil.which("tfrecord2idx") or os.path.join(os.path.dirname(sys.executable), "tfrecord2idx")
    if not os.path.exists(script):
        pytest.skip("DALI's tfrecord2idx script is not installed (pip install nvidia-dali-cuda120)")
    path, index = records
    theirs = os.fspath(tmp_path / "dali.idx")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, script, path, theirs], check=True, env=env, capture_output=True, timeout=120)
    with open(index) as a, open(theirs) as b:
        assert a.read() == b.read()


def test_cli_entry_point(records, tmp_path, capsys) -> None:
    path, _ = records
    out = os.fspath(tmp_path / "cli.idx")
    assert tfr.tfrecord2idx_main([path, out]) == 0
    with open(out) as f:
        assert f.readline() == f"0 {len(frame(example(0)))}\n"
    assert tfr.tfrecord2idx_main([os.fspath(tmp_path / "nope"), out]) == 1
    assert "nope" in capsys.readouterr().err
    assert tfr.tfrecord2idx_main([]) == 2


def test_same_values_as_tensorflow(tmp_path) -> None:
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install tensorflow-cpu)")
    path = os.fspath(tmp_path / "tf.tfrecord")
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(7):
            feats = {
                "a": tf.train.Feature(int64_list=tf.train.Int64List(value=rng.integers(-(2**40), 2**40, 4))),
                "b": tf.train.Feature(float_list=tf.train.FloatList(value=rng.normal(size=i + 1))),
                "c": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rng.bytes(i * 3)])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    index = os.fspath(tmp_path / "tf.idx")
    tfr.tfrecord2idx(path, index)
    features = {
        "a": tfr.FixedLenFeature([2, 2], tfr.int64),
        "b": tfr.VarLenFeature(tfr.float32),
        "c": tfr.FixedLenFeature([], tfr.string),
    }
    tf_spec = {
        "a": tf.io.FixedLenFeature([2, 2], tf.int64),
        "b": tf.io.VarLenFeature(tf.float32),
        "c": tf.io.FixedLenFeature([], tf.string),
    }
    pipe = tf_pipe(path, index, features=features, batch_size=1)
    for raw in tf.data.TFRecordDataset(path):
        expected = tf.io.parse_single_example(raw, tf_spec)
        a, b, c = (x[0] for x in pipe.run())
        assert a.dtype == np.int64 and (a == expected["a"].numpy()).all()
        assert b.dtype == np.float32 and (b == expected["b"].values.numpy()).all()
        assert bytes(c) == expected["c"].numpy()


def test_errors_name_the_file_record_and_feature(records, tmp_path) -> None:
    path, index = records
    data = bytearray(open(path, "rb").read())
    data[30] ^= 0xFF  # inside the first record's data
    bad = os.fspath(tmp_path / "bad.tfrecord")
    open(bad, "wb").write(bytes(data))
    with pytest.raises(OperatorError, match=r"bad\.tfrecord: record at offset 0 fails its CRC-32C"):
        tf_pipe(bad, index).run()
    with pytest.raises(OperatorError, match=r"feature 'zz' of the record at offset 0 .* no default_value"):
        tf_pipe(path, index, features={"zz": tfr.FixedLenFeature([1], tfr.int64)}).run()
    with pytest.raises(OperatorError, match="'vec'.* has 6 values; shape \\[4\\] needs 4"):
        tf_pipe(path, index, features={"vec": tfr.FixedLenFeature([4], tfr.float32)}).run()
    with pytest.raises(OperatorError, match="'vec'.* is a float_list, the spec says int64"):
        tf_pipe(path, index, features={"vec": tfr.VarLenFeature(tfr.int64)}).run()
    open(os.fspath(tmp_path / "bad.idx"), "w").write("0 20\nzero 1\n")
    with pytest.raises(ValueError, match=r"bad\.idx:2: expected 'offset size'"):
        tf_pipe(path, os.fspath(tmp_path / "bad.idx"))
    with pytest.raises(FileNotFoundError, match="tfrecord2idx"):
        tf_pipe(path, os.fspath(tmp_path / "missing.idx"))
    with pytest.raises(FileNotFoundError, match="missing.tfrecord"):
        tf_pipe(os.fspath(tmp_path / "missing.tfrecord"), index)
    with pytest.raises(ValueError, match="index_path= has 2 files"):
        tf_pipe(path, [index, index])
    with pytest.raises(ValueError, match="dtype='int32'"):
        tfr.FixedLenFeature([], "int32")
    open(bad, "wb").write(open(path, "rb").read()[:-3])
    with pytest.raises(tfr.TFRecordError, match="truncated"):
        tfr.tfrecord2idx(bad, os.fspath(tmp_path / "x.idx"))


def test_restoring_into_an_unseeded_pipeline_does_not_leak_file_descriptors(records) -> None:
    """Pipeline.restore() with another seed sets the operators up again: the reader's files are closed
    first, so repeated restores keep the number of open descriptors constant."""
    path, index = records
    blobs = []
    for seed in (5, 6):  # two seeds: every restore below changes the seed and sets the reader up again
        source = tf_pipe(path, index, seed=seed, random_shuffle=True)
        source.run()
        blobs.append(source.checkpoint())
        source.close()
    pipe = tf_pipe(path, index, seed=None, random_shuffle=True)
    pipe.run()
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(20):
        pipe.restore(blobs[i % 2])
        pipe.run()
    assert len(os.listdir("/proc/self/fd")) <= fds + 2
    pipe.close()
