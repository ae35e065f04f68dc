"""Storage hardening: long file names, save/load symmetry (issue 9)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from _io_helpers import make_checkpoint, step_of, temp_files
from hypothesis import given, settings
from hypothesis import strategies as st

from pipestate import fn, pipeline_def
from pipestate.checkpoint import FORMAT_VERSION, MAGIC
from pipestate.checkpoint.codec import _crc
from pipestate.errors import CorruptCheckpointError, UnsupportedCheckpointVersionError
from pipestate.io import LocalCheckpointIO
from pipestate.io.local import _HOST, NAME_MAX, TEMP_RE, is_temp_name, temp_name


@pytest.mark.parametrize("name", ["a" * 240, "b" * 255, "é" * 127, "ck-" + "数" * 84])
def test_save_and_load_a_name_up_to_name_max(tmp_path, name):
    assert len(os.fsencode(name)) <= NAME_MAX
    io = LocalCheckpointIO()
    io.save_checkpoint(make_checkpoint(3), tmp_path / name)
    assert step_of(io.load_checkpoint(tmp_path / name)) == 3
    assert os.listdir(tmp_path) == [name]


@pipeline_def(batch_size=2, seed=5, num_threads=1, enable_checkpointing=True)
def _uniform():
    return fn.random.uniform(range=(0.0, 1.0))


def test_pipeline_checkpoint_to_a_240_character_file_name(tmp_path):
    pipe = _uniform()
    pipe.run()
    path = tmp_path / ("x" * 240)
    blob = pipe.checkpoint(os.fspath(path))
    assert path.read_bytes() == blob
    want = np.asarray(pipe.run()[0])
    pipe.close()
    restored = _uniform(checkpoint=path.read_bytes())
    np.testing.assert_array_equal(np.asarray(restored.run()[0]), want)
    restored.close()


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\0"), min_size=1, max_size=255))
def test_temp_names_always_fit_and_are_recognized(name):
    if len(os.fsencode(name)) > NAME_MAX:
        return
    tmp = temp_name(name)
    assert len(os.fsencode(tmp)) <= NAME_MAX
    assert is_temp_name(tmp)
    assert TEMP_RE.match(tmp)["pid"] == str(os.getpid())
    if len(os.fsencode(name)) <= NAME_MAX - 32:
        assert tmp.startswith(f".{name}.tmp-")  # short names are kept whole


def test_long_names_that_share_a_prefix_get_different_temp_stems():
    a, b = "p" * 250 + "a", "p" * 250 + "b"
    assert temp_name(a).split(".tmp-")[0] != temp_name(b).split(".tmp-")[0]


def test_stale_temp_of_a_long_name_is_cleaned(tmp_path, monkeypatch):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with monkeypatch.context() as m:  # the name the dead process wrote (its pid may have more digits than ours)
        m.setattr(os, "getpid", lambda: proc.pid)
        stale = temp_name("z" * 250)
    assert len(os.fsencode(stale)) <= NAME_MAX and f"-{_HOST}-" in stale
    (tmp_path / stale).write_bytes(b"partial")
    LocalCheckpointIO().save_checkpoint(make_checkpoint(), tmp_path / ("z" * 250))
    assert temp_files(str(tmp_path)) == []
    assert os.listdir(tmp_path) == ["z" * 250]


def _future_version(blob: bytes) -> bytes:
    from pipestate._proto.pipestate.v1 import checkpoint_pb2 as pb

    env = pb.Checkpoint.FromString(blob)
    env.format_version = FORMAT_VERSION + 1
    env.payload_crc32 = _crc(env.format_version, env.payload)
    assert env.magic == MAGIC
    return env.SerializeToString()


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", CorruptCheckpointError),
        (b"not a checkpoint", CorruptCheckpointError),
        (make_checkpoint(2)[:-1], CorruptCheckpointError),
        (_future_version(make_checkpoint(2)), UnsupportedCheckpointVersionError),
    ],
    ids=["empty", "foreign", "truncated", "future-version"],
)
def test_local_save_refuses_what_load_refuses(tmp_path, data, error):
    io = LocalCheckpointIO()
    path = tmp_path / "c.pscpt"
    with pytest.raises(error, match="refusing to save .*c.pscpt"):
        io.save_checkpoint(data, path)
    assert os.listdir(tmp_path) == []  # nothing written, not even a temp file
    path.write_bytes(data)  # written behind its back: the load refuses it the same way
    with pytest.raises(error):
        io.load_checkpoint(path)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_local_save_and_load_agree_on_any_bytes(data):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        io = LocalCheckpointIO(fsync=False)
        path = os.path.join(d, "c")
        try:
            io.save_checkpoint(data, path)
        except (CorruptCheckpointError, UnsupportedCheckpointVersionError):
            assert os.listdir(d) == []
            return
        assert io.load_checkpoint(path) == data
