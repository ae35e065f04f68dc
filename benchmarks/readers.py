"""Benchmark fn.readers.file against NVIDIA DALI (CPU) on the "small files" reference data.

Question: batches per second of a shuffled file reader plus two random ops (batch 64, 2 threads), and the
time to restore a checkpoint taken at 0 %, 50 % and 95 % of an epoch, for pipestate and DALI in one run
(interleaved A B A B, median and min-max of the repeats). Prints a markdown table and writes
``benchmarks/out/readers.png``. Run: ``python benchmarks/readers.py [--repeats 5] [--iters 300]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipestate import fn, pipeline_def  # noqa: E402

N_FILES, FILE_SIZE, BATCH, THREADS, FILL = 20_000, 512, 64, 2, 1024


def small_files(cache: pathlib.Path) -> str:
    """Create (once) the reference "small files" data set; return its file_list."""
    root = cache / "small_files"
    list_path = root / "list.txt"
    if list_path.exists():
        return str(list_path)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(N_FILES):
        (root / f"{i:05d}.bin").write_bytes(np.random.default_rng(i).bytes(FILE_SIZE))
        lines.append(f"{i:05d}.bin {i % 1000}\n")
    tmp = root / "list.txt.tmp"
    tmp.write_text("".join(lines))
    tmp.replace(list_path)
    return str(list_path)


def make_pipestate(list_path: str, checkpoint: bytes | None = None):
    @pipeline_def(batch_size=BATCH, num_threads=THREADS, seed=42, enable_checkpointing=True)
    def pipe():
        data, label = fn.readers.file(file_list=list_path, random_shuffle=True, initial_fill=FILL, name="r")
        return data, label, fn.random.uniform(range=(0.0, 1.0)), fn.random.coin_flip()

    return pipe(checkpoint=checkpoint)


def make_dali(list_path: str, checkpoint: str | None = None):
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def

    @dali_pipeline_def(
        batch_size=BATCH, num_threads=THREADS, device_id=None, seed=42, enable_checkpointing=True
    )
    def pipe():
        data, label = dfn.readers.file(file_list=list_path, random_shuffle=True, initial_fill=FILL, name="r")
        return data, label, dfn.random.uniform(range=(0.0, 1.0)), dfn.random.coin_flip()

    p = pipe(checkpoint=checkpoint) if checkpoint is not None else pipe()
    p.build()
    return p


def throughput(make, list_path: str, iters: int) -> float:
    pipe = make(list_path)
    for _ in range(10):
        pipe.run()
    start = time.perf_counter()
    for _ in range(iters):
        pipe.run()
    rate = iters / (time.perf_counter() - start)
    if hasattr(pipe, "close"):
        pipe.close()
    del pipe
    return rate


def restore_times(make, list_path: str, fractions: list[float], repeats: int) -> dict[str, list[float]]:
    """Seconds to construct a pipeline from a checkpoint (plus build and first batch), per position."""
    pipe = make(list_path)
    per_epoch = N_FILES // BATCH
    blobs, done = {}, 0
    for fraction in fractions:
        target = int(per_epoch * fraction)
        for _ in range(target - done):
            pipe.run()
        done = target
        blobs[f"{fraction:.0%}"] = pipe.checkpoint()
    if hasattr(pipe, "close"):
        pipe.close()
    out: dict[str, list[float]] = {"fresh": []}
    for _ in range(repeats):
        start = time.perf_counter()
        p = make(list_path)
        p.run()
        out["fresh"].append(time.perf_counter() - start)
        if hasattr(p, "close"):
            p.close()
        for key, blob in blobs.items():
            start = time.perf_counter()
            p = make(list_path, blob)
            p.run()
            out.setdefault(key, []).append(time.perf_counter() - start)
            if hasattr(p, "close"):
                p.close()
            del p
    return out


def fmt(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    med = statistics.median(values) * scale
    return f"{med:.{digits}f} ({min(values) * scale:.{digits}f}–{max(values) * scale:.{digits}f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pipestate-bench"))
    args = parser.parse_args(argv)
    list_path = small_files(pathlib.Path(args.cache))
    try:
        import nvidia.dali  # noqa: F401

        peers = {"pipestate": make_pipestate, "DALI": make_dali}
    except ImportError:
        peers = {"pipestate": make_pipestate}

    rates: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(args.repeats):  # interleaved: A B A B
        for name, make in peers.items():
            rates[name].append(throughput(make, list_path, args.iters))
    restores = {
        name: restore_times(make, list_path, [0.0, 0.5, 0.95], args.repeats) for name, make in peers.items()
    }

    lines = [
        f"small files: {N_FILES} x {FILE_SIZE} B, batch {BATCH}, {THREADS} threads, random_shuffle "
        f"initial_fill={FILL}, + uniform + coin_flip; median (min–max) of {args.repeats} repeats",
        "",
        "| metric | pipestate | DALI | pipestate / DALI |",
        "|---|---|---|---|",
    ]

    def row(
        label: str, a: list[float], b: list[float] | None, scale: float, digits: int, lower_better: bool
    ) -> None:
        ratio = ""
        if b:
            r = statistics.median(a) / statistics.median(b)
            ratio = f"{r:.2f}"
        lines.append(
            f"| {label} | {fmt(a, scale, digits)} | {fmt(b, scale, digits) if b else '–'} | {ratio} |"
        )

    row("batches/s", rates["pipestate"], rates.get("DALI"), 1.0, 0, False)
    for key in ["fresh", "0%", "50%", "95%"]:
        label = (
            "build + 1st batch, ms (no checkpoint)"
            if key == "fresh"
            else f"restore at {key} of the epoch + 1st batch, ms"
        )
        row(label, restores["pipestate"][key], restores.get("DALI", {}).get(key), 1e3, 1, True)
    sys.stdout.write("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    names = list(peers)
    ax1.bar(
        names, [statistics.median(rates[n]) for n in names], color=["tab:blue", "tab:green"][: len(names)]
    )
    ax1.set_ylabel("batches/s (batch 64)")
    ax1.set_title("fn.readers.file throughput")
    keys = ["0%", "50%", "95%"]
    for n in names:
        ax2.plot(keys, [statistics.median(restores[n][k]) * 1e3 for k in keys], marker="o", label=n)
    ax2.set_ylabel("restore + first batch (ms)")
    ax2.set_xlabel("checkpoint position in the epoch")
    ax2.set_title("restore time vs position")
    ax2.legend()
    fig.tight_layout()
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "readers.png", dpi=100)


if __name__ == "__main__":
    main()
