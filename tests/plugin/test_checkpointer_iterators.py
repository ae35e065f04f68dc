"""The Checkpointer and the framework iterators: an iterator's counters travel with the data position,
with model and optimizer state in the same step (torch), and pytrees of JAX arrays (jax)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install pipestate[torch])")

from pipestate import Checkpointer, CheckpointMismatchError, fn, pipeline_def  # noqa: E402
from pipestate.io.step import decode_step  # noqa: E402
from pipestate.plugin.pytorch import DALIGenericIterator, LastBatchPolicy  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    for c, n in enumerate((45, 35, 25, 15)):  # 120 files in 4 classes of different sizes
        os.mkdir(root / f"c{c}")
        for i in range(n):
            (root / f"c{c}" / f"{i:03d}.jpg").write_bytes(np.random.default_rng(100 * c + i).bytes(8))
    return str(root)


def make_iterator(data_dir, policy=LastBatchPolicy.PARTIAL, shards=1, checkpoints=None):
    @pipeline_def(batch_size=16, num_threads=1, seed=3, enable_checkpointing=True)
    def pipe(shard_id):
        x, y = fn.readers.file(file_root=data_dir, random_shuffle=True, name="Reader", shard_id=shard_id,
                               num_shards=shards)
        return fn.cast(x, dtype="float32"), y

    cpts = checkpoints or [None] * shards
    pipes = [pipe(s, checkpoint=c) for s, c in zip(range(shards), cpts)]
    return DALIGenericIterator(pipes, ["x", "y"], reader_name="Reader", auto_reset=True, last_batch_policy=policy)


def batches(it, n):
    """``n`` training steps over epochs, as a loop that restarts the iterator at each epoch end."""
    seen = []
    while len(seen) < n:
        try:
            seen.append([d["y"].view(-1).tolist() for d in next(it)])
        except StopIteration:
            continue
    return seen


def train_loop(data_dir, directory, total, save, crash_at=None):
    """A plain training loop over the Checkpointer: resume from the latest step, save every 10 steps."""
    ckpt = Checkpointer(directory, period=10)
    it = make_iterator(data_dir)
    model = torch.nn.Linear(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    counters = {"epoch_ends": 0}
    state = {"data": it, "model": model, "optimizer": opt, "counters": counters}
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        start = ckpt.load_latest(state if save == "all" else it._pipes[0])
    start = 0 if start is None else start + 1
    seen = {}
    step = start
    while step < total:
        if step == crash_at:
            return seen, model
        try:
            batch = next(it)[0]
        except StopIteration:
            state["counters"]["epoch_ends"] += 1
            continue
        seen[step] = (batch["y"].view(-1).tolist(), state["counters"]["epoch_ends"])
        loss = torch.nn.functional.cross_entropy(model(batch["x"] / 255.0), batch["y"].long().view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the control saves the pipeline that the iterator drives
            ckpt.save(state if save == "all" else it._pipes[0], step)
        step += 1
    return seen, model


def test_the_iterator_counters_travel_with_model_and_optimizer(data_dir, tmp_path):
    """The issue's story: 50 steps, PARTIAL (a short last batch every epoch), interrupted at step 23."""
    torch.manual_seed(0)
    whole, whole_model = train_loop(data_dir, tmp_path / "whole", 50, "all")
    torch.manual_seed(0)
    first, _ = train_loop(data_dir, tmp_path / "run", 50, "all", crash_at=23)
    second, model = train_loop(data_dir, tmp_path / "run", 50, "all")
    assert min(second) == 21  # the step after the last save (step 20)
    assert {**first, **second} == whole
    assert [len(y) for y, _ in whole.values()].count(8) == 6  # the short batches that must land right
    for a, b in zip(whole_model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)

    # control: saving only the pipeline (the warning's case) loses the counters: the short batches move
    torch.manual_seed(0)
    first, _ = train_loop(data_dir, tmp_path / "pipe-only", 50, "pipeline", crash_at=23)
    with pytest.warns(UserWarning, match="driven by a DALIGenericIterator; its checkpoint does not hold"):
        second, _ = train_loop(data_dir, tmp_path / "pipe-only", 50, "pipeline")
    late = [s for s in second if second[s][0] != whole[s][0]]
    assert late


