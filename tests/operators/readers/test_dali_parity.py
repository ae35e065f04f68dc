"""Differential test: without shuffling, fn.readers.file yields exactly DALI's sample sequence and
reader_meta, for every shard_id/num_shards (1..4), stick_to_shard, pad_last_batch and a few batch sizes."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest

from pipestate import fn, pipeline_def
from tests.operators.readers.conftest import make_files

dali = pytest.importorskip(
    "nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)"
)

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
