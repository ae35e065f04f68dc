"""What the operator kit costs per sample, against DALI CPU, and how a GIL-releasing operator scales.

1. Overhead: a trivial per-sample operator (returns its input sample) on a batch of small samples, batch 32
   and 256. The cost per sample is (time of the pipeline with the operator - time without) / batch size, so
   the source's cost cancels; DALI runs its own trivial operator (``fn.copy``) on the same batch the same way.
2. Scaling: a per-sample operator whose work releases the GIL (numpy sort of 64K float32 values per sample),
   batch 32, at 1 and 2 threads (and all cores when there are more).

    PYTHONPATH=. python benchmarks/operator_overhead.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import dali_available, fmt, interleave, machine, markdown_table, save, summary  # noqa: E402

from pipestate import fn, pipeline_def  # noqa: E402
from pipestate.operators import Example, Sample, SampleOperator, Tensor, register  # noqa: E402
from pipestate.operators import schema as sch  # noqa: E402


@register
class Identity(SampleOperator):
    """Return each sample unchanged (the benchmark's trivial per-sample operator)."""

    type = "bench.identity"
    INPUTS = (sch.Input("data", "Anything"),)
    EXAMPLE = Example(inputs=(Tensor("float32", (16,)),), dali="none: a benchmark operator")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return inputs[0]


@register
class Sort(SampleOperator):
    """Sort each sample (numpy releases the GIL while sorting): the benchmark's GIL-releasing operator."""

    type = "bench.sort"
    INPUTS = (sch.Input("data", "Anything"),)
    EXAMPLE = Example(inputs=(Tensor("float32", (16,)),), dali="none: a benchmark operator")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return np.sort(inputs[0], kind="stable")


def seconds_per_batch(make: Callable[[], Any], iterations: int) -> Callable[[], float]:
    """A measurement: build the pipeline, warm up, time ``iterations`` runs; seconds per batch."""

    def measure() -> float:
        pipe = make()
        pipe.build()
        for _ in range(5):
            pipe.run()
        start = time.perf_counter()
        for _ in range(iterations):
            pipe.run()
        elapsed = (time.perf_counter() - start) / iterations
        if hasattr(pipe, "close"):
            pipe.close()
        return elapsed

    return measure


def pipelines(lib: str, batch: int, sample_shape: tuple[int, ...], op: str | None, threads: int) -> Callable:
    """A pipeline factory: an external source of one fixed batch, then ``op`` (or nothing)."""
    data = [np.random.default_rng(i).random(sample_shape, dtype=np.float32) for i in range(batch)]
    if lib == "dali":
        from nvidia.dali import fn as dfn
        from nvidia.dali import pipeline_def as dali_def

        @dali_def(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=1, seed=1)
        def dali_pipe():
            x = dfn.external_source(source=lambda: data)
            return dfn.copy(x) if op else x

        return dali_pipe

    @pipeline_def(batch_size=batch, num_threads=threads, prefetch_queue_depth=1, seed=1)
    def pipe():
        x = fn.external_source(source=lambda: data)
        return getattr(fn.bench, op)(x) if op else x

    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    rows = []
    overhead: dict[str, list[float]] = {}
    libs = ["pipestate"] + (["dali"] if dali_available() else [])
    for batch in (32, 256):
        iters = max(20, args.iterations * 32 // batch)
        candidates = {}
        for lib in libs:
            op = "identity" if lib == "pipestate" else "copy"
            candidates[f"{lib} with"] = seconds_per_batch(pipelines(lib, batch, (16,), op, 1), iters)
            candidates[f"{lib} without"] = seconds_per_batch(pipelines(lib, batch, (16,), None, 1), iters)
        times = interleave(candidates, args.rounds)
        for lib in libs:
            per_sample = [(w - wo) / batch * 1e6 for w, wo in zip(times[f"{lib} with"], times[f"{lib} without"])]
            overhead[f"{lib} batch {batch}"] = per_sample
        ratio = (
            summary(overhead[f"pipestate batch {batch}"])[0] / summary(overhead[f"dali batch {batch}"])[0]
            if ("dali" in libs)
            else float("nan")
        )
        rows.append(
            [
                f"trivial per-sample operator, batch {batch}",
                fmt(overhead[f"pipestate batch {batch}"], 2),
                fmt(overhead[f"dali batch {batch}"], 2) if "dali" in libs else "–",
                f"{ratio:.2f}",
            ]
        )
    table1 = markdown_table(["µs per sample (median (min–max))", "pipestate kit", "DALI CPU (fn.copy)", "ratio"], rows)

    thread_counts = sorted({1, 2, os.cpu_count() or 2})
    candidates = {
        f"{t} threads": seconds_per_batch(pipelines("pipestate", 32, (65536,), "sort", t), 30) for t in thread_counts
    }
    times = interleave(candidates, args.rounds)
    base = summary(times["1 threads"])[0]
    rows2 = [
        [name, fmt([32 / v for v in values], 0), f"{base / summary(values)[0]:.2f}"] for name, values in times.items()
    ]
    table2 = markdown_table(["GIL-releasing operator (sort 64K floats), batch 32", "samples/s", "speed-up"], rows2)
    text = f"Operator kit overhead and thread scaling; {machine()}\n\n{table1}\n\n{table2}"
    print(text)

    def plot(path):
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
        a.bar(list(overhead), [summary(v)[0] for v in overhead.values()])
        a.set_ylabel("µs per sample")
        a.tick_params(axis="x", labelrotation=30)
        b.plot(thread_counts, [base / summary(times[f"{t} threads"])[0] for t in thread_counts], marker="o")
        b.set_xlabel("threads")
        b.set_ylabel("speed-up")
        fig.tight_layout()
        fig.savefig(path)

    save("operator_overhead", text, plot)


if __name__ == "__main__":
    main()
