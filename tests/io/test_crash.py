"""Crash safety: SIGKILL a process that checkpoints in a loop, many times, at random moments.

Every time, ``Checkpointer.latest()`` must name a checkpoint that loads, matches its file name, and
restores a pipeline that continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _io_helpers import temp_files

from pipestate import Checkpointer
from pipestate.checkpoint import decode
from pipestate.errors import CorruptCheckpointError
from pipestate.io import LocalCheckpointIO

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import _crash_child  # noqa: E402

KILLS = 120
CHILD = f"import sys; sys.path[:0] = [{REPO!r}, {HERE!r}]; import _crash_child; _crash_child.main()"
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


class _Reference:
    """Outputs of an uninterrupted run, extended on demand: ``at(step)`` is run number ``step + 1``."""

    def __init__(self) -> None:
        self.pipe = _crash_child.crash_pipe()
        self.outputs: list[tuple[np.ndarray, np.ndarray]] = []

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        while len(self.outputs) <= step:
            src, uni = self.pipe.run()
            self.outputs.append((np.asarray(src).copy(), np.asarray(uni).copy()))
        return self.outputs[step]


@pytest.mark.timeout(180)
def test_kill_9_at_random_moments_always_leaves_a_restorable_latest(tmp_path):
    rng = random.Random(20261122)
    reference = _Reference()
    directory = str(tmp_path / "ckpts")
    last_step = 0
    kills_mid_write = 0
    for kill in range(KILLS):
        mode, size = [("sync", 0), ("sync", 1 << 20), ("async", 1 << 20)][kill % 3]
        child = _spawn(directory, mode, str(size))
        assert child.stdout.readline() == "ready\n", child.stderr.read()
        time.sleep(rng.uniform(0.0, 0.06))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
        assert child.returncode == -signal.SIGKILL

        kills_mid_write += bool(temp_files(directory))
        ckpt = Checkpointer(directory)
        path = ckpt.latest()
        if path is None:  # killed before its very first save completed
            assert last_step == 0
            continue
        blob = LocalCheckpointIO().load_checkpoint(path)
        step = int(os.path.basename(path).split("-")[1].split(".")[0])
        assert decode(blob).iteration == step, path
        assert step >= last_step, f"latest went back from {last_step} to {step}"
        last_step = step
        restored = _crash_child.crash_pipe(checkpoint=blob)
        src, uni = restored.run()
        restored.close()
        want_src, want_uni = reference.at(step)
        np.testing.assert_array_equal(np.asarray(src), want_src)
        np.testing.assert_array_equal(np.asarray(uni), want_uni)
    assert last_step > KILLS  # the loop made progress across restarts
    assert kills_mid_write > 0  # some kills landed in the middle of a write
    LocalCheckpointIO().clean_stale_temp_files(directory)  # every writer is dead: all temps are stale
    assert temp_files(directory) == []


@pytest.mark.timeout(120)
def test_two_processes_share_a_directory(tmp_path):
    directory = str(tmp_path)
    steps = 150
    children = [_spawn(directory, "shared", "4096", str(steps), prefix) for prefix in ("a", "b")]
    for child in children:
        assert child.stdout.readline() == "ready\n", child.stderr.read()
    torn = []
    reads = 0

    def read_shared() -> None:
        nonlocal reads
        io = LocalCheckpointIO()
        while any(c.poll() is None for c in children):
            try:
                io.load_checkpoint(f"{directory}/shared.pscpt")
                reads += 1
            except FileNotFoundError:
                pass
            except CorruptCheckpointError as exc:  # a torn file: the bug this test looks for
                torn.append(exc)

    reader = threading.Thread(target=read_shared)
    reader.start()
    outs = [child.communicate(timeout=100) for child in children]
    reader.join()
    for child, (out, err) in zip(children, outs, strict=True):
        assert child.returncode == 0, err
        assert out.strip().endswith(f"done {steps}")
    assert torn == []
    assert reads > 0
    names = sorted(os.listdir(directory))
    want = [f"{p}-{s:012d}.pscpt" for p in ("a", "b") for s in (steps - 2, steps - 1, steps)]
    assert names == sorted([*want, "shared.pscpt"])
    for prefix in ("a", "b"):
        blob = Checkpointer(directory, prefix=prefix).load_latest()
        assert decode(blob).iteration == steps
        src, _ = _crash_child.crash_pipe(checkpoint=blob).run()
        np.testing.assert_array_equal(np.asarray(src).ravel(), [steps * 10 + i for i in range(4)])
    assert decode(LocalCheckpointIO().load_checkpoint(f"{directory}/shared.pscpt")).iteration > 0
