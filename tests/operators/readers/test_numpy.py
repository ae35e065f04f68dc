"""fn.readers.numpy: dtypes and shapes from headers, listing order, checkpoints and errors."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from pipestate.testing import assert_equal_output_after_checkpoint, assert_same_output


@pipeline_def(batch_size=2, seed=3, num_threads=1, enable_checkpointing=True)
def numpy_pipe(**reader_args):
    return fn.readers.numpy(name="r", **reader_args)


def arrays(pipe, steps: int) -> list[np.ndarray]:
    return [np.array(a) for _ in range(steps) for a in pipe.run()[0]]


@pytest.fixture
def npy_tree(tmp_path) -> tuple[str, dict[str, np.ndarray]]:
    root = tmp_path / "n"
    (root / "sub").mkdir(parents=True)
    data = {
        "x.npy": np.arange(6, dtype=np.int16).reshape(2, 3),
        "sub/a.npy": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        "sub/b.NPY": np.array(7.5, dtype=np.float32),
        "sub/c.npy": np.zeros((0, 2), dtype=np.uint8),
    }
    for name, value in data.items():
        with open(root / name, "wb") as f:
            np.lib.format.write_array(f, value, allow_pickle=False)
    (root / "sub" / "skip.txt").write_text("not an array")
    return os.fspath(root), data


def test_reads_dtype_shape_and_order_like_dali(npy_tree) -> None:
    root, data = npy_tree
    pipe = numpy_pipe(file_root=root, batch_size=1)
    assert pipe.reader_meta("r")["epoch_size"] == 4
    got = arrays(pipe, 4)
    for name, arr in zip(["x.npy", "sub/a.npy", "sub/b.NPY", "sub/c.npy"], got, strict=False):
        expected = data[name]
        assert arr.dtype == expected.dtype and arr.shape == expected.shape and (arr == expected).all(), name
        assert arr.flags.c_contiguous


def test_files_and_large_arrays_batch_densely(tmp_path) -> None:
    paths = []
    for i in range(5):
        paths.append(os.fspath(tmp_path / f"{i}.npy"))
        np.save(paths[-1], np.full((256, 256), i, dtype=np.float32))
    pipe = numpy_pipe(files=paths, batch_size=4, num_threads=2)
    batch = pipe.run()[0]
    assert batch.is_dense_tensor() and np.asarray(batch).shape == (4, 256, 256)
    assert [float(a[0, 0]) for a in batch] == [0, 1, 2, 3]


def test_checkpoints_and_thread_independence(npy_tree) -> None:
    root, _ = npy_tree
    make = functools.partial(
        numpy_pipe, file_root=root, random_shuffle=True, initial_fill=2, num_shards=2, batch_size=1
    )
    assert_equal_output_after_checkpoint(make, steps=8)
    assert_same_output(make, [{"num_threads": 1}, {"num_threads": 2, "prefetch_queue_depth": 3}])


def test_a_batch_of_mixed_types_is_an_error_naming_two_files(npy_tree) -> None:
    root, _ = npy_tree  # DALI: "All samples in the batch must have the same data type. Got ... and ..."
    with pytest.raises(OperatorError, match=r"x.npy' is int16 with 2 dims, .*a.npy' is float64"):
        numpy_pipe(file_root=root, batch_size=2).run()


def test_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy at all")
    pipe = numpy_pipe(files=[os.fspath(bad)] * 2)
    with pytest.raises(OperatorError, match="bad.npy.*not a .npy file"):
        pipe.run()
    cut = tmp_path / "cut.npy"
    np.save(cut, np.arange(100))
    cut.write_bytes(cut.read_bytes()[:-8])
    with pytest.raises(OperatorError, match="cut.npy.*truncated"):
        numpy_pipe(files=[os.fspath(cut)] * 2).run()
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(OperatorError, match="obj.npy.*not supported"):
        numpy_pipe(files=[os.fspath(obj)] * 2).run()
    with pytest.raises(OperatorError, match="gone.npy"):
        numpy_pipe(files=[os.fspath(tmp_path / "gone.npy")] * 2).run()
    with pytest.raises(ValueError, match="no files found"):
        numpy_pipe(file_root=os.fspath(tmp_path), file_filter="*.none")
    with pytest.raises(ValueError, match="file_list= or files="):
        numpy_pipe(files=["a"], file_list="b")
