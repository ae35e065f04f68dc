"""FsspecCheckpointIO(commit="marker"): the data of interrupted saves is deleted once its writer is gone
(issue 9); nothing else is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from _io_helpers import make_checkpoint, step_of

from pipestate import Checkpointer

fsspec = pytest.importorskip("fsspec", reason="FsspecCheckpointIO needs the optional fsspec extra")

from pipestate.io.fsspec_ import MARKER_SUFFIX, PENDING_SUFFIX, FsspecCheckpointIO  # noqa: E402
from pipestate.io.local import _HOST  # noqa: E402


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _interrupted(fs, url: str, host: str, pid: int, started: float, data: bytes = b"partial") -> None:
    """What a writer killed in the middle of its data upload leaves: an intent and partial data."""
    intent = {"kind": "pipestate-checkpoint-pending", "version": 1, "host": host, "pid": pid, "time": started}
    fs.pipe_file(url + PENDING_SUFFIX, json.dumps(intent).encode())
    fs.pipe_file(url, data)


@pytest.fixture
def root():
    root = f"memory://orphans-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _names(fs, root: str) -> set[str]:
    return {p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}


def test_interrupted_saves_are_deleted_once_their_writer_is_gone(root):
    fs = fsspec.filesystem("memory")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    now, old = time.time(), time.time() - 7200
    try:
        _interrupted(fs, f"{root}/dead.pscpt", _HOST, _dead_pid(), now)
        _interrupted(fs, f"{root}/live_fresh.pscpt", _HOST, sleeper.pid, now)
        _interrupted(fs, f"{root}/live_old.pscpt", _HOST, sleeper.pid, old)
        _interrupted(fs, f"{root}/ours_fresh.pscpt", _HOST, os.getpid(), now)
        _interrupted(fs, f"{root}/other_host_fresh.pscpt", "deadbeef", 1, now)
        _interrupted(fs, f"{root}/other_host_old.pscpt", "deadbeef", 1, old)
        fs.pipe_file(f"{root}/damaged_fresh.pscpt" + PENDING_SUFFIX, b"{not json")
        fs.pipe_file(f"{root}/damaged_fresh.pscpt", b"partial")
        fs.pipe_file(f"{root}/foreign.pscpt", b"no intent: never ours to delete")
        fs.pipe_file(f"{root}/notes.txt", b"a user's file")
        io = FsspecCheckpointIO(orphan_age=3600)
        io.save_checkpoint(make_checkpoint(1), f"{root}/new.pscpt")  # cleaning runs after every save
        left = _names(fs, root)
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = {
        n
        for n in ("dead", "live_fresh", "live_old", "ours_fresh", "other_host_fresh", "other_host_old", "damaged_fresh")
        if f"{n}.pscpt" not in left
    }
    assert gone == {"dead", "live_old", "other_host_old"}
    for name in gone:
        assert f"{name}.pscpt{PENDING_SUFFIX}" not in left  # the intent goes with its data
    assert {"foreign.pscpt", "notes.txt", "new.pscpt", "new.pscpt" + MARKER_SUFFIX} <= left
    assert "new.pscpt" + PENDING_SUFFIX not in left
    assert step_of(io.load_checkpoint(f"{root}/new.pscpt")) == 1


def test_a_leftover_intent_of_a_committed_save_removes_only_the_intent(root):
    fs = fsspec.filesystem("memory")
    io = FsspecCheckpointIO()
    url = f"{root}/done.pscpt"
    io.save_checkpoint(make_checkpoint(4), url)
    # killed after the commit, before deleting its intent
    _interrupted(fs, url, _HOST, _dead_pid(), time.time(), data=fs.cat_file(url))
    assert io.clean_orphans(root) == []
    assert _names(fs, root) == {"done.pscpt", "done.pscpt" + MARKER_SUFFIX}
    assert step_of(io.load_checkpoint(url)) == 4


def test_retention_with_interrupted_saves_keeps_the_directory_bounded(root):
    fs = fsspec.filesystem("memory")
    ckpt = Checkpointer(root, keep_last=2, checkpoint_io=FsspecCheckpointIO(commit="marker"))
    for step in range(1, 30):
        if step % 3 == 0:  # a writer died mid-upload at this step; the next run resumes
            _interrupted(fs, ckpt.path_for(step), _HOST, _dead_pid(), time.time())
            continue
        ckpt.save(make_checkpoint(step), step)
    assert ckpt.steps() == [28, 29]
    assert _names(fs, root) == {f"checkpoint-{s:012d}.pscpt{x}" for s in (28, 29) for x in ("", MARKER_SUFFIX)}
    assert step_of(ckpt.load_latest()) == 29


def test_clean_orphans_in_rename_mode_cleans_stale_temps(tmp_path):
    stale = tmp_path / f".c.pscpt.tmp-{_HOST}-{_dead_pid()}-0000abcd"
    stale.write_bytes(b"partial")
    assert FsspecCheckpointIO().clean_orphans(f"file://{tmp_path}") == [stale.name]
    assert os.listdir(tmp_path) == []


def test_an_interrupted_removal_leaves_nothing_behind(root):
    fs = fsspec.filesystem("memory")
    io = FsspecCheckpointIO()
    url = f"{root}/old.pscpt"
    io.save_checkpoint(make_checkpoint(1), url)
    fs.rm_file(url)  # a removal killed between deleting the data and deleting the marker
    fs.pipe_file(f"{root}/deploy.commit", b"a user's file that only looks like a marker")
    assert io.list_dir(root) == []
    with pytest.raises(FileNotFoundError):
        io.load_checkpoint(url)
    io.save_checkpoint(make_checkpoint(2), f"{root}/new.pscpt")
    assert _names(fs, root) == {"new.pscpt", "new.pscpt" + MARKER_SUFFIX, "deploy.commit"}


def test_marker_mode_on_a_local_filesystem_creates_parent_directories(tmp_path):
    io = FsspecCheckpointIO(commit="marker")
    io.save_checkpoint(make_checkpoint(2), str(tmp_path / "a" / "b" / "c.pscpt"))
    assert step_of(io.load_checkpoint(str(tmp_path / "a" / "b" / "c.pscpt"))) == 2


_KILLED_BEFORE_RENAME = """
import os, sys
sys.path[:0] = [{repo!r}, {helpers!r}]
from _io_helpers import make_checkpoint
from pipestate.io.fsspec_ import FsspecCheckpointIO
os.replace = lambda *args: os._exit(9)  # SIGKILL-like death right before an intent would be renamed
FsspecCheckpointIO(commit="marker").save_checkpoint(make_checkpoint(1), {url!r})
"""


def test_a_writer_killed_while_writing_its_intent_leaves_no_partial_intent(tmp_path):
    """On a local filesystem an intent is written aside and renamed: a writer that dies while writing it
    leaves a temp file (never a torn ``.pending`` that nobody could attribute to a dead writer), and the
    next save deletes that temp file."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = _KILLED_BEFORE_RENAME.format(
        repo=os.path.dirname(os.path.dirname(here)), helpers=here, url=str(tmp_path / "a.pscpt")
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 9, child.stderr
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(".a.pscpt" + PENDING_SUFFIX + ".tmp-"), left
    io = FsspecCheckpointIO(commit="marker")
    io.save_checkpoint(make_checkpoint(2), str(tmp_path / "b.pscpt"))
    assert sorted(os.listdir(tmp_path)) == ["b.pscpt", "b.pscpt" + MARKER_SUFFIX]
    assert step_of(io.load_checkpoint(str(tmp_path / "b.pscpt"))) == 2
