from __future__ import annotations

import errno
import threading
import time
from concurrent.futures import Future

import pytest
from _io_helpers import make_checkpoint, step_of, temp_files

from pipestate.io import AsyncCheckpointIO, Checkpointer, CheckpointIO, LocalCheckpointIO


class GatedIO(CheckpointIO):
    """Writes through LocalCheckpointIO, but each save blocks on ``gate`` before (or after) writing."""

    def __init__(self, block_after_write: bool = False, fail_first: int = 0) -> None:
        self.inner = LocalCheckpointIO(fsync=False)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.block_after_write = block_after_write
        self.fail_first = fail_first
        self.saved: list[bytes] = []

    def save_checkpoint(self, data, path, storage_options=None):
        self.started.set()
        if self.fail_first:
            self.fail_first -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        if not self.block_after_write:
            assert self.gate.wait(10)
        self.inner.save_checkpoint(data, path)
        self.saved.append(bytes(data))
        if self.block_after_write:  # visible on disk, not yet "durable" (the save has not returned)
            assert self.gate.wait(10)

    def load_checkpoint(self, path):
        return self.inner.load_checkpoint(path)

    def remove_checkpoint(self, path):
        self.inner.remove_checkpoint(path)


def test_save_returns_future_and_data_lands(tmp_path):
    with AsyncCheckpointIO() as io:
        fut = io.save_checkpoint(make_checkpoint(3), tmp_path / "a")
        assert isinstance(fut, Future)
        assert io.load_checkpoint(tmp_path / "a") == make_checkpoint(3)  # waits for the pending save
        assert fut.done() and fut.exception() is None
    assert temp_files(str(tmp_path)) == []


def test_bytes_are_captured_when_save_returns(tmp_path):
    inner = GatedIO()
    io = AsyncCheckpointIO(inner)
    original = make_checkpoint(1, pad=1000)
    buf = bytearray(original)
    io.save_checkpoint(buf, tmp_path / "a")
    buf[:] = make_checkpoint(2, pad=1000)  # mutate before the writer even starts
    buf[-1] ^= 0xFF
    inner.gate.set()
    io.close()
    assert (tmp_path / "a").read_bytes() == original


def test_background_error_surfaces_exactly_once_on_next_call(tmp_path):
    inner = GatedIO(fail_first=1)
    inner.gate.set()
    io = AsyncCheckpointIO(inner)
    fut = io.save_checkpoint(make_checkpoint(1), tmp_path / "a")
    assert isinstance(fut.exception(timeout=10), OSError)
    with pytest.raises(OSError) as info:
        io.save_checkpoint(make_checkpoint(2), tmp_path / "b")
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "b").exists()  # the call that raised was not performed
    io.save_checkpoint(make_checkpoint(3), tmp_path / "c")  # no second raise
    io.wait()
    io.close()
    assert step_of(io.checkpoint_io.load_checkpoint(tmp_path / "c")) == 3


@pytest.mark.parametrize("where", ["wait", "close", "load", "remove"])
def test_background_error_surfaces_once_on_each_entry_point(tmp_path, where):
    inner = GatedIO(fail_first=1)
    inner.gate.set()
    io = AsyncCheckpointIO(inner)
    io.save_checkpoint(make_checkpoint(1), tmp_path / "a").exception(timeout=10)
    call = {
        "wait": io.wait,
        "close": io.close,
        "load": lambda: io.load_checkpoint(tmp_path / "a"),
        "remove": lambda: io.remove_checkpoint(tmp_path / "a"),
    }[where]
    with pytest.raises(OSError, match="No space"):
        call()
    io.wait()
    io.close()
    io.close()  # idempotent, and the error is not raised again


def test_close_drains_queue(tmp_path, no_thread_leak):
    class SlowIO(LocalCheckpointIO):
        def save_checkpoint(self, data, path, storage_options=None):
            time.sleep(0.02)
            super().save_checkpoint(data, path, storage_options)

    io = AsyncCheckpointIO(SlowIO(fsync=False))
    for i in range(6):
        io.save_checkpoint(make_checkpoint(i), tmp_path / f"c{i}")
    t0 = time.perf_counter()
    io.close()
    assert time.perf_counter() - t0 > 0.05  # really waited
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"c{i}" for i in range(6)]
    with pytest.raises(RuntimeError, match="closed"):
        io.save_checkpoint(make_checkpoint(), tmp_path / "late")


def test_saves_to_one_path_run_in_order(tmp_path):
    with AsyncCheckpointIO(LocalCheckpointIO(fsync=False)) as io:
        for i in range(20):
            io.save_checkpoint(make_checkpoint(i), tmp_path / "same")
        assert step_of(io.load_checkpoint(tmp_path / "same")) == 19


def test_load_waits_for_pending_save_to_same_path(tmp_path):
    inner = GatedIO()
    io = AsyncCheckpointIO(inner)
    inner.inner.save_checkpoint(make_checkpoint(1), tmp_path / "a")
    io.save_checkpoint(make_checkpoint(2), tmp_path / "a")
    assert inner.started.wait(10)
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(io.load_checkpoint(tmp_path / "a")))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive()  # blocked on the pending save
    assert io.is_pending(tmp_path / "a") and not io.is_pending(tmp_path / "b")
    inner.gate.set()
    reader.join(10)
    assert step_of(result[0]) == 2
    io.close()


