"""Differential test against DALI for the format readers (webdataset, mxnet, caffe, caffe2, nemo_asr,
sequence): the same outputs, byte for byte, batch after batch over several reader epochs, and the same
``reader_meta``, for shard_id/num_shards/stick_to_shard/pad_last_batch and ``random_shuffle`` with
``initial_fill=1`` (DALI's fixed pre-shuffle where DALI has one). A sample of the grid runs by default;
``PIPESTATE_SLOW=1`` runs all of it."""

from __future__ import annotations

import itertools
import math
import os
import warnings

import numpy as np
import pytest

import pipestate
from tests.operators.readers.datasets import DATASETS

dali = pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SLOW = os.environ.get("PIPESTATE_SLOW") == "1"
SHARDS = [(0, 1), (1, 2), (0, 3), (2, 3)]
GRID = [
    dict(shard_id=s, num_shards=n, stick_to_shard=st, pad_last_batch=p)
    for (s, n), st, p in itertools.product(SHARDS, [False, True], [False, True])
]
GRID += [dict(random_shuffle=True, initial_fill=1), dict(random_shuffle=True, initial_fill=1, shard_id=1, num_shards=2)]
SAMPLE = [GRID[i] for i in (0, 3, 6, 13, 15, len(GRID) - 1)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    made = {}
    for name, (build, needs) in DATASETS.items():
        try:
            if needs:
                __import__(needs)
        except ImportError:
            continue
        root = tmp_path_factory.mktemp(name)
        made[name] = build(os.fspath(root))
    return made


def run(lib, name: str, kwargs: dict, batch_size: int, iters: int):
    extra = {"device_id": None} if lib is dali else {}

    @lib.pipeline_def(batch_size=batch_size, num_threads=1, seed=3, prefetch_queue_depth=1, **extra)
    def pipe():
        out = getattr(lib.fn.readers, name)(name="r", **kwargs)
        return tuple(out) if isinstance(out, list) else out

    p = pipe()
    if lib is dali:
        p.build()
    meta = p.reader_meta("r")
    batches = []
    for _ in range(iters):
        outs = p.run()
        batches.append(
            [
                [np.array(o[i]).dtype.str + str(np.array(o[i]).shape) + np.array(o[i]).tobytes().hex() for o in outs]
                for i in range(batch_size)
            ]
        )
    if lib is pipestate:
        p.close()
    return meta, batches


@pytest.mark.dali_differential(
    "readers.webdataset", "readers.mxnet", "readers.caffe", "readers.caffe2", "readers.nemo_asr", "readers.sequence"
)
@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("config", GRID if SLOW else SAMPLE, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("batch_size", [3] if not SLOW else [1, 3, 4])
def test_same_outputs_and_meta_as_dali(data, name: str, config: dict, batch_size: int) -> None:
    if name not in data:
        pytest.skip(f"{DATASETS[name][1]} is not installed")
    kwargs = dict(data[name], **config)
    size = run(pipestate, name, kwargs, 1, 0)[0]["epoch_size"]
    per_epoch = math.ceil(math.ceil(size / config.get("num_shards", 1)) / batch_size)
    iters = (config.get("num_shards", 1) + 1) * per_epoch + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = run(dali, name, kwargs, batch_size, iters)
    assert run(pipestate, name, kwargs, batch_size, iters) == expected
