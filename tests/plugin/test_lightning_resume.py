"""Lightning, killed and resumed: the story of issue 18 (SIGKILL mid-epoch, resume from the newest ``.ckpt``).

120 files in 4 class folders of different sizes, batch 16 (epochs do not divide into batches),
``PipelineDataModule`` + ``PipestateCheckpointIO(async_save=True)`` + ``ModelCheckpoint(every_n_train_steps)``.
A run killed with SIGKILL and resumed in a new process must train on the same batches at the same
(step, epoch, batch index), validate on the same batches, end at the same step and epoch with the same
checkpoint files, and reach bit-identical weights as an uninterrupted run: under every
``last_batch_policy`` (``FILL`` epochs alternate 8 and 7 batches), with and without ``auto_reset``, with
``max_epochs`` and ``max_steps``, resuming mid-epoch, at the end of a short epoch and of a full one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install pipestate[torch])")
pytest.importorskip("pytorch_lightning", reason="pytorch-lightning is not installed (the test extra has it)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHILD = os.path.join(HERE, "_lightning_child.py")
sys.path.insert(0, HERE)
from _lightning_child import write_dataset  # noqa: E402


def _spawn(config: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, CHILD, json.dumps(config)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, killed: bool = False) -> None:
    out, err = proc.communicate(timeout=240)
    if killed:
        assert proc.returncode == -9, f"expected the run to SIGKILL itself, got {proc.returncode}: {err[-3000:]}"
    else:
        assert proc.returncode == 0, err[-3000:]


def _records(run: str) -> tuple[dict, dict]:
    """Training records by step and validation records by (epoch, batch), the last write winning (the
    resumed process trains again the steps after its checkpoint)."""
    steps, vals = {}, {}
    with open(os.path.join(run, "steps.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if "step" in rec:
                steps[rec["step"]] = rec
            else:
                vals[(rec["val_of_epoch"], rec["batch_idx"])] = rec
    return steps, vals


def _final(run: str) -> dict:
    with open(os.path.join(run, "final.json")) as f:
        return json.load(f)


def check_kill_and_resume(tmp_path, policy, auto_reset, kill_at, every, max_epochs=-1, max_steps=-1,
                          validate=False, expect_resume=None, settle=True):
    base = dict(policy=policy, auto_reset=auto_reset, every=every, max_epochs=max_epochs, max_steps=max_steps,
                validate=validate, data_root=str(tmp_path), settle=settle)
    whole_run, broken_run = str(tmp_path / "whole"), str(tmp_path / "killed")
    write_dataset(str(tmp_path))  # once, before two processes read it
    whole = _spawn({**base, "run": whole_run})
    killed = _spawn({**base, "run": broken_run, "kill_at": kill_at})
    _finish(killed, killed=True)
    _finish(_spawn({**base, "run": broken_run}))  # a new process, resuming from the newest checkpoint
    _finish(whole)

    expected, got = _final(whole_run), _final(broken_run)
    steps, vals = _records(whole_run)
    resumed_steps, resumed_vals = _records(broken_run)
    if expect_resume is not None:
        assert got["resumed_from"] == expect_resume
    assert got["resumed_from"] is not None
    mismatched = [s for s in steps if resumed_steps.get(s) != steps[s]]
    assert not mismatched, (
        f"steps {mismatched[:5]}...: uninterrupted {[steps[s] for s in mismatched[:2]]}, resumed "
        f"{[resumed_steps.get(s) for s in mismatched[:2]]}"
    )
    assert sorted(resumed_steps) == sorted(steps)
    assert resumed_vals == vals
    for key in ("global_step", "current_epoch", "checkpoints", "weights"):
        assert got[key] == expected[key], key
    return steps


def _epochs(steps: dict) -> list[int]:
    counts: dict[int, int] = {}
    for rec in steps.values():
        counts[rec["epoch"]] = counts.get(rec["epoch"], 0) + 1
    return [counts[e] for e in sorted(counts)]


@pytest.mark.timeout(300)
def test_fill_mid_epoch_with_max_epochs(tmp_path):
    """The issue's story: FILL (default), uneven epochs, killed in step 12, resumed from step 10."""
    steps = check_kill_and_resume(tmp_path, "FILL", True, kill_at=12, every=5, max_epochs=4,
                                  expect_resume="epoch=1-step=10.ckpt")
    assert _epochs(steps) == [8, 7, 8, 7]  # 120 samples, batch 16: FILL carries 8 samples every other epoch


@pytest.mark.timeout(300)
def test_fill_at_the_end_of_a_short_epoch_without_auto_reset(tmp_path):
    check_kill_and_resume(tmp_path, "FILL", False, kill_at=17, every=5, max_epochs=4,
                          expect_resume="epoch=1-step=15.ckpt")  # step 15: the last batch of the 7-batch epoch 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fill_at_the_end_of_a_full_epoch_with_max_steps(tmp_path):
    check_kill_and_resume(tmp_path, "FILL", True, kill_at=10, every=4, max_steps=26,
                          expect_resume="epoch=0-step=8.ckpt")  # step 8: the last batch of the 8-batch epoch 0


@pytest.mark.timeout(300)
def test_fill_from_an_epoch_end_checkpoint_with_max_steps(tmp_path):
    """ModelCheckpoint(every_n_epochs=1) saves in on_train_epoch_end; training by max_steps, Lightning resumes
    by asking for one more batch of the restored epoch (its end) before the next epoch."""
    check_kill_and_resume(tmp_path, "FILL", False, kill_at=25, every="epoch", max_steps=33,
                          expect_resume="epoch=2-step=23.ckpt")


@pytest.mark.timeout(300)
def test_drop_at_an_epoch_end_with_max_steps(tmp_path):
    steps = check_kill_and_resume(tmp_path, "DROP", False, kill_at=16, every=7, max_steps=25,
                                  expect_resume="epoch=1-step=14.ckpt")
    assert _epochs(steps) == [7, 7, 7, 4]


@pytest.mark.timeout(300)
def test_partial_mid_epoch_with_validation(tmp_path):
    steps = check_kill_and_resume(tmp_path, "PARTIAL", True, kill_at=12, every=5, max_epochs=3, validate=True,
                                  expect_resume="epoch=1-step=10.ckpt")
    assert _epochs(steps) == [8, 8, 8]
    assert len(steps[7]["y"]) == 8  # PARTIAL: the last batch holds the 8 samples left


GRID = [
    (policy, auto_reset, kill_at, every, limits)
    for policy in ("FILL", "DROP", "PARTIAL")
    for auto_reset in (False, True)
    for kill_at, every in ((6, 5), (9, 8), (16, 5), (23, 7), (31, 15), (17, "epoch"), (25, "epoch"))
    for limits in ({"max_epochs": 5}, {"max_steps": 33})
]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("policy", "auto_reset", "kill_at", "every", "limits"), GRID)
def test_kill_and_resume_grid(tmp_path, policy, auto_reset, kill_at, every, limits):
    check_kill_and_resume(tmp_path, policy, auto_reset, kill_at=kill_at, every=every, **limits)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("kill_at", [7, 14, 15, 22])
def test_kill_while_a_save_is_in_flight(tmp_path, kill_at):
    """No wait before the kill: the newest save may be lost; the run resumes exactly from whichever is durable."""
    check_kill_and_resume(tmp_path, "FILL", True, kill_at=kill_at, every=1, max_epochs=4, settle=False)
