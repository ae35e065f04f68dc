from __future__ import annotations

import os

import numpy as np
import pytest
from _io_helpers import make_checkpoint, step_of, temp_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipestate
from pipestate import Checkpointer, fn, pipeline_def
from pipestate.errors import CorruptCheckpointError
from pipestate.io import CheckpointIO, LocalCheckpointIO
from pipestate.io.local import _HOST


class RecordingIO(LocalCheckpointIO):
    """A plugin named by class-name string in the tests below."""

    calls: list[str] = []

    def save_checkpoint(self, data, path, storage_options=None):
        RecordingIO.calls.append(os.path.basename(path))
        super().save_checkpoint(data, path, storage_options)


@pipeline_def(batch_size=4, seed=7, num_threads=1, enable_checkpointing=True)
def _rand_pipe():
    return fn.random.uniform(range=(0.0, 1.0)), fn.random.coin_flip()


def _outputs(pipe) -> list[np.ndarray]:
    return [np.asarray(b) for b in pipe.run()]


def test_top_level_export():
    assert pipestate.Checkpointer is Checkpointer
    assert pipestate.__all__ == sorted(pipestate.__all__)
    assert "Checkpointer" in pipestate.__all__


def test_period_force_and_naming(tmp_path):
    ckpt = Checkpointer(tmp_path, prefix="run", period=5)
    saved = [ckpt.save(make_checkpoint(s), s) for s in range(12)]
    assert [p is not None for p in saved] == [s % 5 == 0 for s in range(12)]
    assert saved[10] == str(tmp_path / "run-000000000010.pscpt")
    assert ckpt.save(make_checkpoint(11), 11, force=True) == ckpt.path_for(11)
    assert ckpt.steps() == [0, 5, 10, 11]
    assert ckpt.latest() == ckpt.path_for(11)
    assert step_of(ckpt.load_latest()) == 11


def test_large_steps_sort_numerically(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(make_checkpoint(999_999_999_999), 999_999_999_999)
    ckpt.save(make_checkpoint(10**13), 10**13)
    assert ckpt.steps() == [999_999_999_999, 10**13]
    assert step_of(ckpt.load_latest()) == 10**13


@pytest.mark.parametrize("blob", [b"", b"not a checkpoint", make_checkpoint(1)[:-4]])
def test_refuses_invalid_bytes(tmp_path, blob):
    ckpt = Checkpointer(tmp_path)
    with pytest.raises(ValueError, match="refusing to save step 3") as info:
        ckpt.save(blob, 3)
    assert isinstance(info.value, CorruptCheckpointError)
    assert not tmp_path.exists() or os.listdir(tmp_path) == []


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="period"):
        Checkpointer(tmp_path, period=0)
    with pytest.raises(ValueError, match="keep_last"):
        Checkpointer(tmp_path, keep_last=0)
    with pytest.raises(ValueError, match="prefix"):
        Checkpointer(tmp_path, prefix="a/b")
    with pytest.raises(ValueError, match="prefix"):
        Checkpointer(tmp_path, prefix=".hidden")
    ckpt = Checkpointer(tmp_path)
    with pytest.raises(ValueError, match="step"):
        ckpt.save(make_checkpoint(), -1)
    with pytest.raises(TypeError, match="checkpoint bytes, a pipeline, a framework iterator .* not a str"):
        ckpt.save("text", 1)


def test_empty_or_missing_directory(tmp_path):
    ckpt = Checkpointer(tmp_path / "missing")
    assert ckpt.latest() is None
    assert ckpt.load_latest() is None
    assert ckpt.latest_step() is None
    assert ckpt.steps() == []