def test_remove_waits_for_pending_save_to_same_path(tmp_path):
    inner = GatedIO()
    io = AsyncCheckpointIO(inner)
    io.save_checkpoint(make_checkpoint(1), tmp_path / "a")
    threading.Timer(0.1, inner.gate.set).start()
    io.remove_checkpoint(tmp_path / "a")  # must not run before the save
    io.close()
    assert not (tmp_path / "a").exists()


def test_checkpointer_sees_only_durable_checkpoints(tmp_path):
    inner = GatedIO(block_after_write=True)
    io = AsyncCheckpointIO(inner)
    ckpt = Checkpointer(tmp_path, keep_last=1, checkpoint_io=io)
    inner.gate.set()
    ckpt.save(make_checkpoint(1), 1)
    io.wait()
    inner.gate.clear()
    inner.started.clear()
    ckpt.save(make_checkpoint(2), 2)
    assert inner.started.wait(10)
    deadline = time.monotonic() + 10
    while not (tmp_path / "checkpoint-000000000002.pscpt").exists():  # on disk, save not returned
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert ckpt.latest() == ckpt.path_for(1)  # step 2 is not durable yet
    assert ckpt.steps() == [1]
    ckpt.save(make_checkpoint(3), 3, force=True)  # retention runs, but may not drop step 1
    assert (tmp_path / "checkpoint-000000000001.pscpt").exists()
    inner.gate.set()
    ckpt.wait()  # now durable: retention keeps only the newest
    assert ckpt.steps() == [3]
    assert step_of(ckpt.load_latest()) == 3
    ckpt.close()
    io.close()


def test_checkpointer_surfaces_async_error_once(tmp_path):
    inner = GatedIO(fail_first=1)
    inner.gate.set()
    io = AsyncCheckpointIO(inner)
    ckpt = Checkpointer(tmp_path, checkpoint_io=io)
    ckpt.save(make_checkpoint(1), 1)
    deadline = time.monotonic() + 10
    while io.is_pending(ckpt.path_for(1)):
        assert time.monotonic() < deadline
        time.sleep(0.002)
    with pytest.raises(OSError, match="No space"):
        ckpt.save(make_checkpoint(2), 2)
    ckpt.save(make_checkpoint(3), 3)
    ckpt.close()
    io.close()
    assert ckpt.steps() == [3]


class ThreadRecordingIO(LocalCheckpointIO):
    """Local files; records the thread of every list/load/remove, optionally failing removals."""

    def __init__(self, fail_remove: bool = False) -> None:
        super().__init__(fsync=False)
        self.fail_remove = fail_remove
        self.threads: set[str] = set()

    def list_dir(self, directory):
        self.threads.add(threading.current_thread().name)
        return super().list_dir(directory)

    def load_checkpoint(self, path):
        self.threads.add(threading.current_thread().name)
        return super().load_checkpoint(path)

    def remove_checkpoint(self, path):
        self.threads.add(threading.current_thread().name)
        if self.fail_remove:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        super().remove_checkpoint(path)


def test_checkpointer_retention_runs_on_the_writer_thread(tmp_path):
    inner = ThreadRecordingIO()
    io = AsyncCheckpointIO(inner)
    ckpt = Checkpointer(tmp_path, keep_last=2, checkpoint_io=io)
    for step in range(6):
        ckpt.save(make_checkpoint(step), step)
    io.wait()  # the backend's drain only: retention must already have happened behind the saves
    threads = set(inner.threads)
    assert threads and all(name.startswith("pipestate-ckpt") for name in threads)
    assert ckpt.steps() == [4, 5]
    ckpt.close()
    io.close()


def test_checkpointer_retention_error_surfaces_once(tmp_path):
    inner = ThreadRecordingIO(fail_remove=True)
    io = AsyncCheckpointIO(inner)
    ckpt = Checkpointer(tmp_path, keep_last=1, checkpoint_io=io)
    ckpt.save(make_checkpoint(1), 1)
    ckpt.save(make_checkpoint(2), 2)  # its retention fails to remove step 1, in the background
    with pytest.raises(PermissionError) as info:
        io.wait()
    assert info.value.errno == errno.EACCES
    io.wait()  # raised once
    assert ckpt.steps() == [1, 2]  # nothing lost
    inner.fail_remove = False
    ckpt.close()  # retention again, on the caller's thread
    assert ckpt.steps() == [2]
    io.close()


def test_checkpointer_no_retention_after_a_failed_save(tmp_path):
    inner = GatedIO(fail_first=0)
    inner.gate.set()
    io = AsyncCheckpointIO(inner)
    ckpt = Checkpointer(tmp_path, keep_last=1, checkpoint_io=io)
    ckpt.save(make_checkpoint(1), 1)
    io.wait()
    inner.fail_first = 1
    ckpt.save(make_checkpoint(2), 2)
    with pytest.raises(OSError, match="No space"):
        io.wait()
    assert ckpt.steps() == [1]  # the failed save's retention did not run: step 1 is kept
    ckpt.close()
    io.close()
