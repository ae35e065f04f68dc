from __future__ import annotations

import errno
import inspect

import pytest
from _io_helpers import make_checkpoint

import pipestate.io
from pipestate.errors import CorruptCheckpointError
from pipestate.io import CheckpointIO, LocalCheckpointIO, resolve_checkpoint_io, validate_checkpoint
from pipestate.io.base import reraise_os_error


def test_io_all_sorted_and_documented():
    assert pipestate.io.__all__ == sorted(pipestate.io.__all__)
    for name in pipestate.io.__all__:
        obj = getattr(pipestate.io, name)
        assert obj.__doc__, name
        if inspect.isclass(obj):
            for member_name, member in vars(obj).items():
                if not member_name.startswith("_") and inspect.isfunction(member):
                    assert member.__doc__, f"{name}.{member_name}"
                    assert "Args:" in member.__doc__ or not inspect.signature(member).parameters.keys() - {"self"}, (
                        f"{name}.{member_name} documents no Args"
                    )


def test_checkpoint_io_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        CheckpointIO()

    class Incomplete(CheckpointIO):
        def save_checkpoint(self, data, path, storage_options=None):
            pass

    with pytest.raises(TypeError, match="load_checkpoint"):
        Incomplete()


def test_validate_checkpoint():
    blob = make_checkpoint(2)
    assert validate_checkpoint(blob, "x") is blob
    with pytest.raises(CorruptCheckpointError, match="^some/path: .*restore an earlier one"):
        validate_checkpoint(blob[:-2], "some/path")


@pytest.mark.parametrize(
    ("err", "cls"),
    [(errno.EACCES, PermissionError), (errno.ENOENT, FileNotFoundError), (errno.ENOSPC, OSError), (errno.EIO, OSError)],
)
def test_reraise_keeps_subclass_and_errno(err, cls):
    low = OSError(err, "low level")
    new = reraise_os_error(low, "/ckpt/a.pscpt", "saving the checkpoint '/ckpt/a.pscpt'")
    assert type(new) is cls and type(new) is type(low)
    assert new.errno == err and new.filename == "/ckpt/a.pscpt"
    assert str(new).startswith(f"[Errno {err}] saving the checkpoint '/ckpt/a.pscpt' failed: low level (")


def test_resolve_checkpoint_io():
    assert isinstance(resolve_checkpoint_io(None, LocalCheckpointIO), LocalCheckpointIO)
    io = LocalCheckpointIO()
    assert resolve_checkpoint_io(io, LocalCheckpointIO) is io
    with pytest.raises(TypeError, match=r"is a class; pass an instance \(LocalCheckpointIO\(\)\)"):
        resolve_checkpoint_io(LocalCheckpointIO, LocalCheckpointIO)  # a class, not an instance
