"""Pipelines from DALI's documentation and tests, run with only the import changed.

Each module of ``dali_code/`` holds DALI code as published (class-style pipelines: ``ops`` objects made in
``__init__``, called in ``define_graph``, external sources fed from ``iter_setup()`` with ``feed_input``),
importing ``nvidia.dali``. The tests run its text with ``nvidia.dali`` replaced by ``pipestate`` and nothing
else changed; they checkpoint and restore it bit for bit, and, where DALI is installed, run the unchanged
text on DALI (``device_id=None``: DALI on the CPU) and compare the outputs.

Restoring a pipeline fed through ``iter_setup()``: the checkpoint holds the fed sources' positions, not the
fed data (as DALI's), so the restored pipeline's feeder is moved to :attr:`Pipeline.iteration` (the batches
returned before the checkpoint) before its first ``run()``, as ``docs/migrating-from-dali.md`` shows.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from pipestate import tfrecord
from tests.dali_ported.dali_test_utils import _example

HERE = pathlib.Path(__file__).parent / "dali_code"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the examples use DALI's deprecated names


def load(name: str, backend: str = "pipestate") -> dict:
    """Run the example module ``name`` with ``nvidia.dali`` replaced by ``backend``; return its namespace."""
    text = (HERE / f"{name}.py").read_text()
    namespace: dict = {"__name__": f"dali_example_{name}"}
    exec(compile(text.replace("nvidia.dali", backend), str(HERE / f"{name}.py"), "exec"), namespace)  # noqa: S102
    return namespace


def arrays(outputs) -> list:
    """A pipeline's outputs as plain arrays (per sample), for comparisons across runs and libraries."""
    return [[np.array(sample) for sample in out.as_cpu()] if hasattr(out, "as_cpu") else out for out in outputs]


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for batch_a, batch_b in zip(a, b):
        assert len(batch_a) == len(batch_b)
        for out_a, out_b in zip(batch_a, batch_b):
            assert [s.dtype for s in out_a] == [s.dtype for s in out_b]
            for s_a, s_b in zip(out_a, out_b):
                np.testing.assert_array_equal(s_a, s_b)


def run(pipe, steps: int) -> list:
    """``steps`` batches; an epoch end is recorded as ``"end"`` and followed by ``reset()``."""
    out = []
    for _ in range(steps):
        try:
            out.append(arrays(pipe.run()))
        except StopIteration:
            out.append("end")
            pipe.reset()
    return out


def check_restore(make, before: int, after: int) -> None:
    """Run ``before`` batches, checkpoint, run ``after``; a pipeline restored from the checkpoint (its feeder, if
    any, moved to the restored position) gives the same ``after`` batches, for prefetch depths 1 and 3."""
    for depth in (1, 3):
        pipe = make(prefetch_queue_depth=depth, enable_checkpointing=True)
        run(pipe, before)
        cpt = pipe.checkpoint()
        expected = run(pipe, after)
        restored = make(prefetch_queue_depth=4 - depth, enable_checkpointing=True, checkpoint=cpt)
        restored.build()
        if hasattr(restored, "iterator"):  # fed from iter_setup(): the feeder resumes where the checkpoint is
            for _ in range(restored.iteration):
                next(restored.iterator)
        got = run(restored, after)
        assert [e == "end" for e in got] == [e == "end" for e in expected]
        assert_same([e for e in got if e != "end"], [e for e in expected if e != "end"])


def check_like_dali(name: str, steps: int, outputs: list[int] | None = None, **kwargs) -> None:
    """The unchanged text on DALI (CPU) and on pipestate give the same outputs (those listed: the others are
    random, drawn differently)."""
    pytest.importorskip("nvidia.dali", reason="the comparison with DALI needs DALI")
    ours = run(load(name)["build"](None, **kwargs), steps)
    theirs = run(load(name, "nvidia.dali")["build"](None, **kwargs), steps)
    pick = (lambda batch: [batch[i] for i in outputs]) if outputs else (lambda batch: batch)
    assert [e == "end" for e in ours] == [e == "end" for e in theirs]
    assert_same([pick(e) for e in ours if e != "end"], [pick(e) for e in theirs if e != "end"])


