"""Readers given adversarial files: FIFOs, devices, lying or truncated headers, bad indexes and lists.

Every case is a clear, typed error naming the file (and the ``file_list`` line), never a hang, a huge
allocation or another exception type (issue 9).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import OperatorError, fn, pipeline_def
from pipestate import tfrecord as tfr
from tests.operators.readers.test_tfrecord import FEATURES, example, frame

fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pipeline_def(batch_size=1, seed=1, num_threads=1, enable_checkpointing=True)
def file_pipe(**kw):
    return fn.readers.file(name="r", **kw)


@pipeline_def(batch_size=1, seed=1, num_threads=1, enable_checkpointing=True)
def numpy_pipe(**kw):
    return fn.readers.numpy(name="r", **kw)


@pipeline_def(batch_size=1, seed=1, num_threads=1, enable_checkpointing=True)
def tf_pipe(path, index):
    out = fn.readers.tfrecord(path=path, index_path=index, features=FEATURES, name="r")
    return tuple(out[k] for k in FEATURES)


def _run_error(pipe_fn, **kw) -> BaseException:
    """The error of building the pipeline, or of its first run() (then the OperatorError's cause)."""
    try:
        pipe = pipe_fn(**kw)
    except (ValueError, OSError) as exc:
        return exc
    try:
        with pytest.raises(OperatorError) as info:
            pipe.run()
    finally:
        pipe.close()
    return info.value.__cause__


# ---- FIFOs and devices: refused, never opened for a blocking read ---------------------------------------


@fifo_only
@pytest.mark.timeout(20)
def test_file_root_listing_refuses_a_fifo(tmp_path):
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.jpg").write_bytes(b"a")
    os.mkfifo(tmp_path / "cls" / "b.jpg")
    with pytest.raises(ValueError, match=r"b\.jpg' is a FIFO, not a regular file"):
        file_pipe(file_root=str(tmp_path))
    os.mkfifo(tmp_path / "cls" / "skip.txt")  # not matching the filters: ignored, as DALI
    os.unlink(tmp_path / "cls" / "b.jpg")
    assert bytes(file_pipe(file_root=str(tmp_path)).run()[0][0]) == b"a"


@fifo_only
@pytest.mark.timeout(20)
def test_numpy_tree_listing_refuses_a_fifo(tmp_path):
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "x.npy")
    with pytest.raises(ValueError, match=r"x\.npy' is a FIFO"):
        numpy_pipe(file_root=str(tmp_path))


@fifo_only
@pytest.mark.timeout(20)
def test_listed_fifos_and_devices_fail_when_read_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "f.bin")
    (tmp_path / "list.txt").write_text("ok.bin 0\nf.bin 1\n")
    (tmp_path / "ok.bin").write_bytes(b"ok")
    pipe = file_pipe(file_list=str(tmp_path / "list.txt"))
    assert bytes(pipe.run()[0][0]) == b"ok"
    with pytest.raises(OperatorError) as info:
        pipe.run()
    pipe.close()
    assert isinstance(info.value.__cause__, ValueError)
    assert "f.bin' is a FIFO" in str(info.value) and "(listed at " in str(info.value)
    assert "list.txt:2" in str(info.value)
    err = _run_error(file_pipe, files=["/dev/zero"])
    assert isinstance(err, ValueError) and "'/dev/zero' is a character device" in str(err)
    err = _run_error(numpy_pipe, files=[str(tmp_path / "f.bin")])
    assert isinstance(err, ValueError) and "a FIFO" in str(err)


