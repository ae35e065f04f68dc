"""Injected OS failures (ENOSPC, EACCES, EIO) on every step of a local save.

Policy under test: the caller gets the *original* OSError subclass with its errno (PermissionError for
EACCES), naming the checkpoint path, with the injected error as ``__cause__``; the previous checkpoint is
intact and loadable; no temp file remains.
"""

from __future__ import annotations

import errno
import os

import pytest
from _io_helpers import make_checkpoint, step_of, temp_files

from pipestate.io import AsyncCheckpointIO, Checkpointer, LocalCheckpointIO

ERRNOS = [errno.ENOSPC, errno.EACCES, errno.EIO]


def _failing(real, err, after=0):
    """Wrap ``real`` so that call number ``after`` (0-based) raises OSError(err)."""
    calls = {"n": 0}

    def fake(*args, **kwargs):
        n = calls["n"]
        calls["n"] += 1
        if n == after:
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)

    return fake


def _inject(monkeypatch, op, err):
    if op == "open":
        monkeypatch.setattr(os, "open", _failing(os.open, err))
    elif op == "write":
        monkeypatch.setattr(os, "write", _failing(os.write, err))
    elif op == "write-after-partial":  # first write is short, the second fails
        real_write = os.write
        calls = {"n": 0}

        def fake(fd, data):
            calls["n"] += 1
            if calls["n"] == 1:
                return real_write(fd, data[:10])
            raise OSError(err, os.strerror(err))

        monkeypatch.setattr(os, "write", fake)
    elif op == "fsync":
        monkeypatch.setattr(os, "fsync", _failing(os.fsync, err, after=0))  # the file's fsync
    elif op == "close":
        real_close = os.close
        monkeypatch.setattr(os, "close", _failing(real_close, err))
    elif op == "rename":
        monkeypatch.setattr(os, "replace", _failing(os.replace, err))
    else:
        raise AssertionError(op)


OPS = ["open", "write", "write-after-partial", "fsync", "close", "rename"]


def _check_error(exc: OSError, err: int, path) -> None:
    assert type(exc) is type(OSError(err, "x"))  # the original OSError subclass
    assert exc.errno == err
    assert os.fspath(path) in str(exc)
    assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == err
    assert "failed" in str(exc) and "(" in str(exc)  # says what failed and what to do


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("op", OPS)
def test_overwrite_fault_keeps_previous_file(tmp_path, monkeypatch, op, err):
    io = LocalCheckpointIO()
    path = tmp_path / "ck.pscpt"
    io.save_checkpoint(make_checkpoint(1), path)
    with monkeypatch.context() as m:
        _inject(m, op, err)
        with pytest.raises(OSError) as info:
            io.save_checkpoint(make_checkpoint(2, pad=5000), path)
    _check_error(info.value, err, path)
    assert step_of(io.load_checkpoint(path)) == 1
    assert temp_files(str(tmp_path)) == []
    assert os.listdir(tmp_path) == ["ck.pscpt"]


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("op", OPS)
def test_checkpointer_fault_keeps_previous_checkpoint(tmp_path, monkeypatch, op, err):
    ckpt = Checkpointer(tmp_path, keep_last=1)
    first = ckpt.save(make_checkpoint(1), 1)
    with monkeypatch.context() as m:
        _inject(m, op, err)
        with pytest.raises(OSError) as info:
            ckpt.save(make_checkpoint(2), 2)
    _check_error(info.value, err, ckpt.path_for(2))
    assert ckpt.latest() == first
    assert step_of(ckpt.load_latest()) == 1
    assert ckpt.steps() == [1]
    assert temp_files(str(tmp_path)) == []


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
def test_directory_fsync_failure_reports_but_file_is_complete(tmp_path, monkeypatch, err):
    io = LocalCheckpointIO()
    path = tmp_path / "ck.pscpt"
    io.save_checkpoint(make_checkpoint(1), path)
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", _failing(os.fsync, err, after=1))  # the second fsync is the directory's
        with pytest.raises(OSError) as info:
            io.save_checkpoint(make_checkpoint(2), path)
    _check_error(info.value, err, path)
    assert "may not survive a power loss" in str(info.value)
    assert step_of(io.load_checkpoint(path)) == 2  # renamed into place, whole
    assert temp_files(str(tmp_path)) == []


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
def test_mkdir_fault(tmp_path, monkeypatch, err):
    with monkeypatch.context() as m:
        m.setattr(os, "mkdir", _failing(os.mkdir, err))
        with pytest.raises(OSError) as info:
            LocalCheckpointIO().save_checkpoint(make_checkpoint(), tmp_path / "sub" / "ck")
    _check_error(info.value, err, tmp_path / "sub" / "ck")
    assert os.listdir(tmp_path) == []


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    blob = make_checkpoint(4, pad=300)
    LocalCheckpointIO().save_checkpoint(blob, tmp_path / "s")
    monkeypatch.undo()
    assert (tmp_path / "s").read_bytes() == blob


def test_keyboard_interrupt_mid_write_leaves_no_temp(tmp_path, monkeypatch):
    def interrupted(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        LocalCheckpointIO().save_checkpoint(make_checkpoint(), tmp_path / "k")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
def test_async_fault_surfaces_once_with_previous_intact(tmp_path, monkeypatch, err):
    io = AsyncCheckpointIO(LocalCheckpointIO())
    ckpt = Checkpointer(tmp_path, checkpoint_io=io)
    ckpt.save(make_checkpoint(1), 1)
    io.wait()
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", _failing(os.fsync, err))
        ckpt.save(make_checkpoint(2), 2)  # queued; fails in the background
        with pytest.raises(OSError) as info:
            io.wait()
    _check_error(info.value, err, ckpt.path_for(2))
    io.wait()  # raised once only
    assert step_of(ckpt.load_latest()) == 1
    assert temp_files(str(tmp_path)) == []
    io.close()