def test_iter_setup_runs_as_in_dali():
    """DALI's test_iter_setup, as DALI runs it: five batches, then StopIteration."""
    pipe = load("iter_setup")["build"](0)
    count = 0
    while True:
        try:
            pipe.run()
            count += 1
        except StopIteration:
            break
    assert count == 5
    check_like_dali("iter_setup", 13)


def test_iter_setup_restores():
    build = load("iter_setup")["build"]
    check_restore(lambda **kw: build(None, **kw), 2, 9)


def test_expression_pipeline_fed_by_iter_setup():
    build = load("expr_ops")["build"]
    (left, right, result), *_ = run(build(None), 1)
    for a, b, res in zip(left, right, result):
        expected = (a.astype(np.int32) * b + 3) // (a.astype(np.int32) | 1)  # Python ints are int32, as in DALI
        assert res.dtype == np.int32
        np.testing.assert_array_equal(res, expected)
    check_restore(lambda **kw: build(None, **kw), 3, 4)
    check_like_dali("expr_ops", 4)


def test_constants_and_a_source_without_arguments():
    """The DALI example's source is a callable without arguments: restored as DALI does (warned, called again)."""
    build = load("expr_constants")["build"]
    (left, _, add_200, _, sub_15, _, plus_one), *_ = run(build(None), 1)
    assert sub_15[0].dtype == np.float32 and plus_one[0].dtype == np.int32
    np.testing.assert_array_equal(add_200[1], left[1] + 200)
    with pytest.warns(UserWarning, match="called again"):
        check_restore(lambda **kw: build(None, **kw), 2, 3)
    check_like_dali("expr_constants", 2)


def test_python_function_and_a_random_operator():
    build = load("python_function")["build"]
    check_restore(lambda **kw: build(None, **kw), 2, 3)
    check_like_dali("python_function", 3, outputs=[0])


@pytest.fixture(scope="module")
def reader_data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("dali-examples")
    rng = np.random.default_rng(7)
    for label in range(3):
        os.makedirs(root / "images" / f"class{label}")
        for i in range(9 + label):
            (root / "images" / f"class{label}" / f"{i:02}.jpg").write_bytes(rng.bytes(int(rng.integers(10, 30))))
    records = [_example({"image/encoded": (1, rng.bytes(12)), "image/class/label": (3, i % 5)}) for i in range(23)]
    tfrecord.write_records(root / "train", records)
    tfrecord.tfrecord2idx(root / "train", root / "train.idx")
    return {
        "image_dir": os.fspath(root / "images"),
        "path": os.fspath(root / "train"),
        "idx": os.fspath(root / "train.idx"),
    }


def test_file_reader_pipeline(reader_data):
    ns = load("readers")

    def make(**kw):
        return ns["RandomRotatedSimplePipeline"](4, 2, None, reader_data["image_dir"], **kw)

    check_restore(make, 5, 12)  # across the end of the epoch (30 files, batches of 4)
    pytest.importorskip("nvidia.dali", reason="the comparison with DALI needs DALI")
    dali = load("readers", "nvidia.dali")["RandomRotatedSimplePipeline"](4, 2, None, reader_data["image_dir"])
    theirs, ours = run(dali, 15), run(make(), 15)  # two epochs of 30 files; shuffled differently from DALI's

    def samples(batches):
        return sorted((f.tobytes(), int(label[0])) for files, labels, _ in batches for f, label in zip(files, labels))

    assert samples(ours) == samples(theirs)


def test_tfrecord_pipeline(reader_data):
    ns = load("readers")

    def make(backend_ns=ns, **kw):
        return backend_ns["TFRecordPipeline"](5, 2, None, reader_data["path"], reader_data["idx"], **kw)

    check_restore(make, 3, 6)
    pytest.importorskip("nvidia.dali", reason="the comparison with DALI needs DALI")
    theirs, ours = run(make(load("readers", "nvidia.dali")), 6), run(make(), 6)
    assert_same([e[:2] for e in ours], [e[:2] for e in theirs])