@fifo_only
@pytest.mark.timeout(20)
def test_a_fifo_as_file_list_or_tfrecord_is_refused_at_build(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    fifo = str(tmp_path / "fifo")
    with pytest.raises(ValueError, match="file_list=.*fifo' is a FIFO"):
        file_pipe(file_list=fifo)
    with pytest.raises(ValueError, match="fifo' is a FIFO"):
        numpy_pipe(file_list=fifo)
    with pytest.raises(ValueError, match="TFRecord file .*fifo' is a FIFO"):
        tf_pipe(fifo, None)
    good = tmp_path / "d.tfrecord"
    good.write_bytes(frame(example(1)))
    with pytest.raises(ValueError, match="index_path: .*fifo' is a FIFO"):
        tf_pipe(str(good), fifo)
    (tmp_path / "d.idx").write_text("0 20\n")
    with pytest.raises(ValueError, match="TFRecord file .*fifo' is a FIFO"):
        tf_pipe(fifo, str(tmp_path / "d.idx"))


# ---- file_list contents ------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [2**31, -(2**31) - 1, 10**30])
def test_file_list_label_outside_int32_names_the_line(tmp_path, label):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "list.txt").write_text(f"a.bin 0\n\na.bin {label}\n")
    with pytest.raises(ValueError, match=rf"list\.txt:3: label {label} does not fit in int32"):
        file_pipe(file_list=str(tmp_path / "list.txt"))


def test_file_list_int32_limits_are_accepted(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "list.txt").write_text(f"a.bin {2**31 - 1}\na.bin {-(2**31)}\n")
    pipe = file_pipe(file_list=str(tmp_path / "list.txt"), batch_size=2)
    assert [int(v[0]) for v in pipe.run()[1]] == [2**31 - 1, -(2**31)]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "lists no files"),
        (b" \n\t\n\r\n", "lists no files"),
        (b"a.bin 0\n\xff\xfe\x00\x01garbage 1\n", "is not UTF-8 text"),
        (b"a.bin 0\nb\x00.bin 1\n", r"list\.txt:2: the line holds a NUL byte"),
        (b"a.bin 0\n\x01\x02\x03\n", r"list\.txt:2: expected 'relative/path label'"),
        (b"a.bin zero\n", r"list\.txt:1: expected 'relative/path label'"),
    ],
    ids=["empty", "blank", "binary", "nul", "control-chars", "bad-label"],
)
def test_malformed_file_list_names_the_file_and_line(tmp_path, content, match):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "list.txt").write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        file_pipe(file_list=str(tmp_path / "list.txt"))
    assert "list.txt" in str(info.value)


def test_a_directory_as_file_list_is_named(tmp_path):
    with pytest.raises(IsADirectoryError, match="file_list= is a directory"):
        file_pipe(file_list=str(tmp_path))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=200))
def test_any_file_list_bytes_give_a_listing_or_a_value_error(tmp_path, content):
    (tmp_path / "list.txt").write_bytes(content)
    try:
        pipe = file_pipe(file_list=str(tmp_path / "list.txt"))
    except ValueError as exc:
        assert "list.txt" in str(exc)
        return
    pipe.close()


# ---- .npy headers --------------------------------------------------------------------------------------------


def _npy(path, header: str, data: bytes = b"", version: int = 1) -> str:
    text = header.encode("latin1")
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
    else:
        head = b"\x93NUMPY\x02\x00" + len(text).to_bytes(4, "little") + text
    path.write_bytes(head + data)
    return str(path)


@pytest.mark.timeout(30)
def test_npy_header_claiming_2_40_elements_is_rejected_without_allocating(tmp_path):
    path = _npy(
        tmp_path / "huge.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }\n", b"\0" * 64
    )
    err = _run_error(numpy_pipe, files=[path])
    assert isinstance(err, ValueError), err
    assert "huge.npy" in str(err) and "8796093022208 data bytes" in str(err) and "holds 64" in str(err)


@pytest.mark.parametrize(
    "header, data, match",
    [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (100,), }\n", b"\0" * 72, "claims shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-5,), }\n", b"", "negative dimensions"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }\n", b"", "claims shape"),
        ("{'descr': '<u1', 'fortran_order': False, 'shape': (0,) * 100, }\n", b"", "malformed"),
        (
            "{'descr': '<u1', 'fortran_order': False, 'shape': " + "(0, " * 100 + "0" + ")" * 100 + ", }\n",
            b"",
            "malformed",
        ),
        ("{'descr': '<u1', 'fortran_order': False, 'shape': (" + "0, " * 100 + "), }\n", b"", "cannot hold"),
        ("{'descr': 'O', 'fortran_order': False, 'shape': (1,), }\n", b"\0" * 8, "not supported"),
        ("[" * 5000, b"", "malformed"),
        ("{'descr': '<f8', 'fortran_order': False}\n", b"", "malformed"),
    ],
    ids=[
        "truncated-data",
        "negative",
        "overflowing",
        "expression",
        "nested",
        "too-many-dims",
        "object",
        "deep",
        "no-shape",
    ],
)
def test_damaged_npy_headers_are_value_errors_naming_the_file(tmp_path, header, data, match):
    path = _npy(tmp_path / "bad.npy", header, data)
    err = _run_error(numpy_pipe, files=[path])
    assert isinstance(err, ValueError), repr(err)
    assert "bad.npy" in str(err) and match in str(err), str(err)


