"""A training-loop stand-in for the crash tests: restore from the latest checkpoint, then save forever.

Run as ``python -c "import _crash_child; _crash_child.main()" DIR MODE STATE_SIZE`` (with the repository
and this folder on ``sys.path``); the tests import the same module so the pipeline definitions match.
MODE is ``sync`` (LocalCheckpointIO), ``async`` (AsyncCheckpointIO), ``fsspec`` (FsspecCheckpointIO in
marker mode on the local directory) or ``shared``. In the synchronous modes the child prints ``saved N``
once ``save`` has returned for step N, i.e. once checkpoint N is durable.
"""

from __future__ import annotations

import sys

import numpy as np

from pipestate import Checkpointer, fn, pipeline_def
from pipestate.checkpoint import decode
from pipestate.io import AsyncCheckpointIO, CheckpointIO, LocalCheckpointIO


class CounterSource:
    """A stateful source whose state is a counter plus ``state_size`` bytes of "buffer" derived from it,
    so checkpoints can be made large enough for a kill to land in the middle of a write."""

    def __init__(self, state_size: int = 0) -> None:
        self.n = 0
        self.state_size = state_size

    def __call__(self, iteration: int) -> list[np.ndarray]:
        batch = [np.array([self.n * 10 + i], dtype=np.int64) for i in range(4)]
        self.n += 1
        return batch

    def state(self) -> bytes:
        head = self.n.to_bytes(8, "little")
        return head + (head * (self.state_size // 8 + 1))[: self.state_size]

    def restore(self, data: bytes) -> None:
        head = data[:8]
        if data[8:] != (head * (len(data) // 8 + 1))[: len(data) - 8]:
            raise ValueError("inconsistent source state")
        self.n = int.from_bytes(head, "little")


@pipeline_def(batch_size=4, seed=11, num_threads=1, prefetch_queue_depth=1, enable_checkpointing=True)
def crash_pipe(state_size: int = 0):
    """The pipeline the child trains: a stateful counter source and a random stream."""
    return fn.external_source(source=CounterSource(state_size)), fn.random.uniform(range=(0.0, 1.0))


def make_io(mode: str) -> CheckpointIO | None:
    """The backend a child in ``mode`` saves with (``None``: the Checkpointer's default, local)."""
    if mode == "async":
        return AsyncCheckpointIO()
    if mode == "fsspec":
        from pipestate.io.fsspec_ import FsspecCheckpointIO

        return FsspecCheckpointIO(commit="marker")
    return None


def main() -> None:
    """Resume from the newest checkpoint in DIR and save after every step until killed (or N steps)."""
    directory, mode, state_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
    prefix = sys.argv[5] if len(sys.argv) > 5 else "checkpoint"
    io = make_io(mode)
    ckpt = Checkpointer(directory, prefix=prefix, keep_last=3, checkpoint_io=io)
    blob = ckpt.load_latest()
    pipe = crash_pipe(state_size=state_size, checkpoint=blob)
    step = decode(blob).iteration if blob is not None else 0
    shared = LocalCheckpointIO()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while limit is None or step < limit:
        pipe.run()
        step += 1
        ckpt.save(pipe, step)
        if mode in ("sync", "fsspec"):
            sys.stdout.write(f"saved {step}\n")
            sys.stdout.flush()
        if mode == "shared":  # both processes also overwrite one common file
            shared.save_checkpoint(pipe.checkpoint(), f"{directory}/shared.pscpt")
    ckpt.close()
    if isinstance(io, AsyncCheckpointIO):
        io.close()
    sys.stdout.write(f"done {step}\n")
    sys.stdout.flush()