def test_latest_skips_temp_foreign_truncated_corrupt_and_empty(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(make_checkpoint(3), 3)
    good = make_checkpoint(9, pad=500)
    (tmp_path / "checkpoint-000000000004.pscpt").write_bytes(good[:-10])  # truncated
    flipped = bytearray(make_checkpoint(5, pad=500))
    flipped[len(flipped) // 2] ^= 0x01
    (tmp_path / "checkpoint-000000000005.pscpt").write_bytes(bytes(flipped))  # bit flip
    (tmp_path / "checkpoint-000000000006.pscpt").write_bytes(b"")  # empty
    (tmp_path / "checkpoint-000000000007.pscpt").write_bytes(b"\x89PNG\r\n\x1a\n")  # foreign content
    (tmp_path / f".checkpoint-000000000008.pscpt.tmp-{_HOST}-1-00000000").write_bytes(good)  # temp
    (tmp_path / "checkpoint-000000000009.pscpt.bak").write_bytes(good)  # foreign name
    (tmp_path / "other-000000000010.pscpt").write_bytes(good)  # another prefix
    (tmp_path / "checkpoint-000000000011.pscpt").mkdir()  # a directory
    assert ckpt.latest() == ckpt.path_for(3)
    assert step_of(ckpt.load_latest()) == 3
    assert ckpt.latest_step() == 3
    assert ckpt.steps() == [3, 4, 5, 6, 7, 11]


def test_latest_step_resume_loop_continues_bit_exactly(tmp_path):
    """The loop of docs/storage.md: the checkpoint saved at step s resumes at s + 1."""

    def train(total, crash_at=None):
        ckpt = Checkpointer(tmp_path / "run", period=3)
        latest = ckpt.load_latest()
        pipe = _rand_pipe(checkpoint=latest)
        seen = {}
        for step in range(0 if latest is None else latest.step + 1, total):
            if step == crash_at:
                return seen
            seen[step] = _outputs(pipe)
            ckpt.save(pipe, step)
        pipe.close()
        return seen

    reference = _rand_pipe()
    expected = [_outputs(reference) for _ in range(10)]
    reference.close()
    first = train(10, crash_at=8)  # steps 0..7 done; checkpoints at 0, 3 and 6
    assert Checkpointer(tmp_path / "run").latest_step() == 6
    second = train(10)
    assert sorted(second) == [7, 8, 9]
    for step, outs in {**first, **second}.items():
        for got, want in zip(outs, expected[step]):
            np.testing.assert_array_equal(got, want)


def test_retention_keeps_last_and_only_touches_own_files(tmp_path):
    ckpt = Checkpointer(tmp_path, prefix="a", keep_last=2)
    other = Checkpointer(tmp_path, prefix="b", keep_last=1)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "a-000000000000.pscpt.bak").write_bytes(make_checkpoint())
    for s in range(6):
        ckpt.save(make_checkpoint(s), s)
        other.save(make_checkpoint(100 + s), s)
    assert ckpt.steps() == [4, 5]
    assert other.steps() == [5]
    assert sorted(os.listdir(tmp_path)) == [
        "a-000000000000.pscpt.bak",
        "a-000000000004.pscpt",
        "a-000000000005.pscpt",
        "b-000000000005.pscpt",
        "notes.txt",
    ]


def test_retention_never_deletes_newest_valid(tmp_path):
    ckpt = Checkpointer(tmp_path, keep_last=1)
    for s in (11, 12):
        (tmp_path / f"checkpoint-{s:012d}.pscpt").write_bytes(b"garbage")
    ckpt.save(make_checkpoint(10), 10)
    assert ckpt.latest() == ckpt.path_for(10)
    assert ckpt.steps() == [10, 11, 12]  # damaged files take no keep_last slot; newer than any valid: kept
    ckpt.save(make_checkpoint(13), 13)
    assert ckpt.steps() == [13]  # now older than a valid checkpoint: deleted with the one beyond keep_last


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.dictionaries(
        st.integers(0, 10**6),
        st.sampled_from(["valid", "truncated", "flipped", "empty", "foreign", "temp", "other_prefix"]),
        max_size=12,
    )
)
def test_latest_picks_highest_valid_step(tmp_path_factory, files):
    d = tmp_path_factory.mktemp("prop")
    for step, kind in files.items():
        blob = make_checkpoint(step, pad=64)
        name = f"checkpoint-{step:012d}.pscpt"
        if kind == "truncated":
            blob = blob[: len(blob) // 3]
        elif kind == "flipped":
            blob = blob[:-5] + bytes([blob[-5] ^ 0x80]) + blob[-4:]
        elif kind == "empty":
            blob = b""
        elif kind == "foreign":
            blob = os.urandom(40)
        elif kind == "temp":
            name = f".{name}.tmp-{_HOST}-1-abcdef01"
        elif kind == "other_prefix":
            name = f"other-{step:012d}.pscpt"
        (d / name).write_bytes(blob)
    valid = [s for s, k in files.items() if k == "valid"]
    ckpt = Checkpointer(d)
    if valid:
        assert ckpt.latest() == ckpt.path_for(max(valid))
        assert step_of(ckpt.load_latest()) == max(valid)
    else:
        assert ckpt.latest() is None


def test_checkpoint_io_by_class_name(tmp_path):
    RecordingIO.calls.clear()
    ckpt = Checkpointer(tmp_path, checkpoint_io=f"{__name__}.RecordingIO")
    assert type(ckpt.checkpoint_io).__name__ == "RecordingIO"
    ckpt.save(make_checkpoint(2), 2)
    assert RecordingIO.calls == ["checkpoint-000000000002.pscpt"]
    assert type(Checkpointer(tmp_path, checkpoint_io="pipestate.io:LocalCheckpointIO").checkpoint_io) is (
        LocalCheckpointIO
    )
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg.io'"):
        Checkpointer(tmp_path, checkpoint_io="no_such_pkg.io.MyIO")
    with pytest.raises(ValueError, match="has no attribute 'NoSuchIO'"):
        Checkpointer(tmp_path, checkpoint_io="pipestate.io.NoSuchIO")
    with pytest.raises(ValueError, match="fully-qualified"):
        Checkpointer(tmp_path, checkpoint_io="LocalCheckpointIO")
    with pytest.raises(TypeError, match="not a CheckpointIO"):
        Checkpointer(tmp_path, checkpoint_io="collections.OrderedDict")
    with pytest.raises(TypeError, match="CheckpointIO instance"):
        Checkpointer(tmp_path, checkpoint_io=42)


def test_duck_typed_plugin_instance(tmp_path):
    class DictIO:
        def __init__(self):
            self.store: dict[str, bytes] = {}

        def save_checkpoint(self, data, path, storage_options=None):
            self.store[os.path.basename(path)] = bytes(data)

        def load_checkpoint(self, path):
            return self.store[os.path.basename(path)]

        def remove_checkpoint(self, path):
            self.store.pop(os.path.basename(path), None)

        def list_dir(self, directory):
            return list(self.store)

    io = DictIO()
    ckpt = Checkpointer("somewhere", keep_last=2, checkpoint_io=io)
    for s in range(4):
        ckpt.save(make_checkpoint(s), s)
    assert sorted(io.store) == ["checkpoint-000000000002.pscpt", "checkpoint-000000000003.pscpt"]
    assert step_of(ckpt.load_latest()) == 3
    assert not isinstance(io, CheckpointIO)


def test_saves_a_pipeline_and_restores_it(tmp_path):
    pipe = _rand_pipe()
    ckpt = Checkpointer(tmp_path, keep_last=2)
    for step in range(1, 4):
        _outputs(pipe)
        ckpt.save(pipe, step)
    expected = _outputs(pipe)
    restored = _rand_pipe(checkpoint=ckpt.load_latest())
    for a, b in zip(expected, _outputs(restored), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ckpt.steps() == [2, 3]


def test_pipeline_checkpoint_filename_is_atomic_and_restorable(tmp_path, monkeypatch):
    pipe = _rand_pipe()
    _outputs(pipe)
    path = tmp_path / "deep" / "dir" / "pipe.pscpt"
    blob = pipe.checkpoint(path)
    assert path.read_bytes() == blob
    expected = _outputs(pipe)
    restored = _rand_pipe(checkpoint=open(path, "rb").read())
    np.testing.assert_array_equal(expected[0], _outputs(restored)[0])
    # it goes through LocalCheckpointIO: a failed write keeps the previous file and leaves no temp
    import errno

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(OSError) as info:
        pipe.checkpoint(path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    assert path.read_bytes() == blob
    assert temp_files(str(path.parent)) == []


def test_plugins_doc_example(tmp_path, monkeypatch):
    """Run the worked example of docs/plugins.md (both code blocks) end to end."""
    import re

    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "plugins.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(blocks[0], ns)
    exec(blocks[1], ns)
    ckpt = ns["ckpt"]
    for s in range(5):
        ckpt.save(make_checkpoint(s), s)
    assert ckpt.steps() == [2, 3, 4]
    assert step_of(ckpt.load_latest()) == 4
    io = ns["SQLiteCheckpointIO"]()
    with pytest.raises(FileNotFoundError):
        io.load_checkpoint("runs/exp1/nope.pscpt")
    junk = ckpt.path_for(9)
    io.save_checkpoint(b"junk", junk)
    assert ckpt.steps() == [2, 3, 4, 9]
    assert step_of(ckpt.load_latest()) == 4  # the junk row is skipped
    with pytest.raises(CorruptCheckpointError, match="checkpoint-000000000009"):
        io.load_checkpoint(junk)
    io.teardown()
    ckpt.checkpoint_io.teardown()


def test_load_latest_carries_its_step_decided_by_one_scan(tmp_path):
    """A save that completes between two calls cannot make the resume step and the data disagree: the step
    comes with the bytes (one scan, one decision), even while a background save is in flight."""
    import threading

    from pipestate.io import AsyncCheckpointIO

    gate = threading.Event()

    class SlowIO(LocalCheckpointIO):
        def save_checkpoint(self, data, path, storage_options=None):
            if path.endswith("000000000002.pscpt"):
                gate.wait(10)
            super().save_checkpoint(data, path, storage_options)

    io = AsyncCheckpointIO(SlowIO())
    ckpt = Checkpointer(tmp_path, checkpoint_io=io)
    ckpt.save(make_checkpoint(1), 1)
    ckpt.wait()
    ckpt.save(make_checkpoint(2), 2)  # blocked in the background
    loaded = ckpt.load_latest()
    assert loaded.step == 1 and step_of(loaded) == 1 and ckpt.latest_step() == 1  # step 2 is not durable yet
    gate.set()
    ckpt.wait()
    loaded = ckpt.load_latest()
    assert loaded.step == step_of(loaded) == 2 == ckpt.latest_step() and loaded.path == ckpt.path_for(2)
    io.close()
