"""What does checkpointing cost? pipestate vs DALI (CPU) on a 4-operator random pipeline, batch 8.

Prints a markdown table and writes benchmarks/out/checkpoint_cost.{md,png}:
checkpoint() latency (each call right after a run(), while the prefetch thread computes the next
batch, and again once the prefetch queue is full and idle), checkpoint size, restore time (construct with
checkpoint= + first run) against a fresh build + first run, and throughput with enable_checkpointing on
versus off. Run: python benchmarks/checkpoint_cost.py [--rounds 5] [--iterations 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import dali_available, fmt, interleave, machine, markdown_table, save, summary

BATCH, THREADS = 8, 2


def factory(fn, pipeline_def):
    """The benchmark pipeline, written once for both libraries (their APIs are the same)."""

    @pipeline_def(batch_size=BATCH, num_threads=THREADS, device_id=None, seed=42)
    def pipe():
        return (
            fn.random.uniform(range=[-1.0, 1.0], shape=[3]),
            fn.random.normal(),
            fn.random.coin_flip(probability=0.5),
            fn.random.choice(5),
        )

    return pipe


def pipestate_factory():
    import pipestate

    return factory(pipestate.fn, pipestate.pipeline_def)


def dali_factory():
    import nvidia.dali

    return factory(nvidia.dali.fn, nvidia.dali.pipeline_def)


class Subject:
    """The measurements for one library; `factory()` returns a pipeline_def-decorated function."""

    def __init__(self, factory, iterations: int) -> None:
        self.make = factory()
        self.iterations = iterations
        self.size = 0

    def _built(self, **kw):
        p = self.make(**kw)
        p.build()
        return p

    def checkpoint_latency_us(self, settle_s: float = 0.0) -> float:
        p = self._built(enable_checkpointing=True)
        times = []
        for _ in range(200 if not settle_s else 50):
            p.run()
            if settle_s:
                time.sleep(settle_s)  # let the prefetch thread fill its queue and go idle
            start = time.perf_counter()
            blob = p.checkpoint()
            times.append(time.perf_counter() - start)
        self.size = len(blob)
        self.blob = blob
        return float(np.median(times) * 1e6)

    def restore_ms(self) -> float:
        start = time.perf_counter()
        p = self._built(enable_checkpointing=True, checkpoint=self.blob)
        p.run()
        return (time.perf_counter() - start) * 1e3

    def fresh_ms(self) -> float:
        start = time.perf_counter()
        p = self._built(enable_checkpointing=True)
        p.run()
        return (time.perf_counter() - start) * 1e3

    def throughput(self, checkpointing: bool) -> float:
        p = self._built(enable_checkpointing=checkpointing)
        for _ in range(20):
            p.run()
        start = time.perf_counter()
        for _ in range(self.iterations):
            p.run()
        return self.iterations / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=400)
    args = parser.parse_args()

    subjects = {"pipestate": Subject(pipestate_factory, args.iterations)}
    if dali_available():
        subjects["DALI"] = Subject(dali_factory, args.iterations)
    else:
        print("DALI is not installed: pipestate only")

    def per(measure):
        return interleave({name: (lambda s=s: measure(s)) for name, s in subjects.items()}, args.rounds)

    latency = per(Subject.checkpoint_latency_us)
    idle_latency = per(lambda s: s.checkpoint_latency_us(settle_s=0.005))
    restore = per(Subject.restore_ms)
    fresh = per(Subject.fresh_ms)
    on = per(lambda s: s.throughput(True))
    off = per(lambda s: s.throughput(False))

    header = ["metric"] + list(subjects) + (["pipestate / DALI"] if "DALI" in subjects else [])

    def row(label, data, digits=1, lower_is_better=True):
        cells = [fmt(data[name], digits) for name in subjects]
        if "DALI" in subjects:
            cells.append(f"{summary(data['pipestate'])[0] / summary(data['DALI'])[0]:.2f}×")
        return [label, *cells]

    ratio = {name: [a / b for a, b in zip(on[name], off[name])] for name in subjects}
    size_row = ["checkpoint size (bytes)"] + [str(s.size) for s in subjects.values()]
    if "DALI" in subjects:
        size_row.append(f"{subjects['pipestate'].size / subjects['DALI'].size:.2f}×")
    rows = [
        row("checkpoint() latency right after run() (µs)", latency),
        row("checkpoint() latency, prefetch idle (µs)", idle_latency),
        size_row,
        row("restore: construct + first run (ms)", restore, 2),
        row("fresh: construct + first run (ms)", fresh, 2),
        row("batches/s, checkpointing on", on, 0),
        row("batches/s, checkpointing off", off, 0),
        row("throughput on / off", ratio, 3),
    ]
    table = (
        f"4 random ops (uniform, normal, coin_flip, choice), batch {BATCH}, {THREADS} threads; "
        f"median (min–max) of {args.rounds} interleaved rounds; {machine()}\n\n" + markdown_table(header, rows)
    )
    print(table)

    def plot(path):
        import matplotlib.pyplot as plt

        metrics = [("checkpoint() µs", latency), ("restore ms", restore), ("batches/s (on)", on)]
        fig, axes = plt.subplots(1, len(metrics), figsize=(11, 3.2))
        for ax, (title, data) in zip(axes, metrics):
            names = list(subjects)
            meds = [summary(data[n])[0] for n in names]
            lows = [m - summary(data[n])[1] for n, m in zip(names, meds)]
            highs = [summary(data[n])[2] - m for n, m in zip(names, meds)]
            errs = [lows, highs]
            ax.bar(names, meds, yerr=errs, color=["tab:blue", "tab:gray"][: len(names)], capsize=4)
            ax.set_title(title)
        fig.suptitle("Checkpoint cost: pipestate vs DALI (CPU)")
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    save("checkpoint_cost", table, plot)


if __name__ == "__main__":
    main()