def test_a_step_file_holds_the_model_and_optimizer_bit_exactly(data_dir, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 4))
    opt = torch.optim.Adam(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, 3)
    model(torch.randn(5, 8)).sum().backward()
    opt.step()
    sched.step()
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"model": model, "optimizer": opt, "scheduler": sched, "ema": {"w": torch.ones(3)}}, 1)
    kinds = {p.name: p.kind for p in decode_step(open(ckpt.path_for(1), "rb").read()).parts}
    assert kinds == {"model": "torch", "optimizer": "torch", "scheduler": "torch", "ema": "torch"}

    model2 = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 4))
    opt2 = torch.optim.Adam(model2.parameters())
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 3)
    into = {"model": model2, "optimizer": opt2, "scheduler": sched2, "ema": None}
    ckpt.load_latest(into)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    assert sched2.state_dict() == sched.state_dict()
    assert torch.equal(into["ema"]["w"], torch.ones(3))
    state = ckpt.load_latest()  # without objects: the state_dicts, as torch.load gives them
    assert torch.equal(state["model"]["0.weight"], model.state_dict()["0.weight"])


def test_an_iterator_over_several_pipelines_is_one_step(data_dir, tmp_path):
    it = make_iterator(data_dir, shards=2)
    batches(it, 5)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(it, 5)
    assert decode_step(open(ckpt.path_for(5), "rb").read()).names == ["iterator"]
    expected = batches(it, 9)
    again = make_iterator(data_dir, shards=2)
    assert ckpt.load_latest(again) == 5
    assert batches(again, 9) == expected
    state = ckpt.load_latest()
    assert len(state["iterator"]["checkpoints"]) == 2
    dali_style = make_iterator(data_dir, shards=2, checkpoints=state["iterator"]["checkpoints"])
    assert batches(dali_style, 9) == expected


def test_one_pipeline_iterator_gives_dali_checkpoint_bytes(data_dir, tmp_path):
    it = make_iterator(data_dir)
    batches(it, 10)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(it, 10)
    blob = ckpt.load_latest()
    assert blob.step == 10 and blob == it.checkpoints()[0]
    expected = batches(it, 12)
    assert batches(make_iterator(data_dir, checkpoints=[blob]), 12) == expected


@pytest.mark.parametrize("into", ["iterator", "mapping"])
def test_another_last_batch_policy_is_a_mismatch_naming_it(data_dir, tmp_path, into):
    it = make_iterator(data_dir, policy=LastBatchPolicy.FILL)
    batches(it, 3)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(it if into == "iterator" else {"data": it}, 3)
    other = make_iterator(data_dir, policy=LastBatchPolicy.DROP)
    before = other.state_dict()
    with pytest.raises(CheckpointMismatchError, match="last_batch_policy is LastBatchPolicy.DROP, the checkpoint's "
                                                      "iterator had LastBatchPolicy.FILL"):
        ckpt.load_latest(other if into == "iterator" else {"data": other})
    assert other.state_dict() == before


def test_jax_pytrees_restore_as_jax_arrays(tmp_path):
    jax = pytest.importorskip("jax", reason="jax is not installed (pip install pipestate[jax])")
    import jax.numpy as jnp

    params = {"dense": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.zeros(3)}, "step": jnp.array(7)}
    opt_state = (jnp.ones(2), {"mu": jnp.full((2, 3), 0.5)})
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"params": params, "opt_state": opt_state}, 2)
    template = {"params": jax.tree_util.tree_map(jnp.zeros_like, params),
                "opt_state": jax.tree_util.tree_map(jnp.zeros_like, opt_state)}
    assert ckpt.load_latest(template) == 2
    restored = template["params"]
    assert isinstance(restored["dense"]["w"], jax.Array)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool((a == b).all()), restored, params))
    assert isinstance(template["opt_state"], tuple)
    bad = {"params": {"dense": {"w": jnp.zeros((3, 3)), "b": jnp.zeros(3)}, "step": jnp.array(0)}}
    with pytest.raises(CheckpointMismatchError, match=r"\['dense'\]\['w'\]: saved float32\[2, 3\]"):
        ckpt.load_latest(bad)
