"""The file reader at scale: a 1,000,000-line (and optionally 10,000,000-line) ``file_list``, against DALI (CPU).

Question (issue 22, "Scale"): how long does building a pipeline and returning its first batch take, how much
memory does the listing cost per entry, and how long does restoring a mid-epoch checkpoint take? Each
measurement runs in a fresh process (as every data-parallel rank builds its own pipeline): the shuffled file
reader of ``benchmarks/readers.py`` (batch 64, 2 threads, ``initial_fill=1024``, + uniform + coin_flip) over a
list whose lines name 1,000 small files over and over (the listing is what scales; the files read are few).
RSS growth is the process's resident memory after the first batch minus before the pipeline was defined.
Restore: construct from a checkpoint taken after 50 % of the epoch and return the first batch.
Prints a markdown table and writes ``benchmarks/out/reader_scale.md``.
Run: ``PYTHONPATH=. python benchmarks/reader_scale.py [--entries 1000000 10000000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import dali_available, machine, markdown_table, save  # noqa: E402

N_FILES, BATCH = 1000, 64

# Run in a fresh interpreter: prints {"seconds": ..., "rss_mb": ...}.
CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {bench!r})
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
lib, list_path, cpt = sys.argv[1], sys.argv[2], sys.argv[3] or None
from readers import make_dali, make_pipestate
if lib == "dali":
    import nvidia.dali  # noqa: F401 - imported before the baseline, as pipestate is
else:
    import pipestate  # noqa: F401
before = rss()
start = time.perf_counter()
blob = None
if cpt:
    with open(cpt, "rb") as f:
        blob = f.read()
if lib == "dali":
    pipe = make_dali(list_path, blob)
else:
    pipe = make_pipestate(list_path, blob)
pipe.run()
print(json.dumps({{"seconds": time.perf_counter() - start, "rss_mb": rss() - before}}))
"""

# Writes a checkpoint taken after ``steps`` batches: argv lib, list, steps, out.
SAVE = r"""
import sys
sys.path.insert(0, {bench!r})
from readers import make_dali, make_pipestate
lib, list_path, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
pipe = make_dali(list_path) if lib == "dali" else make_pipestate(list_path)
for _ in range(steps):
    pipe.run()
blob = pipe.checkpoint()
with open(out, "wb") as f:
    f.write(blob)
"""


def make_list(cache: pathlib.Path, entries: int) -> str:
    """A ``file_list`` of ``entries`` lines over 1,000 small files (created once)."""
    root = cache / "scale"
    data = root / "files"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(N_FILES):
        path = data / f"f{i:04d}.bin"
        if not path.exists():
            path.write_bytes(bytes([i % 256]) * 512)
    list_path = root / f"list-{entries}.txt"
    if not list_path.exists():
        with open(list_path.with_suffix(".tmp"), "w") as f:
            for start in range(0, entries, 100_000):
                f.write(
                    "".join(
                        f"files/f{i % N_FILES:04d}.bin {i % N_FILES}\n"
                        for i in range(start, min(entries, start + 100_000))
                    )
                )
        list_path.with_suffix(".tmp").replace(list_path)
    return str(list_path)


def child(lib: str, list_path: str, checkpoint: str = "") -> dict:
    bench = str(ROOT / "benchmarks")
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(bench=bench), lib, list_path, checkpoint],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def save_checkpoint(lib: str, list_path: str, steps: int, out: str) -> None:
    bench = str(ROOT / "benchmarks")
    subprocess.run(
        [sys.executable, "-c", SAVE.format(bench=bench), lib, list_path, str(steps), out],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pipestate-bench"))
    args = parser.parse_args(argv)
    libs = ["pipestate", "dali"] if dali_available() else ["pipestate"]
    rows = []
    allmed: dict[int, dict[str, dict[str, float]]] = {}
    for entries in args.entries:
        list_path = make_list(pathlib.Path(args.cache), entries)
        cpts = {}
        for lib in libs:
            cpts[lib] = os.path.join(args.cache, "scale", f"{lib}-{entries}.cpt")
            save_checkpoint(lib, list_path, entries // BATCH // 2, cpts[lib])
        runs: dict[str, dict[str, list[float]]] = {lib: {"build": [], "rss": [], "restore": []} for lib in libs}
        for _ in range(args.rounds):
            for lib in libs:  # interleaved
                first = child(lib, list_path)
                runs[lib]["build"].append(first["seconds"])
                runs[lib]["rss"].append(first["rss_mb"])
                runs[lib]["restore"].append(child(lib, list_path, cpts[lib])["seconds"])
        med = {lib: {k: statistics.median(v) for k, v in r.items()} for lib, r in runs.items()}
        allmed[entries] = med
        for key, label, unit, scale in (
            ("build", "construct + first batch", "ms", 1e3),
            ("rss", "RSS growth per entry", "B", 2**20 / entries),
            ("restore", "restore at 50 % + first batch", "ms", 1e3),
        ):
            ours = med["pipestate"][key] * scale
            theirs = med["dali"][key] * scale if "dali" in med else None
            spread = f"{min(runs['pipestate'][key]) * scale:.0f}–{max(runs['pipestate'][key]) * scale:.0f}"
            rows.append(
                [
                    f"{entries:,}",
                    f"{label} ({unit})",
                    f"{ours:.0f} ({spread})",
                    f"{theirs:.0f}" if theirs is not None else "–",
                    f"{ours / theirs:.2f}" if theirs else "–",
                ]
            )
    table = (
        f"file reader at scale ({machine()}), fresh process per measurement, median (pipestate min–max) of "
        f"{args.rounds} interleaved rounds\n\n"
        + markdown_table(["entries", "measure", "pipestate", "DALI CPU", "ratio"], rows)
    )
    print(table)

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        for ax, (k, title) in zip(
            axes,
            (("build", "construct + first batch (s)"), ("rss", "RSS growth (MB)"), ("restore", "restore at 50 % (s)")),
        ):
            for j, lib in enumerate(libs):
                ax.bar(
                    [x + 0.4 * j for x in range(len(args.entries))],
                    [allmed[n][lib][k] for n in args.entries],
                    width=0.4,
                    label=lib,
                )
            ax.set_xticks([x + 0.2 for x in range(len(args.entries))], [f"{n:,}" for n in args.entries])
            ax.set_title(title)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(path)

    save("reader_scale", table, plot)


if __name__ == "__main__":
    main()
