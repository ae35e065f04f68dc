"""Checkpointer steps with parts: the data position (pipelines, framework iterators with their counters)
saved with model, optimizer and trainer state in one step, restored into objects, all or nothing."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pytest

from pipestate import Checkpointer, CheckpointMismatchError, fn, pipeline_def
from pipestate.io import CheckpointBytes, StepState
from pipestate.io.step import decode_step, is_step


@pipeline_def(batch_size=4, seed=7, num_threads=1, enable_checkpointing=True)
def rand_pipe():
    return fn.random.uniform(range=(0.0, 1.0))


def out(pipe):
    return np.asarray(pipe.run()[0]).copy()


class Counter:
    """A stateful object whose state is plain data (a trainer's counters)."""

    def __init__(self):
        self.seen = 0

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        if set(state) != {"seen"}:
            raise KeyError("not a Counter state")
        self.seen = state["seen"]


def test_parts_round_trip_in_place_and_replaced(tmp_path):
    pipe, counter = rand_pipe(), Counter()
    out(pipe)
    counter.seen = 5
    params = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": (np.float64(2.5), np.zeros(2, np.int8)),
              "count": 7}
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"data": pipe, "trainer": counter, "params": params, "epoch": {"n": 3, "name": "x"},
               "blob": b"\x00raw"}, 11)
    expected = [out(pipe) for _ in range(3)]

    pipe2, counter2 = rand_pipe(), Counter()
    into = {"data": pipe2, "trainer": counter2, "params": {"w": np.zeros((2, 3), np.float32),
                                                           "b": (np.float64(0), np.ones(2, np.int8)), "count": 0},
            "epoch": None, "blob": None}
    assert ckpt.load_latest(into) == 11
    assert into["data"] is pipe2 and into["trainer"] is counter2 and counter2.seen == 5
    for want in expected:
        np.testing.assert_array_equal(out(pipe2), want)
    np.testing.assert_array_equal(into["params"]["w"], params["w"])
    assert isinstance(into["params"]["b"], tuple) and into["params"]["b"][0] == 2.5
    assert sorted(into["params"]) == ["b", "count", "w"]  # (jax, if imported, sorts dict keys as its pytrees)
    assert into["params"]["count"] == 7 and type(into["params"]["count"]) is int
    assert into["epoch"] == {"n": 3, "name": "x"} and into["blob"] == b"\x00raw"


def test_load_latest_without_objects_returns_the_values(tmp_path):
    pipe = rand_pipe()
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"data": pipe, "epoch": 4, "arrays": [np.ones(2)]}, 3)
    state = ckpt.load_latest()
    assert isinstance(state, StepState) and state.step == 3 and state.path == ckpt.path_for(3)
    assert state["epoch"] == 4 and list(state["arrays"]) == ["[0]"]
    assert rand_pipe(checkpoint=state["data"]).checkpoint() == pipe.checkpoint()

    ckpt.save(pipe, 4)  # one pipeline: the file is its checkpoint, as DALI's bytes
    blob = ckpt.load_latest()
    assert isinstance(blob, CheckpointBytes) and blob.step == 4 and not is_step(blob)
    assert open(ckpt.path_for(4), "rb").read() == blob == pipe.checkpoint()


def test_a_subset_of_the_parts_can_be_restored(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"data": rand_pipe(), "epoch": 4}, 0)
    into = {"epoch": 0}
    assert ckpt.load_latest(into) == 0 and into == {"epoch": 4}


