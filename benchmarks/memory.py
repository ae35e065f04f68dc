"""Peak memory of a 5-operator pipeline of 1 MB samples: does the runtime free intermediate batches?

Each configuration runs in its own process (peak RSS is per process): an external source of 1 MB float32
samples, five element-wise operators in a chain, the last one the only output. Before the operator kit the
runtime kept every intermediate batch until the end of the batch; now each is freed after its last
consumer. Compare two checkouts (``--before PATH``: e.g. a git worktree of an older commit) and DALI CPU.

    PYTHONPATH=. python benchmarks/memory.py --before /path/to/old/checkout
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import dali_available, machine, markdown_table, save  # noqa: E402

CHILD = r"""
import resource, sys, tracemalloc
import numpy as np
lib = sys.argv[1]
batch, iters = int(sys.argv[2]), int(sys.argv[3])
if lib == "dali":
    from nvidia.dali import fn, pipeline_def
    extra = {"device_id": None}
else:
    from pipestate import fn, pipeline_def
    extra = {}
sample = np.ones(262144, dtype=np.float32)  # 1 MB

@pipeline_def(batch_size=batch, num_threads=1, seed=1, prefetch_queue_depth=1, **extra)
def pipe():
    x = fn.external_source(source=lambda: [sample] * batch)
    a = x * 2.0
    b = a + 1.0
    c = b - 3.0
    d = c * 0.5
    return d + 0.25

p = pipe()
p.build()
p.run()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()  # numpy reports its buffers to tracemalloc: the Python-side peak, exactly
for _ in range(iters):
    out = p.run()
    del out
traced = tracemalloc.get_traced_memory()[1] / 2**20 if lib != "dali" else float("nan")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak, traced)
"""


def measure(lib: str, path: str | None, batch: int, iters: int) -> tuple[float, float, float]:
    """(RSS after the first batch, peak RSS, peak traced numpy/Python allocations) in MB of a fresh process
    running the pipeline (DALI allocates in C++: no traced figure)."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = path
    out = subprocess.run(
        [sys.executable, "-c", CHILD, lib, str(batch), str(iters)],
        capture_output=True,
        text=True,
        env=env,
        cwd=path or os.getcwd(),
        check=True,
    ).stdout.split()
    base, peak = (int(v) / 1024 for v in out[-3:-1])
    return base, peak, float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a checkout of the version to compare with (its directory)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    configs = [("pipestate (this checkout)", "pipestate", here)]
    if args.before:
        configs.append(("pipestate (before)", "pipestate", os.path.abspath(args.before)))
    if dali_available():
        configs.append(("DALI CPU", "dali", None))
    batch_mb = args.batch  # 1 MB per sample
    rows, peaks = [], {}
    for label, lib, path in configs:
        base, peak, traced = measure(lib, path, args.batch, args.iterations)
        peaks[label] = peak
        rows.append([label, f"{base:.0f}", f"{peak:.0f}", "–" if traced != traced else f"{traced:.0f}"])
    table = markdown_table(
        ["pipeline", "RSS after the first batch (MB)", "peak RSS (MB)", "peak traced allocations in run() (MB)"], rows
    )
    text = (
        f"5 chained element-wise operators on 1 MB float32 samples, batch {args.batch} ({batch_mb} MB per batch), "
        f"prefetch_queue_depth=1, {args.iterations} iterations; {machine()}\n\n{table}"
    )
    print(text)

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3))
        ax.barh(list(peaks), list(peaks.values()))
        ax.set_xlabel("peak RSS (MB)")
        fig.tight_layout()
        fig.savefig(path)

    save("memory", text, plot)


if __name__ == "__main__":
    main()
