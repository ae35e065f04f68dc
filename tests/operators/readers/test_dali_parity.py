"""Differential tests: without shuffling, fn.readers.file yields exactly DALI's sample sequence and
reader_meta, for every shard_id/num_shards (1..4), stick_to_shard, pad_last_batch and a few batch sizes;
fn.readers.numpy and fn.readers.tfrecord give DALI's arrays (values, dtypes, shapes) in DALI's order."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest

from pipestate import fn, pipeline_def
from tests.operators.readers.conftest import make_files

dali = pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")

SHARD_CONFIGS = [(sid, ns) for ns in range(1, 5) for sid in range(ns)]


def dali_labels(list_path: str, bs: int, sid: int, ns: int, stick: bool, pad: bool, iters: int):
    @dali.pipeline_def(batch_size=bs, num_threads=1, device_id=None, seed=1, prefetch_queue_depth=1)
    def pipe():
        data, label = dali.fn.readers.file(
            file_list=list_path,
            shard_id=sid,
            num_shards=ns,
            stick_to_shard=stick,
            pad_last_batch=pad,
            name="r",
        )
        return data, label

    p = pipe()
    p.build()
    meta = p.reader_meta("r")
    seq = []
    for _ in range(iters):
        data, label = p.run()
        seq.append([int(np.array(label[i])[0]) for i in range(bs)])
        assert [int.from_bytes(bytes(np.array(data[i])), "little") for i in range(bs)] == seq[-1]
    return meta, seq, p.epoch_size("r")


def pipestate_labels(list_path: str, bs: int, sid: int, ns: int, stick: bool, pad: bool, iters: int):
    @pipeline_def(batch_size=bs, num_threads=1, seed=1, prefetch_queue_depth=1)
    def pipe():
        data, label = fn.readers.file(
            file_list=list_path,
            shard_id=sid,
            num_shards=ns,
            stick_to_shard=stick,
            pad_last_batch=pad,
            name="r",
        )
        return data, label

    p = pipe()
    meta = p.reader_meta("r")
    seq = []
    for _ in range(iters):
        data, label = p.run()
        seq.append([int(v[0]) for v in label])
        assert [int.from_bytes(bytes(d), "little") for d in data] == seq[-1]
    size = p.epoch_size("r")
    p.close()
    return meta, seq, size


@pytest.mark.dali_differential("readers.file")
@pytest.mark.parametrize("n", [10, 13])
@pytest.mark.parametrize("bs", [1, 3, 4])
def test_same_sequence_and_meta_as_dali(tmp_path, n: int, bs: int) -> None:
    list_path = make_files(os.fspath(tmp_path), n)
    failures = []
    for (sid, ns), stick, pad in itertools.product(SHARD_CONFIGS, [False, True], [False, True]):
        per_epoch = math.ceil(math.ceil(n / ns) / bs)  # batches in the longest (padded) reader epoch
        iters = (ns + 1) * per_epoch + 2  # num_shards + 1 reader epochs and a bit
        expected = dali_labels(list_path, bs, sid, ns, stick, pad, iters)
        got = pipestate_labels(list_path, bs, sid, ns, stick, pad, iters)
        if got != expected:
            failures.append(f"shard {sid}/{ns} stick={stick} pad={pad}: DALI {expected}, pipestate {got}")
    assert not failures, "\n".join(failures)


def _run_both(build_pipestate, build_dali, bs: int, iters: int) -> tuple[list, list]:
    ours = pipeline_def(batch_size=bs, num_threads=1, seed=1, prefetch_queue_depth=1)(build_pipestate)()
    theirs = dali.pipeline_def(batch_size=bs, num_threads=1, device_id=None, seed=1, prefetch_queue_depth=1)(
        build_dali
    )()
    theirs.build()
    a = [[[np.array(s) for s in out] for out in ours.run()] for _ in range(iters)]
    b = [[[np.array(out.at(i)) for i in range(bs)] for out in theirs.run()] for _ in range(iters)]
    ours.close()
    return a, b


def _assert_same(a: list, b: list, what: str) -> None:
    for j, (x, y) in enumerate(zip(a, b)):
        for k, (xo, yo) in enumerate(zip(x, y)):
            for i, (xs, ys) in enumerate(zip(xo, yo)):
                where = f"{what}: iteration {j}, output {k}, sample {i}"
                assert xs.dtype == ys.dtype and xs.shape == ys.shape, (
                    f"{where}: {xs.dtype}{xs.shape} vs {ys.dtype}{ys.shape}"
                )
                assert xs.tobytes() == ys.tobytes(), where


@pytest.mark.dali_differential("readers.numpy")
@pytest.mark.parametrize(("sid", "ns", "pad"), [(0, 1, False), (1, 2, True), (2, 3, False)])
def test_numpy_reader_gives_dalis_arrays(tmp_path, sid: int, ns: int, pad: bool) -> None:
    for i in range(7):
        arr = (np.arange(6, dtype=np.float32).reshape(2, 3) - i) if i % 2 else np.arange(i + 1, dtype=np.float32)
        np.save(tmp_path / f"{i}.npy", arr.reshape(-1, 1) if i % 2 == 0 else arr.reshape(3, 2))
    args = {"file_root": os.fspath(tmp_path), "shard_id": sid, "num_shards": ns, "pad_last_batch": pad}
    a, b = _run_both(lambda: fn.readers.numpy(**args), lambda: dali.fn.readers.numpy(**args), 2, 6)
    _assert_same(a, b, f"readers.numpy shard {sid}/{ns}")


@pytest.mark.dali_differential("readers.tfrecord")
def test_tfrecord_reader_gives_dalis_features(tmp_path) -> None:
    from nvidia.dali import tfrecord as dali_tfr

    from pipestate import tfrecord as tfr
    from pipestate._proto.pipestate.tfrecord.v1 import example_pb2

    records = []
    for i in range(11):
        ex = example_pb2.Example()
        ex.features.feature["x"].int64_list.value.extend([i, -i, i * i])
        ex.features.feature["y"].float_list.value.extend([i / 3.0] * (i % 3 + 1))
        ex.features.feature["s"].bytes_list.value.append(b"abc"[: i % 4])
        records.append(ex.SerializeToString())
    path = os.fspath(tmp_path / "d.tfrecord")
    tfr.write_records(path, records)
    tfr.tfrecord2idx(path, path + ".idx")

    def features(m):
        return {
            "x": m.FixedLenFeature([3], m.int64, 0),
            "y": m.VarLenFeature(m.float32, 0.0),
            "s": m.FixedLenFeature((), m.string, ""),
        }

    def ours():
        out = fn.readers.tfrecord(path=path, index_path=path + ".idx", features=features(tfr), num_shards=2, shard_id=1)
        return out["x"], out["y"], out["s"]

    def theirs():
        out = dali.fn.readers.tfrecord(
            path=path, index_path=path + ".idx", features=features(dali_tfr), num_shards=2, shard_id=1
        )
        return out["x"], out["y"], out["s"]

    a, b = _run_both(ours, theirs, 3, 5)
    _assert_same(a, b, "readers.tfrecord")