def test_everything_is_checked_before_anything_changes(tmp_path):
    pipe = rand_pipe()
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"data": pipe, "params": {"w": np.zeros(3)}}, 1)
    target = rand_pipe()
    before = target.checkpoint()
    with pytest.raises(CheckpointMismatchError, match="step 1 has no part 'model' .*'data', 'params'"):
        ckpt.load_latest({"data": target, "model": Counter()})
    with pytest.raises(CheckpointMismatchError, match=r"array \['w'\]: saved float64\[3\], the value given is "
                                                      r"float64\[4\]"):
        ckpt.load_latest({"data": target, "params": {"w": np.zeros(4)}})
    with pytest.raises(CheckpointMismatchError, match=r"arrays at \['w'\]; the value given has \['v'\]"):
        ckpt.load_latest({"data": target, "params": {"v": np.zeros(3)}})
    with pytest.raises(CheckpointMismatchError, match="saved as 'pipeline' data, which cannot be restored into a"):
        ckpt.load_latest({"data": Counter()})
    assert target.checkpoint() == before


def test_pipestate_parts_are_rolled_back_when_a_later_part_fails(tmp_path):
    pipe = rand_pipe()
    for _ in range(3):
        out(pipe)
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"data": pipe, "trainer": Counter()}, 1)

    class Broken(Counter):
        def load_state_dict(self, state):
            raise RuntimeError("the model refuses")

    target = rand_pipe()
    out(target)
    before = target.checkpoint()
    with pytest.raises(RuntimeError, match="the model refuses"):
        ckpt.load_latest({"data": target, "trainer": Broken()})
    assert target.checkpoint() == before


def test_a_pipeline_from_another_definition_is_a_mismatch_and_nothing_moves(tmp_path):
    @pipeline_def(batch_size=4, seed=8, num_threads=1, enable_checkpointing=True)
    def other():
        return fn.random.uniform(range=(0.0, 1.0))

    ckpt = Checkpointer(tmp_path)
    ckpt.save({"a": rand_pipe(), "b": rand_pipe()}, 1)
    first, second = rand_pipe(), other()
    out(first)
    before = first.checkpoint()
    with pytest.raises(CheckpointMismatchError, match="seed is 8"):
        ckpt.load_latest({"a": first, "b": second})
    assert first.checkpoint() == before  # restored, then rolled back when "b" failed


@pytest.mark.parametrize(
    ("into", "match"),
    [
        (42, "takes a pipeline, a framework iterator or a mapping"),
        ("text", "takes a pipeline, a framework iterator or a mapping"),
    ],
)
def test_load_latest_into_the_wrong_thing(tmp_path, into, match):
    ckpt = Checkpointer(tmp_path)
    ckpt.save({"a": b"x"}, 1)
    with pytest.raises(TypeError, match=match):
        ckpt.load_latest(into)


