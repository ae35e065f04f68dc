"""Benchmark fn.external_source(parallel=True) against parallel=False and DALI's parallel external source.

Question: samples per second of a CPU-heavy per-sample source (about 2 ms of numpy work per sample, batch
32): pipestate with ``parallel=False``, pipestate with ``parallel=True`` and 2 worker processes, and DALI's
parallel external source with 2 workers (CPU only), all with ``py_start_method="fork"``, interleaved
(A B C A B C ...), median and min-max of the rounds. Prints a markdown table and writes
``benchmarks/out/parallel_source.png``. Run: ``python benchmarks/parallel_source.py [--rounds 5] [--iters 15]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core per sample, no BLAS threads
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import dali_available, fmt, interleave, machine, markdown_table, save, summary  # noqa: E402

import pipestate  # noqa: E402

BATCH, WORKERS, THREADS = 32, 2, 2
WORK_ROUNDS = 60  # calibrated so that heavy_sample takes about 2 ms here


def heavy_sample(info) -> np.ndarray:
    """About 2 ms of numpy work, a pure function of the sample index."""
    x = np.random.default_rng(info.idx_in_epoch).random((48, 48))
    for _ in range(WORK_ROUNDS):
        x = np.tanh(x @ x * 0.02)
    return x[0].astype(np.float32)


def make(lib, parallel: bool):
    @lib.pipeline_def(
        batch_size=BATCH, num_threads=THREADS, device_id=None, seed=1, py_num_workers=WORKERS, py_start_method="fork"
    )
    def pipe():
        return lib.fn.external_source(heavy_sample, batch=False, parallel=parallel)

    p = pipe()
    p.build()
    return p


def samples_per_second(pipe, iters: int) -> float:
    for _ in range(3):
        pipe.run()
    start = time.perf_counter()
    for _ in range(iters):
        pipe.run()
    return iters * BATCH / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=15)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    for i in range(50):
        heavy_sample(pipestate.types.SampleInfo(i, 0, 0, 0))
    print(f"per-sample work: {(time.perf_counter() - start) / 50 * 1e3:.2f} ms")

    pipes = {"pipestate parallel=False": make(pipestate, False), f"pipestate parallel=True, {WORKERS} workers": None}
    pipes[f"pipestate parallel=True, {WORKERS} workers"] = make(pipestate, True)
    if dali_available():
        import nvidia.dali

        pipes[f"DALI parallel=True, {WORKERS} workers"] = make(nvidia.dali, True)
    else:
        print("(DALI is not installed: no peer)")
    results = interleave({name: (lambda p=p: samples_per_second(p, args.iters)) for name, p in pipes.items()},
                         args.rounds)
    for p in pipes.values():
        if hasattr(p, "close"):
            p.close()

    base = summary(results["pipestate parallel=False"])[0]
    dali = next((summary(v)[0] for k, v in results.items() if k.startswith("DALI")), None)
    rows = []
    for name, values in results.items():
        med = summary(values)[0]
        rows.append([name, fmt(values, 0), f"{med / base:.2f}", f"{med / dali:.2f}" if dali else "–"])
    table = markdown_table(
        ["source", "samples/s: median (min–max)", "vs parallel=False", "vs DALI parallel"], rows
    )
    table += f"\n\nBatch {BATCH}, {THREADS} threads, ~2 ms numpy per sample, fork; {args.rounds} interleaved rounds "
    table += f"of {args.iters} batches; {machine()}."
    print(table)

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2))
        names = list(results)
        meds = [summary(results[n])[0] for n in names]
        errs = [[m - summary(results[n])[1] for n, m in zip(names, meds)],
                [summary(results[n])[2] - m for n, m in zip(names, meds)]]
        ax.barh(names, meds, xerr=errs, color=["#999", "#4a7", "#47a"][: len(names)])
        ax.set_xlabel("samples/s (median, min–max)")
        ax.set_title("external_source: CPU-heavy per-sample source, batch 32")
        fig.tight_layout()
        fig.savefig(path, dpi=120)

    save("parallel_source", table, plot)


if __name__ == "__main__":
    main()
