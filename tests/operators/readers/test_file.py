"""fn.readers.file: listings, labels, outputs, checkpoints, option independence and errors."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from pipestate import CheckpointMismatchError, OperatorError, fn, pipeline_def
from pipestate.testing import assert_equal_output_after_checkpoint, assert_restore_chain, assert_same_output
from tests.operators.readers.conftest import make_files


@pipeline_def(batch_size=3, seed=3, num_threads=1, enable_checkpointing=True)
def file_pipe(**reader_args):
    data, label = fn.readers.file(name="r", **reader_args)
    return data, label


def run_all(pipe, steps: int) -> list[tuple[bytes, int]]:
    out = []
    for _ in range(steps):
        data, label = pipe.run()
        out += [(bytes(d), int(v[0])) for d, v in zip(data, label, strict=False)]
    return out


def write(path: str, data: bytes = b"x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_file_root_labels_by_sorted_subdirectory(tmp_path) -> None:
    root = os.fspath(tmp_path)
    for name in [
        "b/2.jpg",
        "b/10.jpg",
        "b/x.txt",
        "a/z.png",
        "a/B.JPG",
        "c/sub/deep.jpg",
        "c/top.jpg",
        "root.jpg",
    ]:
        write(os.path.join(root, name), name.encode())
    os.makedirs(os.path.join(root, "b_empty"))
    pipe = file_pipe(file_root=root, batch_size=1)
    assert pipe.reader_meta("r")["epoch_size"] == 5
    got = run_all(pipe, 5)
    assert got == [(b"a/B.JPG", 0), (b"a/z.png", 0), (b"b/10.jpg", 1), (b"b/2.jpg", 1), (b"c/top.jpg", 3)]
    data, label = pipe.run()
    assert data[0].dtype == np.uint8 and data[0].ndim == 1
    assert label[0].dtype == np.int32 and label[0].shape == (1,)
    pipe.close()
    pipe = file_pipe(file_root=root, file_filters="*.txt", batch_size=1)
    assert run_all(pipe, 1) == [(b"b/x.txt", 1)]


def test_files_and_labels(tmp_path) -> None:
    root = os.fspath(tmp_path)
    write(os.path.join(root, "a"), b"A")
    write(os.path.join(root, "b"), b"B")
    assert run_all(file_pipe(files=["a", "b"], file_root=root, batch_size=2), 1) == [(b"A", 0), (b"B", 1)]
    paths = [os.path.join(root, "b"), os.path.join(root, "a")]
    assert run_all(file_pipe(files=paths, labels=[5, 7], batch_size=2), 1) == [(b"B", 5), (b"A", 7)]


def test_file_list_relative_to_its_directory_or_file_root(tmp_path) -> None:
    list_path = make_files(os.fspath(tmp_path / "d"), 4)
    expected = [(i.to_bytes(4, "little"), i) for i in range(3)]
    assert run_all(file_pipe(file_list=list_path), 1) == expected
    assert run_all(file_pipe(file_list=list_path, file_root=os.fspath(tmp_path / "d")), 1) == expected


def test_checkpoint_conformance(small_list: str) -> None:
    for args in [
        {},
        {"random_shuffle": True, "initial_fill": 4},
        {"shuffle_after_epoch": True, "num_shards": 2},
    ]:
        make = functools.partial(file_pipe, file_list=small_list, **args)
        assert_equal_output_after_checkpoint(make, steps=10)
        assert_restore_chain(make, [3, 1, 5])


def test_outputs_do_not_depend_on_threads_or_prefetch(small_list: str) -> None:
    make = functools.partial(file_pipe, file_list=small_list, random_shuffle=True, initial_fill=3, batch_size=8)
    assert_same_output(
        make,
        [
            {"num_threads": 1},
            {"num_threads": 2},
            {"num_threads": 3, "prefetch_queue_depth": 1},
            {"prefetch_queue_depth": 4},
        ],
    )


def test_two_readers_in_one_pipeline_and_reader_meta(small_list: str) -> None:
    @pipeline_def(batch_size=4, seed=1, enable_checkpointing=True)
    def pipe():
        _, a = fn.readers.file(file_list=small_list, name="a")
        _, b = fn.readers.file(file_list=small_list, shard_id=1, num_shards=2, pad_last_batch=True, name="b")
        return a, b + 0

    p = pipe()
    assert set(p.reader_meta()) == {"a", "b"}
    assert p.reader_meta("b") == {
        "epoch_size": 10,
        "epoch_size_padded": 10,
        "number_of_shards": 2,
        "shard_id": 1,
        "pad_last_batch": 1,
        "stick_to_shard": 0,
    }
    assert p.epoch_size() == {"a": 10, "b": 10}
    assert p.epoch_size("a") == 10
    with pytest.raises(KeyError, match="nope"):
        p.reader_meta("nope")
    with pytest.raises(ValueError, match="not a reader"):
        p.reader_meta(p.operators[-1])
    a, b = p.run()
    assert [int(v[0]) for v in a] == [0, 1, 2, 3] and [int(v[0]) for v in b] == [5, 6, 7, 8]
    p.reset()  # readers do not rewind or skip at a pipeline epoch boundary (as DALI)
    a, b = p.run()
    assert [int(v[0]) for v in a] == [4, 5, 6, 7] and [int(v[0]) for v in b] == [9, 9, 9, 9]


def test_restore_into_a_changed_dataset_is_rejected(tmp_path) -> None:
    list_path = make_files(os.fspath(tmp_path), 6)
    blob = (lambda p: (p.run(), p.checkpoint())[1])(file_pipe(file_list=list_path))
    with open(list_path, "a") as f:
        f.write("f0.bin 99\n")
    with pytest.raises(CheckpointMismatchError, match="dataset differs"):
        file_pipe(file_list=list_path, checkpoint=blob)


@pytest.mark.parametrize(
    "args, error, match",
    [
        (
            {"shuffle_after_epoch": True, "random_shuffle": True},
            ValueError,
            "shuffle_after_epoch.*random_shuffle",
        ),
        (
            {"shuffle_after_epoch": True, "stick_to_shard": True},
            ValueError,
            "shuffle_after_epoch.*stick_to_shard",
        ),
        ({"shard_id": 2, "num_shards": 2}, ValueError, "shard_id=2"),
        ({"num_shards": 0}, ValueError, "num_shards=0"),
        ({"initial_fill": 0}, ValueError, "initial_fill"),
        ({"random_shuffle": 1}, TypeError, "random_shuffle"),
        ({"files": ["a"], "labels": [1, 2]}, ValueError, "labels= has 2"),
        ({"file_root": "/x", "labels": [1]}, ValueError, "labels= goes with files="),
        ({}, ValueError, "file_root=, file_list= or files="),
    ],
)
def test_invalid_arguments_are_rejected_at_definition(args, error, match) -> None:
    with pytest.raises(error, match=match):
        file_pipe(**args)


def test_listing_errors_name_the_directory_file_and_line(tmp_path) -> None:
    root = os.fspath(tmp_path)
    os.makedirs(os.path.join(root, "empty", "cls"))
    with pytest.raises(ValueError, match="no files found"):
        file_pipe(file_root=os.path.join(root, "empty"))
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        file_pipe(file_root=os.path.join(root, "does-not-exist"))
    bad = os.path.join(root, "bad.txt")
    with open(bad, "w") as f:
        f.write("a.bin 1\n\nb.bin one\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: expected 'relative/path label'"):
        file_pipe(file_list=bad)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        file_pipe(file_list=os.path.join(root, "missing.txt"))
    with pytest.raises(ValueError, match="fewer than num_shards=4"):
        file_pipe(files=["a", "b"], num_shards=4)


def test_missing_and_unreadable_files_name_the_file_and_list_line(tmp_path) -> None:
    list_path = make_files(os.fspath(tmp_path), 4)
    os.remove(os.path.join(os.fspath(tmp_path), "f1.bin"))
    pipe = file_pipe(file_list=list_path)
    with pytest.raises(OperatorError, match=r"f1\.bin.*list\.txt:2") as info:
        pipe.run()
    assert isinstance(info.value.__cause__, FileNotFoundError)
    os.makedirs(os.path.join(os.fspath(tmp_path), "f1.bin"))  # a directory where a file is expected
    pipe = file_pipe(file_list=list_path)
    with pytest.raises(OperatorError, match=r"f1\.bin"):
        pipe.run()
