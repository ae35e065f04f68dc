""".npy headers are parsed without ast (numpy's ast.literal_eval is not thread-safe on Python 3.11): the
parser agrees with numpy on every header numpy writes, refuses anything else, and many threads reading
many files at once (the reader's workers) never fail."""

from __future__ import annotations

import gc
import io
import os
import threading
import time

import numpy as np
import pytest

from pipestate import fn, pipeline_def
from pipestate.operators.readers._npy_header import parse_header_dict
from pipestate.operators.readers.numpy import parse_header

ARRAYS = [
    np.zeros((3, 4), np.float32),
    np.zeros((), np.int8),
    np.zeros((5,), ">u2"),
    np.asfortranarray(np.zeros((2, 3, 4))),
    np.zeros((0, 7), np.bool_),
    np.zeros((2,), "S4"),
    np.zeros((1, 1, 1, 1, 1, 1, 1, 1, 1, 1), np.complex64),
    np.zeros((123456789, 0), np.uint64),
]


def _npy(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    return buffer.getvalue()


def _numpy_header(raw: bytes) -> tuple:
    """numpy's own parse: (shape, fortran_order, dtype), data offset (version 3 headers are ASCII here)."""
    buffer = io.BytesIO(raw)
    major, _ = np.lib.format.read_magic(buffer)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    return read(buffer), buffer.tell()


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("index", range(len(ARRAYS)))
def test_agrees_with_numpy(index, version):
    raw = _npy(ARRAYS[index], version)
    (shape, fortran, dtype), offset = _numpy_header(raw)
    assert parse_header("x.npy", raw[:300]) == (dtype, shape, fortran, offset)


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}",
        "{'descr': __import__('os'), 'fortran_order': False, 'shape': ()}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} trailing",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<\\x66', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
        "(" * 10_000,
    ],
)
def test_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_header_dict(text)


def test_python2_long_dimensions_and_double_quotes():
    assert parse_header_dict('{"descr": "<i8", "shape": (3L, 2L), "fortran_order": True, }  \n') == {
        "descr": "<i8",
        "fortran_order": True,
        "shape": (3, 2),
    }


class _Garbage:
    """A cycle whose finalizer releases the GIL: collected in the middle of other threads' work."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        time.sleep(0)


def test_many_threads_parse_many_headers():
    """numpy's ast-based parsing fails in such threads (SystemError: AST constructor recursion depth
    mismatch, on every run of this test with ast.literal_eval on Python 3.11.7: a garbage collection
    inside one thread's AST construction runs a finalizer that lets another thread construct its own).
    16 threads parse 400 headers each while garbage with such finalizers is collected."""
    raws = [
        _npy(np.zeros((i % 7, i % 5 + 1, 3) + (1,) * (i % 20), ["<f4", "<i2", "|u1", ">f8"][i % 4])) for i in range(200)
    ]
    expected = [_numpy_header(raw)[0] for raw in raws]
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def work(k: int) -> None:
        start.wait()
        try:
            for n in range(400):
                _Garbage()
                i = (n * 7 + k) % len(raws)
                header = parse_header("x.npy", raws[i][:300])
                assert (header.shape, header.fortran_order, header.dtype) == expected[i]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threshold = gc.get_threshold()
    gc.set_threshold(50, 1, 1)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gc.set_threshold(*threshold)
    assert errors == []


def test_reader_with_many_threads_over_many_files(tmp_path):
    """DALI's test_numpy_reader failed at iteration 69 with 3 threads; here 8 threads read 300 files for
    3 epochs (a reader wraps around), every array equal to the file's."""
    data = {}
    for i in range(300):
        array = (np.arange(i % 11 + 1).reshape(-1, 1) + i).astype("<u2")
        data[f"f{i:03}.npy"] = array
        np.save(tmp_path / f"f{i:03}.npy", array)

    @pipeline_def(batch_size=6, num_threads=8, seed=1, prefetch_queue_depth=3)
    def pipe():
        return fn.readers.numpy(file_root=os.fspath(tmp_path), name="r")

    p = pipe()
    seen = 0
    for _ in range(3):
        files = sorted(data)
        for step in range(len(files) // 6):
            (out,) = p.run()
            for j, sample in enumerate(out):
                want = data[files[step * 6 + j]]
                assert sample.dtype == np.uint16
                np.testing.assert_array_equal(sample, want)
                seen += 1
    assert seen == 900
