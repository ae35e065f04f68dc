"""Checkpoint storage bandwidth and latency (DLIO-style): save/load, sync vs async, 1 KB to 256 MB.

For each size a valid pipestate checkpoint of about that size is built (random operator bytes, fixed
seed) and saved with fsync on:

- sync: ``LocalCheckpointIO.save_checkpoint`` (temp file, write, fsync, rename, directory fsync);
- async: ``AsyncCheckpointIO(LocalCheckpointIO())``; the caller's *blocking* time (until
  ``save_checkpoint`` returns) and the *background* time (until the returned future completes, i.e. the
  bytes are durable) are reported separately;
- load: ``LocalCheckpointIO.load_checkpoint`` (read + validation: envelope parse and CRC32), *cold*
  (the file's pages are dropped with ``posix_fadvise(DONTNEED)`` first, where available) and *warm*.

sync and async runs are interleaved (A B A B). Medians with min-max over the repetitions.

A second table times ``Checkpointer(keep_last=3).save`` on the caller's thread for a small (1 KB)
checkpoint: with ``LocalCheckpointIO``; with ``AsyncCheckpointIO`` where retention (list, load and
validate, delete) runs on the writer thread; and with retention on the caller's thread as pipestate 0.1.0
did it (an ``AsyncCheckpointIO`` without ``submit``). The three are interleaved; the writer is drained
between saves (as when saves are far apart).

Usage: ``python benchmarks/checkpoint_io.py [--sizes 1K,1M,256M] [--reps N] [--dir DIR] [--tables ...]``.
Prints markdown tables and writes ``benchmarks/out/checkpoint_io.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipestate.checkpoint import CheckpointData, OperatorRecord, decode, encode  # noqa: E402
from pipestate.io import AsyncCheckpointIO, Checkpointer, LocalCheckpointIO  # noqa: E402

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
DEFAULT_SIZES = "1K,64K,1M,16M,256M"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def parse_size(text: str) -> int:
    """'64K' -> 65536."""
    text = text.strip().upper()
    return int(text[:-1]) * UNITS[text[-1]] if text[-1] in UNITS else int(text)


def label(n: int) -> str:
    """65536 -> '64 KB'."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def make_checkpoint(size: int) -> bytes:
    """A valid checkpoint of about ``size`` bytes (random operator state, fixed seed)."""
    filler = np.random.default_rng(size).bytes(max(0, size - 120))
    data = CheckpointData(
        library_version="0.1.0", fingerprint=b"\x00" * 16, batch_size=1, seed=0, iteration=1, epoch=0,
        iteration_in_epoch=1,
        operators=(
            OperatorRecord("reader_0", "readers.file", 1, {}, {"epoch": 0, "consumed": 2}, True),
            OperatorRecord("state_0", "custom", 2, {}, filler, True),
        ),
    )
    return encode(data)


def drop_cache(path: str) -> bool:
    """Evict ``path``'s pages from the page cache (they are clean after fsync). False if unsupported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def reps_for(size: int, override: int | None) -> int:
    """Fewer repetitions for big sizes so the default run stays within ~3 minutes."""
    if override:
        return override
    return 30 if size <= 64 << 10 else 15 if size <= 1 << 20 else 5 if size <= 16 << 20 else 3


def bench_size(size: int, reps: int, directory: str) -> dict[str, list[float]]:
    """Time every operation ``reps`` times for one size; returns seconds per repetition."""
    blob = make_checkpoint(size)
    sync_io = LocalCheckpointIO()
    async_io = AsyncCheckpointIO(LocalCheckpointIO())
    times: dict[str, list[float]] = {k: [] for k in ("sync", "blocking", "background", "cold", "warm")}
    path_s, path_a = os.path.join(directory, "sync.pscpt"), os.path.join(directory, "async.pscpt")
    sync_io.save_checkpoint(blob, path_s)  # warm up both paths
    async_io.save_checkpoint(blob, path_a).result()
    for _ in range(reps):
        t0 = time.perf_counter()
        sync_io.save_checkpoint(blob, path_s)
        times["sync"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        future = async_io.save_checkpoint(blob, path_a)
        t1 = time.perf_counter()
        future.result()
        t2 = time.perf_counter()
        times["blocking"].append(t1 - t0)
        times["background"].append(t2 - t0)

        cold = drop_cache(path_s)
        t0 = time.perf_counter()
        loaded = sync_io.load_checkpoint(path_s)
        times["cold" if cold else "warm"].append(time.perf_counter() - t0)
        if cold:
            t0 = time.perf_counter()
            sync_io.load_checkpoint(path_s)
            times["warm"].append(time.perf_counter() - t0)
        if len(loaded) != len(blob):
            raise RuntimeError("loaded a different checkpoint than was saved")
    async_io.close()
    times["validate"] = []
    for _ in range(min(reps, 5)):
        t0 = time.perf_counter()
        decode(blob)
        times["validate"].append(time.perf_counter() - t0)
    return times


class CallerRetentionIO(AsyncCheckpointIO):
    """AsyncCheckpointIO without ``submit``: Checkpointer then applies retention on the caller's thread."""

    submit = None