def test_npy_header_length_beyond_the_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "long.npy"
    path.write_bytes(b"\x93NUMPY\x02\x00" + (2**32 - 1).to_bytes(4, "little") + b"{")
    err = _run_error(numpy_pipe, files=[str(path)])
    assert isinstance(err, ValueError) and "long.npy" in str(err) and "4294967295 bytes" in str(err)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 200), flip=st.integers(0, 200), bit=st.integers(0, 7))
def test_truncated_or_flipped_npy_reads_exactly_or_fails_naming_the_file(tmp_path, cut, flip, bit):
    want = np.arange(12, dtype=np.int32).reshape(3, 4)
    path = tmp_path / "a.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array(f, want)
    blob = bytearray(path.read_bytes())
    blob = blob[: len(blob) - cut]
    if blob and flip < len(blob):
        blob[flip] ^= 1 << bit
    path.write_bytes(bytes(blob))
    try:
        pipe = numpy_pipe(files=[str(path)])
        got = np.asarray(pipe.run()[0][0])
        pipe.close()
    except OperatorError as exc:
        assert isinstance(exc.__cause__, ValueError), repr(exc.__cause__)
        assert "a.npy" in str(exc.__cause__)
        return
    assert got.size <= want.size  # a flipped header byte may change the dtype or shape, within the file


# ---- TFRecord files and indexes --------------------------------------------------------------------------------


@pytest.fixture
def tf_files(tmp_path) -> tuple[str, str]:
    path = tmp_path / "d.tfrecord"
    path.write_bytes(b"".join(frame(example(i)) for i in range(4)))
    index = tmp_path / "d.idx"
    tfr.tfrecord2idx(path, index)
    return str(path), str(index)


def test_truncated_tfrecord_is_named_at_build(tf_files):
    path, index = tf_files
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 5)
    with pytest.raises(tfr.TFRecordError, match=r"d\.tfrecord.*truncated"):
        tf_pipe(path, None)
    with pytest.raises(tfr.TFRecordError, match=r"d\.idx: entry 4 .*ends at byte"):
        tf_pipe(path, index)


@pytest.mark.timeout(30)
def test_index_entry_pointing_past_the_end_is_refused_at_build(tf_files):
    path, index = tf_files
    lines = open(index).read().splitlines()
    lines[1] = f"{lines[1].split()[0]} {2**62}"  # not the last entry: every entry is checked
    open(index, "w").write("\n".join(lines) + "\n")
    with pytest.raises(tfr.TFRecordError, match=rf"d\.idx: entry 2 \(\d+ {2**62}\) ends at byte"):
        tf_pipe(path, index)


def test_binary_index_is_a_tfrecord_error(tf_files):
    path, index = tf_files
    open(index, "wb").write(b"0 20\n\xff\xfe\x00garbage\n")
    with pytest.raises(tfr.TFRecordError, match=r"d\.idx:2: not an index file"):
        tf_pipe(path, index)


def test_record_that_is_not_an_example_names_file_and_offset(tmp_path):
    path = tmp_path / "x.tfrecord"
    path.write_bytes(frame(example(0)) + frame(b"\xff\xff\xff\xff garbage with a valid checksum"))
    pipe = tf_pipe(str(path), None)
    pipe.run()
    with pytest.raises(OperatorError) as info:
        pipe.run()
    pipe.close()
    cause = info.value.__cause__
    assert isinstance(cause, tfr.TFRecordError)
    assert "x.tfrecord: the record at offset" in str(cause) and "not a tf.train.Example" in str(cause)


def test_empty_tfrecord_is_refused(tmp_path):
    (tmp_path / "e.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match="no records"):
        tf_pipe(str(tmp_path / "e.tfrecord"), None)
