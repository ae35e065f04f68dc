"""What does skipping 10^6 samples cost? ``pipestate.checkpoint.edit.skip`` against reading them (DALI CPU).

Question (issue 20): on the "small files" reference data (20,000 files of 512 B, shuffled file reader with a
buffer of 1024, batch 64, 2 threads, + uniform + coin_flip), how long does it take to resume 10^6 samples
(15,625 batches) later, and how large is the checkpoint? pipestate edits the checkpoint (``skip``) and
restores it (construct + first batch), without reading the skipped data; also with 1,000 excluded ranges
and for 10^9 samples. DALI has no skip: reaching the position means running the batches, measured in the
same run (interleaved, DALI first), next to pipestate running them too. Prints a markdown table and writes
``benchmarks/out/skip_cost.{md,png}``. Run: ``python benchmarks/skip_cost.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import dali_available, fmt, interleave, machine, markdown_table, save  # noqa: E402
from readers import BATCH, make_dali, make_pipestate, small_files  # noqa: E402

from pipestate.checkpoint import edit  # noqa: E402

SAMPLES = 10**6
BATCHES = SAMPLES // BATCH


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def replay(make, list_path: str) -> float:
    """Seconds to build a pipeline and read its way to the position (the first batch after it included)."""

    def run() -> None:
        pipe = make(list_path)
        for _ in range(BATCHES + 1):
            pipe.run()
        if hasattr(pipe, "close"):
            pipe.close()

    return timed(run)


def restore(list_path: str, blob: bytes) -> float:
    """Seconds to construct a pipeline from ``blob`` and return its first batch."""

    def run() -> None:
        pipe = make_pipestate(list_path, blob)
        pipe.run()
        pipe.close()

    return timed(run)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pipestate-bench"))
    args = parser.parse_args(argv)
    list_path = small_files(pathlib.Path(args.cache))

    pipe = make_pipestate(list_path)
    for _ in range(10):
        pipe.run()
    start = pipe.checkpoint()
    pipe.close()
    ranges = [(k * 20, k * 20 + 3) for k in range(1000)]  # 1,000 ranges, 3,000 samples excluded
    excluded = edit.exclude(start, ranges)
    blobs = {
        "as saved": start,
        "skip 10^6": edit.skip(start, samples=SAMPLES),
        "skip 10^9": edit.skip(start, samples=10**9 // BATCH * BATCH),
        "1,000 ranges excluded, skip 10^6": edit.skip(excluded, samples=SAMPLES),
    }
    edit_us = [timed(lambda: edit.skip(start, samples=SAMPLES)) * 1e6 for _ in range(200)]
    exclude_us = [timed(lambda: edit.exclude(start, ranges)) * 1e6 for _ in range(50)]
    checkpoint_us = {}  # checkpoint() of a running pipeline: the ranges are encoded with the reader's state
    for name, blob in (("as saved", start), ("1,000 ranges excluded", excluded)):
        pipe = make_pipestate(list_path, blob)
        pipe.run()
        checkpoint_us[name] = [timed(pipe.checkpoint) * 1e6 for _ in range(100)]
        pipe.close()

    candidates = {}
    if dali_available():
        candidates["DALI: read 10^6 samples"] = lambda: replay(make_dali, list_path)
    candidates["pipestate: read 10^6 samples"] = lambda: replay(make_pipestate, list_path)
    for name, blob in blobs.items():
        candidates[f"pipestate: restore ({name})"] = lambda blob=blob: restore(list_path, blob)
    for blob in blobs.values():  # warm up (page cache, imports)
        restore(list_path, blob)
    results = interleave(candidates, args.rounds)

    dali = results.get("DALI: read 10^6 samples")
    rows = []
    for name, values in results.items():
        ms = [v * 1e3 for v in values]
        ratio = f"{statistics.median(values) / statistics.median(dali):.4f}" if dali else "–"
        rows.append([name, fmt(ms, 1), ratio])
    table = "\n".join(
        [
            f"skip cost ({machine()}): small files, 20,000 x 512 B, batch {BATCH}, shuffled (initial_fill 1024); "
            f"median (min–max) of {args.rounds} rounds, interleaved",
            "",
            markdown_table(["to resume 10^6 samples later", "ms", "/ DALI reading them"], rows),
            "",
            markdown_table(
                ["edit", "µs", "checkpoint bytes"],
                [
                    ["skip(samples=10**6)", fmt(edit_us, 1), f"{len(start)} -> {len(blobs['skip 10^6'])}"],
                    ["exclude(1,000 ranges)", fmt(exclude_us, 0), f"{len(start)} -> {len(excluded)}"],
                    ["skip 10^9", "–", f"{len(start)} -> {len(blobs['skip 10^9'])}"],
                    *[[f"checkpoint(), {name}", fmt(us, 1), "–"] for name, us in checkpoint_us.items()],
                ],
            ),
        ]
    )
    sys.stdout.write(table + "\n")

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        names = list(results)
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.barh(names, [statistics.median(results[n]) * 1e3 for n in names], color="tab:blue")
        ax.set_xscale("log")
        ax.set_xlabel("ms to resume 10^6 samples later (log scale)")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    save("skip_cost", table, plot)


if __name__ == "__main__":
    main()