def bench_checkpointer(reps: int, directory: str) -> dict[str, list[float]]:
    """Caller time of ``Checkpointer(keep_last=3).save`` per backend, interleaved; seconds per save."""
    blob = make_checkpoint(1 << 10)
    backends = {
        "sync (LocalCheckpointIO)": lambda: LocalCheckpointIO(),
        "async, retention in the background": lambda: AsyncCheckpointIO(LocalCheckpointIO()),
        "async, retention on the caller (0.1.0)": lambda: CallerRetentionIO(LocalCheckpointIO()),
    }
    ckpts = {name: Checkpointer(os.path.join(directory, f"ck{i}"), keep_last=3, checkpoint_io=make())
             for i, (name, make) in enumerate(backends.items())}
    times: dict[str, list[float]] = {name: [] for name in backends}
    for step in range(reps + 5):
        for name, ckpt in ckpts.items():
            t0 = time.perf_counter()
            ckpt.save(blob, step)
            elapsed = time.perf_counter() - t0
            wait = getattr(ckpt.checkpoint_io, "wait", None)
            if wait:
                wait()
            if step >= 5:  # the first saves have nothing to delete yet
                times[name].append(elapsed)
    for ckpt in ckpts.values():
        ckpt.close()
        ckpt.checkpoint_io.teardown()
        if ckpt.steps() != [reps + 2, reps + 3, reps + 4]:
            raise RuntimeError(f"retention did not keep the last 3: {ckpt.steps()}")
    return times


def fmt_latency(values: list[float]) -> str:
    """Median (min-max) in an adaptive unit."""
    if not values:
        return "–"
    med, lo, hi = statistics.median(values), min(values), max(values)
    unit, scale = ("s", 1.0) if med >= 1 else ("ms", 1e3) if med >= 1e-3 else ("µs", 1e6)
    return f"{med * scale:.3g} ({lo * scale:.3g}–{hi * scale:.3g}) {unit}"


def fmt_bw(size: int, values: list[float]) -> str:
    """Bandwidth at the median time, MB/s."""
    return f"{size / statistics.median(values) / 1e6:.3g}" if values else "–"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a markdown table; write the PNG plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated (default {DEFAULT_SIZES})")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per size (default: by size)")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--tables", default="sizes,checkpointer", help="which tables (default: both)")
    args = parser.parse_args(argv)
    tables = args.tables.split(",")
    sizes = [parse_size(s) for s in args.sizes.split(",")] if "sizes" in tables else []
    directory = tempfile.mkdtemp(prefix="pipestate-bench-", dir=args.dir)
    rows, results = [], {}
    try:
        if "checkpointer" in tables:
            ck = bench_checkpointer(args.reps or 30, directory)
            sys.stdout.write("| Checkpointer(keep_last=3).save, 1 KB | caller blocked | saves |\n|---|---|---|\n")
            sys.stdout.write("".join(f"| {name} | {fmt_latency(t)} | {len(t)} |\n" for name, t in ck.items()))
            sys.stdout.write("\n")
        for size in sizes:
            t = bench_size(size, reps_for(size, args.reps), directory)
            results[size] = t
            rows.append(
                f"| {label(size)} | {fmt_latency(t['sync'])} | {fmt_bw(size, t['sync'])} "
                f"| {fmt_latency(t['blocking'])} | {fmt_latency(t['background'])} "
                f"| {fmt_latency(t['cold'])} | {fmt_bw(size, t['cold'])} | {fmt_latency(t['warm'])} "
                f"| {fmt_latency(t['validate'])} | {len(t['sync'])} |"
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    header = (
        "| size | sync save | sync MB/s | async: caller blocked | async: background until durable "
        "| load cold | load cold MB/s | load warm | of which validation | reps |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    if sizes:
        sys.stdout.write(header + "\n" + "\n".join(rows) + "\n")
        plot(sizes, results)
    return 0


def plot(sizes: list[int], results: dict[int, dict[str, list[float]]]) -> None:
    """Bandwidth and caller latency against size, log-log, to benchmarks/out/checkpoint_io.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_bw, ax_lat) = plt.subplots(1, 2, figsize=(11, 4))
    for key, name in (("sync", "sync save"), ("background", "async save (background)"),
                      ("cold", "load, cold cache"), ("warm", "load, warm cache")):
        xs = [s for s in sizes if results[s][key]]
        ax_bw.plot(xs, [s / statistics.median(results[s][key]) / 1e6 for s in xs], "o-", label=name)
    for key, name in (("sync", "sync save"), ("blocking", "async save: caller blocked"),
                      ("background", "async save: until durable")):
        ax_lat.plot(sizes, [statistics.median(results[s][key]) * 1e3 for s in sizes], "o-", label=name)
    for ax, ylabel in ((ax_bw, "MB/s"), (ax_lat, "ms")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("checkpoint size (bytes)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_bw.set_title("bandwidth (fsync on)")
    ax_lat.set_title("latency")
    fig.tight_layout()
    os.makedirs(OUT, exist_ok=True)
    fig.savefig(os.path.join(OUT, "checkpoint_io.png"), dpi=100)


if __name__ == "__main__":
    sys.exit(main())
