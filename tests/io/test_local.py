from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest
from _io_helpers import make_checkpoint, step_of, temp_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate.errors import CorruptCheckpointError
from pipestate.io import LocalCheckpointIO
from pipestate.io.local import _HOST, is_temp_name, temp_name


def test_roundtrip_stores_bytes_verbatim(tmp_path):
    io = LocalCheckpointIO()
    blob = make_checkpoint(3)
    path = tmp_path / "a.pscpt"
    assert io.save_checkpoint(blob, path) is None
    assert path.read_bytes() == blob  # restorable with open(path, "rb").read()
    assert io.load_checkpoint(path) == blob
    assert io.load_checkpoint(str(path)) == blob
    assert temp_files(str(tmp_path)) == []


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_accepts_bytes_like(tmp_path, wrap):
    blob = make_checkpoint(1)
    LocalCheckpointIO().save_checkpoint(wrap(blob), tmp_path / "x")
    assert (tmp_path / "x").read_bytes() == blob


def test_rejects_non_bytes_and_storage_options(tmp_path):
    io = LocalCheckpointIO()
    with pytest.raises(TypeError, match="bytes-like"):
        io.save_checkpoint("text", tmp_path / "x")
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint(make_checkpoint(), tmp_path / "x", {"acl": "private"})
    assert os.listdir(tmp_path) == []


def test_creates_parent_directories_and_overwrites(tmp_path):
    io = LocalCheckpointIO()
    path = tmp_path / "a" / "b" / "c" / "ck.pscpt"
    io.save_checkpoint(make_checkpoint(1), path)
    io.save_checkpoint(make_checkpoint(2), path)
    assert step_of(io.load_checkpoint(path)) == 2
    assert os.listdir(path.parent) == ["ck.pscpt"]


def test_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        LocalCheckpointIO().save_checkpoint(make_checkpoint(), tmp_path / "m")
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o644


def test_without_fsync_still_atomic(tmp_path):
    io = LocalCheckpointIO(fsync=False)
    io.save_checkpoint(make_checkpoint(5), tmp_path / "n" / "f")
    assert step_of(io.load_checkpoint(tmp_path / "n" / "f")) == 5
    assert temp_files(str(tmp_path / "n")) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:-1], id="last-byte-missing"),
        pytest.param(lambda b: b[:-3] + bytes([b[-3] ^ 0x10]) + b[-2:], id="bit-flipped"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"PK\x03\x04 this is a zip file, not a checkpoint", id="foreign"),
    ],
)
def test_load_damaged_file_raises_corrupt_naming_the_path(tmp_path, damage):
    path = tmp_path / "bad.pscpt"
    path.write_bytes(damage(make_checkpoint(9, pad=100)))
    with pytest.raises(CorruptCheckpointError, match="bad.pscpt") as info:
        LocalCheckpointIO().load_checkpoint(path)
    assert isinstance(info.value, ValueError)
    assert "earlier" in str(info.value)


def test_load_missing_raises_file_not_found_with_path(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        LocalCheckpointIO().load_checkpoint(tmp_path / "nope.pscpt")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename.endswith("nope.pscpt")
    assert "loading the checkpoint" in str(info.value)


def test_remove(tmp_path):
    io = LocalCheckpointIO()
    path = tmp_path / "r"
    io.save_checkpoint(make_checkpoint(), path)
    io.remove_checkpoint(path)
    assert not path.exists()
    io.remove_checkpoint(path)  # missing is fine


def test_temp_name_is_recognizable():
    name = temp_name("checkpoint-000000000001.pscpt")
    assert name.startswith(".checkpoint-000000000001.pscpt.tmp-")
    assert is_temp_name(name)
    assert f"-{os.getpid()}-" in name
    assert temp_name("x") != temp_name("x")
    assert not is_temp_name("checkpoint-000000000001.pscpt")
    assert not is_temp_name(".hidden")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_cleaning_policy(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": f".a.tmp-{_HOST}-{_dead_pid()}-0000aaaa",
            "live_fresh": f".b.tmp-{_HOST}-{sleeper.pid}-0000bbbb",
            "live_old": f".c.tmp-{_HOST}-{sleeper.pid}-0000cccc",
            "ours_old": f".d.tmp-{_HOST}-{os.getpid()}-0000dddd",
            "other_host_fresh": f".e.tmp-deadbeef-{_dead_pid()}-0000eeee",
            "other_host_old": ".f.tmp-deadbeef-1-0000ffff",
            "not_a_temp": ".g.tmp-zz",
        }
        old = time.time() - 7200
        for key, name in names.items():
            (tmp_path / name).write_bytes(b"partial")
            if key.endswith("_old"):
                os.utime(tmp_path / name, (old, old))
        io = LocalCheckpointIO(stale_temp_age=3600)
        io.save_checkpoint(make_checkpoint(), tmp_path / "new.pscpt")  # cleaning runs after each save
        left = set(os.listdir(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = {k for k, n in names.items() if n not in left}
    assert gone == {"dead", "live_old", "other_host_old"}
    assert "new.pscpt" in left


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pad=st.integers(0, 300_000), step=st.integers(0, 2**40))
def test_roundtrip_property(tmp_path, pad, step):
    io = LocalCheckpointIO(fsync=False)
    blob = make_checkpoint(step, pad)
    io.save_checkpoint(blob, tmp_path / "p")
    assert io.load_checkpoint(tmp_path / "p") == blob
    assert step_of(blob) == step
