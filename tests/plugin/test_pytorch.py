"""PyTorch plugin: conversion, DALI parity, state_dict, DataLoader, torch.distributed.checkpoint."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install pipestate[torch])")

from pipestate import fn, pipeline_def  # noqa: E402
from pipestate.plugin.pytorch import (  # noqa: E402
    DALIClassificationIterator,
    DALIGenericIterator,
    DALIIterableDataset,
    DALIRaggedIterator,
    LastBatchPolicy,
    feed_ndarray,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    os.mkdir(root / "0")
    for i in range(11):
        (root / "0" / f"{i:02}.jpg").write_bytes(bytes([i]))
    return str(root)


@pipeline_def(batch_size=4, seed=3, enable_checkpointing=True)
def randoms():
    return fn.random.uniform(shape=[3]), fn.random.coin_flip()


def test_outputs_are_cpu_tensors_sharing_memory_with_numpy():
    it = DALIGenericIterator(randoms(), ["u", "flip"], size=40)
    (out,) = next(it)
    assert out["u"].shape == (4, 3) and out["u"].dtype == torch.float32 and out["u"].device.type == "cpu"
    assert out["flip"].dtype == torch.int32
    reference = randoms()
    u, flip = reference.run()
    np.testing.assert_array_equal(out["u"].numpy(), np.asarray(u))
    np.testing.assert_array_equal(out["flip"].numpy(), np.asarray(flip))


def test_classification_iterator_names_data_and_label(data_dir):
    @pipeline_def(batch_size=3, seed=1)
    def files():
        return fn.readers.file(file_root=data_dir, name="Reader")

    (out,) = next(DALIClassificationIterator(files(), reader_name="Reader"))
    assert set(out) == {"data", "label"} and out["data"].tolist() == [[0], [1], [2]]


@pipeline_def(batch_size=3, seed=1, enable_checkpointing=True)
def ragged():
    def source(info):
        return [np.arange(info.iteration + i + 1, dtype=np.int64) for i in range(3)]

    return fn.external_source(source=source, batch_info=True)


def test_ragged_iterator_lists_and_coo():
    it = DALIRaggedIterator(ragged(), ["a"], output_types=[DALIRaggedIterator.SPARSE_LIST_TAG], size=30)
    (out,) = next(it)
    assert [t.tolist() for t in out["a"]] == [[0], [0, 1], [0, 1, 2]]
    it = DALIRaggedIterator(ragged(), ["a"], output_types=[DALIRaggedIterator.SPARSE_COO_TAG], size=30)
    (out,) = next(it)
    assert out["a"].is_sparse
    assert out["a"].to_dense().tolist() == [[0, 0, 0], [0, 1, 0], [0, 1, 2]]


def test_generic_iterator_refuses_ragged_outputs_naming_the_alternative():
    it = DALIGenericIterator(ragged(), ["a"], size=30, prepare_first_batch=False)
    with pytest.raises(ValueError, match="DALIRaggedIterator"):
        next(it)


def test_output_map_must_match_the_outputs():
    with pytest.raises(ValueError, match="distinct"):
        DALIGenericIterator(randoms(), ["u", "u"], size=8)
    with pytest.raises(ValueError, match="one name per output"):
        DALIGenericIterator(randoms(), ["u"], size=8)


def test_feed_ndarray_copies_and_checks():
    u, _ = randoms().run()
    dst = torch.empty((4, 3), dtype=torch.float32)
    assert feed_ndarray(u, dst) is dst
    np.testing.assert_array_equal(dst.numpy(), np.asarray(u))
    with pytest.raises(ValueError, match="shapes differ"):
        feed_ndarray(u, torch.empty((4, 2)))
    with pytest.raises(TypeError, match="element types"):
        feed_ndarray(u, torch.empty((4, 3), dtype=torch.float64))


def test_state_dict_round_trip_into_a_fresh_iterator():
    it = DALIGenericIterator(randoms(), ["u", "flip"], size=20, auto_reset=True)
    for _ in range(7):  # crosses an epoch end (5 batches per epoch)
        try:
            next(it)
        except StopIteration:
            pass
    sd = it.state_dict()
    assert set(sd) == {"checkpoints"} and all(isinstance(c, bytes) for c in sd["checkpoints"])
    expected = [next(it)[0]["u"] for _ in range(3)]
    fresh = DALIGenericIterator(randoms(), ["u", "flip"], size=20, auto_reset=True)
    fresh.load_state_dict(sd)
    assert all(torch.equal(a, next(fresh)[0]["u"]) for a in expected)
    control = DALIGenericIterator(randoms(), ["u", "flip"], size=20, auto_reset=True)
    assert not torch.equal(expected[0], next(control)[0]["u"])  # the check can fail


def test_load_state_dict_errors():
    it = DALIGenericIterator(randoms(), ["u", "flip"], size=20)
    with pytest.raises(ValueError, match="one bytes per pipeline"):
        it.load_state_dict({"checkpoints": []})


def test_iterable_dataset_with_stateful_dataloader():
    stateful = pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata is not installed")
    ds = DALIIterableDataset(lambda: DALIGenericIterator(randoms(), ["u", "flip"], size=24))
    loader = stateful.StatefulDataLoader(ds, batch_size=None, num_workers=0)
    it = iter(loader)
    for _ in range(2):
        next(it)
    sd = loader.state_dict()
    rest = [b["u"] for b in it]
    assert len(rest) == 4
    ds2 = DALIIterableDataset(lambda: DALIGenericIterator(randoms(), ["u", "flip"], size=24))
    loader2 = stateful.StatefulDataLoader(ds2, batch_size=None, num_workers=0)
    loader2.load_state_dict(sd)
    assert [b["u"].tolist() for b in loader2] == [r.tolist() for r in rest]
    epoch2 = [b["u"] for b in loader2]  # the next epoch, after the iterator's reset
    assert len(epoch2) == 6


def test_iterable_dataset_with_plain_dataloader_runs_epochs():
    it = DALIGenericIterator(randoms(), ["u", "flip"], size=12)
    loader = torch.utils.data.DataLoader(DALIIterableDataset(it), batch_size=None)
    first, second = [b["u"] for b in loader], [b["u"] for b in loader]
    assert len(first) == len(second) == 3 and not torch.equal(first[0], second[0])


# ---- DALI parity: the same pipeline through DALI's iterator and ours ----------------------------------
def _run(lib, data_dir, bs, shards, policy, pad, stick, auto_reset, steps=18):
    if lib == "dali":
        from nvidia.dali import fn as f
        from nvidia.dali import pipeline_def as pd
        from nvidia.dali.plugin.pytorch import DALIGenericIterator as It
        from nvidia.dali.plugin.pytorch import LastBatchPolicy as L
    else:
        f, pd, It, L = fn, pipeline_def, DALIGenericIterator, LastBatchPolicy

    def make(sid):
        @pd(batch_size=bs, num_threads=1, device_id=None, seed=1)
        def p():
            data, _ = f.readers.file(
                file_root=data_dir,
                name="Reader",
                pad_last_batch=pad,
                num_shards=shards,
                shard_id=sid,
                stick_to_shard=stick,
            )
            return data

        return p()

    try:
        it = It(
            [make(s) for s in range(shards)],
            ["d"],
            reader_name="Reader",
            auto_reset=auto_reset,
            last_batch_policy=getattr(L, policy.name),
        )
    except RuntimeError:
        return "no data"
    seen = []
    for _ in range(steps):
        try:
            seen.append([o["d"][:, 0].tolist() for o in next(it)])
        except StopIteration:
            seen.append(None)
            if not auto_reset:
                it.reset()
    return seen, len(it)


PARITY = list(itertools.product((1, 3, 4), (1, 2, 3), LastBatchPolicy, (False, True), (False, True), (True, False)))


def _check_parity(data_dir, config):
    pytest.importorskip("nvidia.dali", reason="DALI (the reference) is not installed (pip install pipestate[dali])")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _run("pipestate", data_dir, *config) == _run("dali", data_dir, *config)


@pytest.mark.parametrize("config", PARITY[::9])
def test_same_batches_and_epoch_ends_as_dali(data_dir, config):
    _check_parity(data_dir, config)


@pytest.mark.slow
@pytest.mark.parametrize("config", PARITY)
def test_same_batches_and_epoch_ends_as_dali_all_configs(data_dir, config):
    _check_parity(data_dir, config)


# ---- torch.distributed.checkpoint: 2 processes, gloo, 127.0.0.1 -------------------------------------
DCP_WORKER = textwrap.dedent(
    """
    import os, sys
    import torch, torch.distributed as dist, torch.distributed.checkpoint as dcp
    from pipestate import fn, pipeline_def
    from pipestate.plugin.pytorch import DALIGenericIterator

    rank, directory, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)

    @pipeline_def(batch_size=2, seed=1, enable_checkpointing=True)
    def pipe():
        data, label = fn.readers.file(file_root=os.environ["DATA"], name="Reader", random_shuffle=True,
                                      initial_fill=4, shard_id=rank, num_shards=2)
        return data, label + fn.random.coin_flip(dtype="int32")

    def make():
        return DALIGenericIterator(pipe(), ["data", "label"], reader_name="Reader", auto_reset=True)

    def take(it, n):
        seen = []
        for _ in range(n):
            try:
                out = next(it)[0]
                seen.append([out["data"][:, 0].tolist(), out["label"].tolist()])
            except StopIteration:
                seen.append(None)
        return seen

    it = make()
    model = torch.nn.Linear(2, 1)
    for _ in range(4):  # crosses the end of the epoch (3 batches per shard)
        try:
            next(it)
        except StopIteration:
            pass
    dcp.save({"model": model, "data": it}, checkpoint_id=directory)
    expected = take(it, 5)
    fresh = make()
    dcp.load({"model": torch.nn.Linear(2, 1), "data": fresh}, checkpoint_id=directory)
    got = take(fresh, 5)
    print("RESULT", rank, got == expected, take(make(), 5) != expected, expected)
    dist.destroy_process_group()
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torch_distributed_checkpoint_two_processes(tmp_path, data_dir):
    pytest.importorskip("torch.distributed.checkpoint")
    script = tmp_path / "worker.py"
    script.write_text(DCP_WORKER)
    port = str(_free_port())
    env = {**os.environ, "DATA": data_dir, "PYTHONPATH": ROOT, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), str(tmp_path / "ckpt"), port],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=120)[0])
    finally:
        for p in procs:
            p.kill()
    results = [line.split(" ", 4) for out in outputs for line in out.splitlines() if line.startswith("RESULT")]
    assert len(results) == 2, outputs
    assert all(r[2] == "True" for r in results), outputs
    assert all(r[3] == "True" for r in results), "control: a fresh iterator gives other batches"
    assert results[0][4] != results[1][4], "the two ranks read different shards"