def test_the_shape_of_into_must_fit_how_the_step_was_saved(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(rand_pipe(), 1)
    with pytest.raises(TypeError, match="holds one pipeline's checkpoint, not named parts"):
        ckpt.load_latest({"data": rand_pipe()})
    ckpt.save({"a": rand_pipe(), "b": rand_pipe()}, 2)
    with pytest.raises(TypeError, match="holds the parts 'a', 'b'"):
        ckpt.load_latest(rand_pipe())
    ckpt.save({"only": rand_pipe()}, 3)
    target = rand_pipe()
    assert ckpt.load_latest(target) == 3


@pytest.mark.parametrize(
    ("state", "error", "match"),
    [
        ({"x": {1, 2}}, TypeError, "cannot save part 'x', a set"),
        ({"x": {1: "a"}}, TypeError, "cannot save part 'x', a dict"),
        ({"": b"x"}, TypeError, "non-empty strings"),
        ({}, ValueError, "empty mapping"),
        ({"x": object()}, TypeError, "numpy/JAX arrays"),
    ],
)
def test_unsavable_state_names_the_part(tmp_path, state, error, match):
    with pytest.raises(error, match=match):
        Checkpointer(tmp_path).save(state, 1)
    assert not os.path.exists(tmp_path) or os.listdir(tmp_path) == []


def test_retention_counts_only_valid_steps_and_removes_whole_steps(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path, keep_last=2)
    pipe = rand_pipe()
    with caplog.at_level(logging.INFO, logger="pipestate.io.checkpointer"):
        ckpt.save({"data": pipe, "n": 1}, 1)
        ckpt.save({"data": pipe, "n": 2}, 2)
        with open(ckpt.path_for(2), "r+b") as f:  # damage step 2
            f.seek(-3, os.SEEK_END)
            f.write(b"???")
        ckpt.save({"data": pipe, "n": 3}, 3)
    assert ckpt.steps() == [1, 3]  # 2 held a keep_last slot before; now 1 and 3 are the two valid steps
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-000000000001.pscpt", "checkpoint-000000000003.pscpt"]
    assert "saved parts data (pipeline), n (data) to" in caplog.text
    assert "deleted the checkpoint of step 2 (damaged)" in caplog.text
    ckpt.save({"data": pipe, "n": 4}, 4)
    assert ckpt.steps() == [3, 4]
    assert ckpt.load_latest()["n"] == 4


def test_retention_does_not_reread_checkpoints_it_already_validated(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path, keep_last=3)
    for s in range(3):
        ckpt.save({"n": s}, s)
    loads = []
    original = ckpt.checkpoint_io.load_checkpoint
    monkeypatch.setattr(ckpt.checkpoint_io, "load_checkpoint", lambda p: loads.append(p) or original(p))
    for s in range(3, 8):
        ckpt.save({"n": s}, s)
    assert loads == [] and ckpt.steps() == [5, 6, 7]
    with open(ckpt.path_for(6), "ab") as f:  # changed behind its back: validated again
        f.write(b"x")
    ckpt.save({"n": 8}, 8)
    assert loads == [ckpt.path_for(6)] and ckpt.steps() == [5, 7, 8]


def test_save_is_logged_and_the_step_file_is_inspectable(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pipestate.io.checkpointer"):
        path = Checkpointer(tmp_path).save({"data": rand_pipe(), "n": 1}, 7)
    assert f"to {path}" in caplog.text
    step = decode_step(open(path, "rb").read())
    assert step.step == 7 and step.names == ["data", "n"]


def test_a_stateful_object_without_torch_is_saved_as_plain_data(tmp_path):
    ckpt = Checkpointer(tmp_path)
    counter = Counter()
    counter.seen = 9
    ckpt.save({"c": counter}, 1)
    kinds = [p.kind for p in decode_step(open(ckpt.path_for(1), "rb").read()).parts]
    expected = "torch" if "torch" in __import__("sys").modules else "data"
    assert kinds == [expected]
    fresh = Counter()
    ckpt.load_latest({"c": fresh})
    assert fresh.seen == 9


def test_saving_a_pipeline_warns_only_when_an_iterator_drives_it(tmp_path):
    from pipestate.plugin.base_iterator import BaseIterator

    class Plain(BaseIterator):
        def _convert(self, outputs):
            return outputs

    ckpt = Checkpointer(tmp_path)
    pipe = rand_pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ckpt.save(pipe, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "prefer reader_name to size"
        it = Plain(pipe, size=100)
    with pytest.warns(UserWarning, match="driven by a Plain; its checkpoint does not hold the iterator's counters"):
        ckpt.save(pipe, 2)
    with pytest.warns(UserWarning, match="part 'data': this pipeline is driven by a Plain"):
        ckpt.save({"data": pipe}, 3)
    del it


def test_steps_with_parts_on_an_object_store():
    pytest.importorskip("fsspec", reason="fsspec is not installed (pip install pipestate[fsspec])")
    import uuid

    url = f"memory://parts-{uuid.uuid4().hex}/run"
    ckpt = Checkpointer(url, keep_last=1)
    pipe = rand_pipe()
    for step in range(3):
        out(pipe)
        ckpt.save({"data": pipe, "n": step}, step)
    assert ckpt.steps() == [2]
    target = {"data": rand_pipe(), "n": None}
    assert ckpt.load_latest(target) == 2 and target["n"] == 2
    assert target["data"].checkpoint() == pipe.checkpoint()
