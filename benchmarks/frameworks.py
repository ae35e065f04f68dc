"""Benchmark the framework plugins on the reader benchmark ("small files", BENCHMARKS.md).

Question: batches/s of the same pipeline (shuffled file reader + uniform + coin_flip, batch 64, 2 threads)
through ``pipeline.run()``, the PyTorch iterator, the JAX iterator and the TensorFlow dataset, and of
torchdata's ``StatefulDataLoader`` over the same files (same batch size, shuffling, 2 workers); plus the
state size and save/restore times of the PyTorch iterator and of ``StatefulDataLoader``. Rounds are
interleaved (A B C ...); median and min-max. Prints a markdown table and writes
``benchmarks/out/frameworks.png``. Run: ``python benchmarks/frameworks.py [--repeats 5] [--iters 300]``.
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine, markdown_table, save  # noqa: E402
from readers import BATCH, FILE_SIZE, FILL, N_FILES, THREADS, make_pipestate, small_files  # noqa: E402

NAMES = ("data", "label", "u", "flip")


def _rate(next_batch, iters: int) -> float:
    for _ in range(10):
        next_batch()
    start = time.perf_counter()
    for _ in range(iters):
        next_batch()
    return iters / (time.perf_counter() - start)


def run_direct(list_path: str, iters: int) -> float:
    pipe = make_pipestate(list_path)
    rate = _rate(pipe.run, iters)
    pipe.close()
    return rate


def run_torch(list_path: str, iters: int) -> float:
    from pipestate.plugin.pytorch import DALIGenericIterator

    pipe = make_pipestate(list_path)
    it = DALIGenericIterator(pipe, list(NAMES), reader_name="r", auto_reset=True)
    rate = _rate(lambda: next(it), iters)
    pipe.close()
    return rate


def run_jax(list_path: str, iters: int) -> float:
    from pipestate.plugin.jax import DALIGenericIterator

    pipe = make_pipestate(list_path)
    it = DALIGenericIterator(pipe, list(NAMES), reader_name="r", auto_reset=True)
    rate = _rate(lambda: next(it), iters)
    pipe.close()
    return rate


def run_tf(list_path: str, iters: int) -> float:
    import tensorflow as tf

    from pipestate.plugin.tf import PipelineDataset

    pipe = make_pipestate(list_path)
    ds = PipelineDataset(
        pipe, (tf.uint8, tf.int32, tf.float32, tf.int32), ((BATCH, FILE_SIZE), (BATCH, 1), (BATCH,), (BATCH,))
    )
    it = iter(ds)
    rate = _rate(it.__next__, iters)
    del ds
    pipe.close()
    return rate


class FilesDataset:
    """The same files as a map-style torch dataset: (bytes as uint8, label)."""

    def __init__(self, list_path: str) -> None:
        root = os.path.dirname(list_path)
        rows = [line.split() for line in open(list_path).read().splitlines() if line.strip()]
        self.paths = [os.path.join(root, r[0]) for r in rows]
        self.labels = [int(r[1]) for r in rows]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import torch

        with open(self.paths[i], "rb") as f:
            data = np.frombuffer(f.read(), np.uint8)
        return torch.from_numpy(data.copy()), self.labels[i]


def _stateful_loader(list_path: str):
    import torch
    from torchdata.stateful_dataloader import StatefulDataLoader

    return StatefulDataLoader(
        FilesDataset(list_path),
        batch_size=BATCH,
        shuffle=True,
        num_workers=THREADS,
        generator=torch.Generator().manual_seed(42),
        persistent_workers=False,
    )


def run_torchdata(list_path: str, iters: int) -> float:
    loader = _stateful_loader(list_path)
    it = iter(loader)
    return _rate(it.__next__, iters)


def _torch_size_and_time(obj_state) -> tuple[int, float]:
    import torch

    start = time.perf_counter()
    buf = io.BytesIO()
    torch.save(obj_state, buf)
    return len(buf.getvalue()), time.perf_counter() - start


def state_costs(list_path: str, position: int) -> dict[str, tuple[float, float, float]]:
    """{name: (state bytes, save seconds, restore+first batch seconds)} at ``position`` batches into the epoch."""
    from pipestate.plugin.pytorch import DALIGenericIterator

    out = {}
    pipe = make_pipestate(list_path)
    it = DALIGenericIterator(pipe, list(NAMES), reader_name="r", auto_reset=True)
    for _ in range(position):
        next(it)
    start = time.perf_counter()
    sd = it.state_dict()
    save_s = time.perf_counter() - start
    size = sum(len(c) for c in sd["checkpoints"])
    start = time.perf_counter()
    it2 = DALIGenericIterator(make_pipestate(list_path, checkpoint=sd["checkpoints"][0]), list(NAMES), reader_name="r")
    next(it2)
    restore_s = time.perf_counter() - start
    out["pipestate PyTorch iterator"] = (size, save_s, restore_s)
    pipe.close()

    loader = _stateful_loader(list_path)
    li = iter(loader)
    for _ in range(position):
        next(li)
    start = time.perf_counter()
    state = loader.state_dict()
    size, ser = _torch_size_and_time(state)
    save_s = time.perf_counter() - start
    del li
    start = time.perf_counter()
    loader2 = _stateful_loader(list_path)
    loader2.load_state_dict(state)
    next(iter(loader2))
    restore_s = time.perf_counter() - start
    out["torchdata StatefulDataLoader"] = (size, save_s, restore_s)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pipestate-bench"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    list_path = small_files(pathlib.Path(args.cache))
    candidates = {"pipeline.run()": run_direct}
    for name, module, func in (
        ("PyTorch iterator", "torch", run_torch),
        ("JAX iterator", "jax", run_jax),
        ("TF PipelineDataset", "tensorflow", run_tf),
        ("torchdata StatefulDataLoader", "torchdata", run_torchdata),
    ):
        try:
            __import__(module)
        except ImportError:
            print(f"({module} is not installed: {name} skipped)")
            continue
        candidates[name] = func
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):  # interleaved rounds
        for name, func in candidates.items():
            rates[name].append(func(list_path, args.iters))
    base = statistics.median(rates["pipeline.run()"])

    def fmt(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"

    rows = [[name, fmt(v), f"{statistics.median(v) / base:.2f}"] for name, v in rates.items()]
    table = markdown_table(["path", "batches/s", "ratio to run()"], rows)
    costs_rows = []
    if "torchdata StatefulDataLoader" in candidates:
        samples = [state_costs(list_path, pos) for pos in (50, 150) for _ in range(max(1, args.repeats // 2))]
        for name in samples[0]:
            size = [s[name][0] for s in samples]
            save_ms = [s[name][1] * 1e3 for s in samples]
            restore_ms = [s[name][2] * 1e3 for s in samples]
            costs_rows.append(
                [
                    name,
                    f"{statistics.median(size):.0f}",
                    f"{statistics.median(save_ms):.2f} ({min(save_ms):.2f}–{max(save_ms):.2f})",
                    f"{statistics.median(restore_ms):.1f} ({min(restore_ms):.1f}–{max(restore_ms):.1f})",
                ]
            )
    costs = (
        markdown_table(["state of", "bytes", "save, ms", "restore + 1st batch, ms"], costs_rows) if costs_rows else ""
    )
    header = (
        f"small files: {N_FILES} x {FILE_SIZE} B, batch {BATCH}, {THREADS} threads (torchdata: {THREADS} workers), "
        f"shuffle buffer {FILL}; median (min–max) of {args.repeats} interleaved rounds of {args.iters} batches; "
        f"{machine()}"
    )
    text = "\n\n".join(x for x in (header, table, costs) if x)
    print(text)

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.5))
        names = list(rates)
        ax.barh(
            names,
            [statistics.median(rates[n]) for n in names],
            xerr=[
                [statistics.median(rates[n]) - min(rates[n]) for n in names],
                [max(rates[n]) - statistics.median(rates[n]) for n in names],
            ],
        )
        ax.set_xlabel(f"batches/s (batch {BATCH})")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    save("frameworks", text, plot)


if __name__ == "__main__":
    main()
