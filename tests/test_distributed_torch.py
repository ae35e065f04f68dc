"""Elastic jobs on torch.distributed (gloo, 127.0.0.1): scatter and gather across processes, and the torchrun
example trained, killed and resumed on 2 -> 3 -> 2 processes with other global batch sizes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipestate import distributed

torch = pytest.importorskip("torch", reason="torch is not installed")
mp = pytest.importorskip("torch.multiprocessing")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from examples import elastic_torchrun as example  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference_stream(files: list[str], samples: int) -> list[tuple[int, float]]:
    """The uninterrupted job sequence of the example's input: (dataset index, scale) per sample."""
    n = len(files)
    pipe = example.training_input(files, 0, 1, n, batch_size=n)
    stream = []
    while len(stream) < samples:
        _, index, scale = pipe.run()
        stream += [(int(i), float(s)) for i, s in zip(np.asarray(index).ravel(), np.asarray(scale).ravel())]
    pipe.close()
    return stream[:samples]


# ---- torch.multiprocessing: scatter a 2-shard job to 3 processes, gather their 3-shard job -------------
def _worker(rank: int, world: int, port: int, work: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    files = json.loads(Path(work, "files.json").read_text())
    result: dict = {}
    try:
        distributed.scatter(b"not a job checkpoint" if rank == 0 else None)
    except Exception as exc:  # every rank must raise, none may wait forever
        result["refused"] = type(exc).__name__
    job = Path(work, "job2.ckpt").read_bytes() if rank == 0 else None
    mine = distributed.scatter(job, global_batch_size=9)
    pipe = example.training_input(files, rank, world, 9, batch_size=distributed.local_batch_size(9, world, rank))
    pipe.restore(mine)
    steps = []
    for _ in range(2):
        _, index, scale = pipe.run()
        steps.append([(int(i), float(s)) for i, s in zip(np.asarray(index).ravel(), np.asarray(scale).ravel())])
    result["steps"] = steps
    combined = distributed.gather(pipe.checkpoint())
    if rank == 0:
        Path(work, "job3.ckpt").write_bytes(combined)
    else:
        result["gathered"] = combined
    Path(work, f"rank{rank}.json").write_text(json.dumps(result))
    pipe.close()
    dist.destroy_process_group()


def test_scatter_and_gather_across_processes(tmp_path):
    files = example.make_dataset(str(tmp_path / "data"), 30)
    (tmp_path / "files.json").write_text(json.dumps(files))
    stream = reference_stream(files, 60)
    job = [example.training_input(files, k, 2, 8, batch_size=4) for k in range(2)]
    for _ in range(2):
        for p in job:
            p.run()
    (tmp_path / "job2.ckpt").write_bytes(distributed.combine([p.checkpoint() for p in job]))

    mp.spawn(_worker, args=(3, free_port(), str(tmp_path)), nprocs=3)

    results = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in range(3)]
    assert results[0]["refused"] == "CorruptCheckpointError"  # the rank holding the bytes: the real error
    assert results[1]["refused"] == results[2]["refused"] == "CheckpointError"  # the others: told, not hung
    assert all(r.get("gathered") is None for r in results[1:])
    got = [tuple(s) for step in range(2) for r in results for s in r["steps"][step]]
    assert got == stream[16 : 16 + 18]  # 2 steps of 8 before, 2 global steps of 9 on three processes
    parts = distributed.split((tmp_path / "job3.ckpt").read_bytes(), 2, 6)
    pipes = [example.training_input(files, k, 2, 6, batch_size=3, checkpoint=parts[k]) for k in range(2)]
    _, index, scale = pipes[0].run()
    assert [(int(i), float(s)) for i, s in zip(np.asarray(index).ravel(), np.asarray(scale).ravel())] == stream[34:37]


# ---- torchrun: the example trained, killed and resumed on 2 -> 3 -> 2 processes --------------------------
def _torchrun(workdir: Path, nproc: int, global_batch: int, record: str, kill_at: int | None = None) -> int:
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [
        torchrun,
        "--nnodes=1",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(ROOT / "examples" / "elastic_torchrun.py"),
        f"--dir={workdir}",
        "--steps=12",
        "--every=3",
        f"--global-batch={global_batch}",
        "--samples=50",
        f"--record={record}",
    ] + ([f"--kill-at={kill_at}"] if kill_at is not None else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode


def _logged(workdir: Path, record: str, nproc: int) -> dict[int, list[tuple[int, float]]]:
    """Global step -> the samples of that step over all processes (in rank order)."""
    ranks = []
    for rank in range(nproc):
        lines = (workdir / "log" / f"{record}-rank{rank}.jsonl").read_text().splitlines()
        ranks.append({r["step"]: list(zip(r["index"], r["scale"])) for r in map(json.loads, lines)})
    return {step: [s for rank in ranks for s in rank[step]] for step in ranks[0]}


def test_torchrun_example_resumes_on_another_number_of_processes(tmp_path):
    assert _torchrun(tmp_path, 2, 8, "a", kill_at=5) != 0  # killed after step 5; checkpoint after step 3
    assert _torchrun(tmp_path, 3, 9, "b", kill_at=8) != 0  # resumes at 3; checkpoint after 6; killed after 8
    assert _torchrun(tmp_path, 2, 8, "c") == 0  # resumes at 6 and finishes the 12 steps
    a, b, c = _logged(tmp_path, "a", 2), _logged(tmp_path, "b", 3), _logged(tmp_path, "c", 2)
    assert sorted(a) == [0, 1, 2, 3, 4] and sorted(b) == [3, 4, 5, 6, 7] and sorted(c) == list(range(6, 12))
    kept = [a[s] for s in range(3)] + [b[s] for s in range(3, 6)] + [c[s] for s in range(6, 12)]
    assert [len(step) for step in kept] == [8] * 3 + [9] * 3 + [8] * 6
    files = example.make_dataset(str(tmp_path / "data"), 50)
    stream = reference_stream(files, 3 * 8 + 3 * 9 + 6 * 8)
    assert [tuple(s) for step in kept for s in step] == stream  # none lost, none repeated, same augmentation
