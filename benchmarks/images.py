"""Image pipelines and image operators, pipestate vs DALI CPU: images/s on the reference JPEGs.

Pipelines (batch 32, reader -> decode -> crop/resize -> normalize, BENCHMARKS.md's "images"):
- unfused: ``readers.file`` -> ``decoders.image`` -> ``random_resized_crop(224)`` ->
  ``crop_mirror_normalize(mirror=coin_flip, FLOAT, CHW)``;
- fused: ``readers.file`` -> ``decoders.image_random_crop`` -> ``resize(224, 224)`` -> the same normalize;
each at 1 and 2 threads (and all cores when there are more), with checkpointing on and off, pipestate and
DALI (``device_id=None``) interleaved round by round (A B A B). Then a per-operator table: each operator on
batches of the decoded reference images (decoded once, outside the timing), fed by ``external_source`` in
both libraries, samples/s and the ratio. Prints markdown tables, writes ``benchmarks/out/images.{md,png}``.

    PYTHONPATH=. python benchmarks/images.py [--rounds 5] [--iters 16] [--op-threads 2] [--skip-ops]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from image_libs import reference_images  # noqa: E402

import pipestate  # noqa: E402
from benchmarks._common import dali_available, fmt, interleave, machine, markdown_table, save, summary  # noqa: E402

BATCH = 32
MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def file_list(cache: pathlib.Path) -> pathlib.Path:
    """The reference JPEGs (generated once) and a ``file_list`` of them with labels ``i % 10``."""
    reference_images(cache)
    listing = cache / "file_list.txt"
    if not listing.exists():
        names = sorted(p.name for p in (cache / "images").glob("*.jpg"))
        listing.write_text("".join(f"{name} {i % 10}\n" for i, name in enumerate(names)))
    return listing


def pipeline_graph(fn, types, listing: pathlib.Path, fused: bool):
    """The benchmark's pipeline in DALI's API (``fn``/``types`` of either library)."""
    jpegs, labels = fn.readers.file(
        file_root=str(listing.parent / "images"), file_list=str(listing), random_shuffle=True, seed=11, name="Reader"
    )
    if fused:
        images = fn.decoders.image_random_crop(jpegs, output_type=types.RGB)
        images = fn.resize(images, resize_x=224, resize_y=224)
    else:
        images = fn.decoders.image(jpegs, output_type=types.RGB)
        images = fn.random_resized_crop(images, size=224)
    images = fn.crop_mirror_normalize(
        images, dtype=types.FLOAT, output_layout="CHW", mean=MEAN, std=STD, mirror=fn.random.coin_flip()
    )
    return images, labels


def build(lib: str, listing: pathlib.Path, fused: bool, threads: int, checkpointing: bool):
    if lib == "pipestate":
        from pipestate import fn, types

        @pipestate.pipeline_def(batch_size=BATCH, num_threads=threads, seed=3, enable_checkpointing=checkpointing)
        def pipe():
            return pipeline_graph(fn, types, listing, fused)

        return pipe()
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=BATCH, num_threads=threads, device_id=None, seed=3, enable_checkpointing=checkpointing)
    def dali_pipe():
        return pipeline_graph(fn, types, listing, fused)

    p = dali_pipe()
    p.build()
    return p


def step(pipe) -> None:
    """One batch (pipestate ends an epoch with StopIteration: reset and go on, as DALI's reader does)."""
    try:
        pipe.run()
    except StopIteration:
        pipe.reset()
        pipe.run()


CPU: dict = {}  # (config...) -> CPU milliseconds per image of each round (all of the process's threads)
PREFETCH = 2  # both libraries' default prefetch_queue_depth


def measure(pipe, iters: int, key: tuple, checkpoint: bool = False) -> float:
    """Images/s over ``iters`` batches; with ``checkpoint``, a checkpoint per batch. Also records the process's
    CPU time per image (stable on a loaded machine, unlike wall time) in ``CPU``.

    Both libraries compute ``PREFETCH`` batches ahead: the first ``PREFETCH`` steps (computed before the
    window) are not timed, and after the window the function waits for the pipeline to compute its next
    ``PREFETCH`` batches, so no pipeline works during another's window.
    """
    for _ in range(PREFETCH):
        step(pipe)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step(pipe)
        if checkpoint:
            pipe.checkpoint()
    seconds = time.perf_counter() - start
    CPU.setdefault(key, []).append((time.process_time() - cpu) * 1e3 / (iters * BATCH))
    time.sleep(1.5 * PREFETCH * seconds / iters)  # the prefetched batches, outside every window
    return iters * BATCH / seconds


def pipelines(listing: pathlib.Path, args, peers: list[str]) -> list[list[str]]:
    thread_counts = [1, 2] + ([os.cpu_count()] if (os.cpu_count() or 1) > 2 else [])
    rows, results = [], {}
    for fused in (False, True):
        for threads in thread_counts:
            configs = {}
            for lib in peers:
                for ckpt in (False, True):
                    pipe = build(lib, listing, fused, threads, ckpt)
                    for _ in range(3):
                        step(pipe)
                    configs[(lib, ckpt)] = pipe
            got = interleave(
                {
                    key: (
                        lambda p=p, key=key, where=(fused, threads): measure(
                            p, args.iters, (*where, *key), checkpoint=key[1]
                        )
                    )
                    for key, p in configs.items()
                },
                args.rounds,
            )
            for pipe in configs.values():
                if hasattr(pipe, "close"):
                    pipe.close()
            results[(fused, threads)] = got
            ours, ours_ck = got[("pipestate", False)], got[("pipestate", True)]
            cpu, cpu_ck = CPU[(fused, threads, "pipestate", False)], CPU[(fused, threads, "pipestate", True)]
            overhead = 100 * (summary(cpu_ck)[0] / summary(cpu)[0] - 1)
            row = [
                "fused" if fused else "unfused",
                str(threads),
                fmt(ours, 0),
                fmt(cpu, 2),
                fmt(ours_ck, 0),
                f"{overhead:+.1f} %",
            ]
            if "dali" in peers:
                dali, dali_cpu = got[("dali", False)], CPU[(fused, threads, "dali", False)]
                row += [
                    fmt(dali, 0),
                    fmt(dali_cpu, 2),
                    f"{summary(ours)[0] / summary(dali)[0]:.2f}x",
                    f"{summary(dali_cpu)[0] / summary(cpu)[0]:.2f}x",
                ]
            rows.append(row)
            print(" | ".join(row), flush=True)
    for fused in (False, True):
        for lib in peers:
            one, two = results[(fused, 1)][(lib, False)], results[(fused, 2)][(lib, False)]
            print(f"{'fused' if fused else 'unfused'}: 1 -> 2 threads x{summary(two)[0] / summary(one)[0]:.2f} ({lib})")
    return rows


OPERATORS = {  # name: (input kind, call in DALI's API)
    "decoders.image": ("jpeg", lambda fn, types, x: fn.decoders.image(x)),
    "decoders.image_crop": ("jpeg", lambda fn, types, x: fn.decoders.image_crop(x, crop=(224, 224))),
    "decoders.image_random_crop": ("jpeg", lambda fn, types, x: fn.decoders.image_random_crop(x)),
    "peek_image_shape": ("jpeg", lambda fn, types, x: fn.peek_image_shape(x)),
    "resize (shorter 256)": ("pixels", lambda fn, types, x: fn.resize(x, resize_shorter=256)),
    "resize (224x224)": ("pixels", lambda fn, types, x: fn.resize(x, size=(224, 224))),
    "random_resized_crop(224)": ("pixels", lambda fn, types, x: fn.random_resized_crop(x, size=224)),
    "resize_crop_mirror": (
        "pixels",
        lambda fn, types, x: fn.resize_crop_mirror(x, resize_shorter=256, crop=(224, 224), mirror=1),
    ),
    "crop_mirror_normalize": (
        "pixels",
        lambda fn, types, x: fn.crop_mirror_normalize(
            x, crop=(224, 224), mean=MEAN, std=STD, mirror=1, dtype=types.FLOAT
        ),
    ),
    "crop": ("pixels", lambda fn, types, x: fn.crop(x, crop=(224, 224))),
    "slice": ("pixels", lambda fn, types, x: fn.slice(x, rel_start=(0.1, 0.1), rel_end=(0.9, 0.9))),
    "flip": ("pixels", lambda fn, types, x: fn.flip(x, horizontal=1, vertical=1)),
    "rotate(10)": ("pixels", lambda fn, types, x: fn.rotate(x, angle=10.0)),
    "warp_affine": ("pixels", lambda fn, types, x: fn.warp_affine(x, matrix=(0.9, 0.1, 5, -0.1, 0.9, 7))),
    "experimental.warp_perspective": (
        "pixels",
        lambda fn, types, x: fn.experimental.warp_perspective(x, matrix=(0.9, 0.1, 5, -0.1, 0.9, 7, 0.0001, 0.0002, 1)),
    ),
    "pad": ("pixels", lambda fn, types, x: fn.pad(x, shape=(400, 512, 3))),
    "erase": ("pixels", lambda fn, types, x: fn.erase(x, anchor=(50, 60), shape=(100, 120))),
    "paste": ("pixels", lambda fn, types, x: fn.paste(x, ratio=1.5, fill_value=0)),
    "multi_paste": ("pixels", lambda fn, types, x: fn.multi_paste(x, in_ids=[1, 0], output_size=(375, 500))),
    "tensor_resize": ("pixels", lambda fn, types, x: fn.tensor_resize(x, axes=[0, 1], sizes=[300, 400])),
    "sphere": ("pixels", lambda fn, types, x: fn.sphere(x)),
    "water": ("pixels", lambda fn, types, x: fn.water(x)),
}


def op_rate(lib: str, op, batches: list[list[np.ndarray]], threads: int, iters: int):
    """A callable measuring samples/s of ``op`` over the given input batches (cycled)."""
    state = {"i": 0}

    def source():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        return batch

    layout = "HWC" if batches[0][0].ndim == 3 else None
    if lib == "pipestate":
        from pipestate import fn, types

        @pipestate.pipeline_def(batch_size=BATCH, num_threads=threads, seed=3, prefetch_queue_depth=1)
        def pipe():
            return op(fn, types, fn.external_source(source=source, layout=layout))

        p = pipe()
    else:
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=BATCH, num_threads=threads, device_id=None, seed=3, prefetch_queue_depth=1)
        def dali_pipe():
            return op(fn, types, fn.external_source(source=source, layout=layout))

        p = dali_pipe()
        p.build()
    for _ in range(2):
        p.run()

    def measure_op() -> float:
        p.run()  # computed before the window (prefetch depth 1)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(iters):
            p.run()
        seconds = time.perf_counter() - start
        CPU.setdefault(("op", id(op), lib), []).append((time.process_time() - cpu) * 1e3 / (iters * BATCH))
        time.sleep(1.5 * seconds / iters)  # the batch computed ahead, outside every window
        return iters * BATCH / seconds

    return measure_op, p


def operators(jpegs: list[bytes], args, peers: list[str]) -> list[list[str]]:
    from pipestate.operators.image._kernels.decode import decode

    encoded = [np.frombuffer(b, np.uint8) for b in jpegs[: 4 * BATCH]]
    pixels = [decode(b) for b in encoded]
    inputs = {"jpeg": encoded, "pixels": pixels}
    rows = []
    for name, (kind, op) in OPERATORS.items():
        samples = inputs[kind]
        batches = [samples[k : k + BATCH] for k in range(0, len(samples), BATCH)]
        runners, pipes = {}, []
        for lib in peers:
            runner, pipe = op_rate(lib, op, batches, args.op_threads, max(2, args.iters // 2))
            runners[lib] = runner
            pipes.append(pipe)
        got = interleave(runners, args.rounds)
        for pipe in pipes:
            if hasattr(pipe, "close"):
                pipe.close()
        row = [name, f"{'JPEG 500x375' if kind == 'jpeg' else 'uint8 375x500x3'}", fmt(got["pipestate"], 0)]
        if "dali" in got:
            ratio = summary(got["pipestate"])[0] / summary(got["dali"])[0]
            cpu = summary(CPU[("op", id(op), "dali")])[0] / summary(CPU[("op", id(op), "pipestate")])[0]
            row += [fmt(got["dali"], 0), f"{ratio:.2f}x", f"{cpu:.2f}x"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=16, help="batches per timed round")
    parser.add_argument("--op-threads", type=int, default=2)
    parser.add_argument("--skip-ops", action="store_true", help="only the pipelines")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pipestate-bench-images"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    peers = ["pipestate"] + (["dali"] if dali_available() else [])
    if "dali" not in peers:
        print("(DALI is not installed: pipestate alone)")
    cache = pathlib.Path(args.cache)
    listing = file_list(cache)
    header = [
        "pipeline",
        "threads",
        "pipestate img/s",
        "pipestate CPU ms/img",
        "pipestate img/s, checkpointing",
        "checkpointing CPU cost",
    ]
    if "dali" in peers:
        header += ["DALI img/s", "DALI CPU ms/img", "img/s ratio", "CPU ratio (DALI / pipestate)"]
    pipe_rows = pipelines(listing, args, peers)
    text = f"Images, batch {BATCH} ({machine()}, median (min–max) of {args.rounds} rounds)\n\n"
    text += markdown_table(header, pipe_rows)
    op_rows = []
    if not args.skip_ops:
        op_rows = operators(reference_images(cache), args, peers)
        op_header = ["operator", "input", "pipestate samples/s"] + (
            ["DALI samples/s", "ratio", "CPU ratio (DALI / pipestate)"] if "dali" in peers else []
        )
        text += f"\n\nPer operator, batch {BATCH}, {args.op_threads} threads\n\n" + markdown_table(op_header, op_rows)
    print()
    print(text)

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2 if op_rows else 1, figsize=(14 if op_rows else 7, 5), squeeze=False)
        ax = axes[0][0]
        labels = [f"{r[0]}\n{r[1]} thr" for r in pipe_rows]
        xs = np.arange(len(pipe_rows))
        ours = [float(r[2].split()[0]) for r in pipe_rows]
        ax.bar(xs - 0.2, ours, 0.4, label="pipestate")
        if "dali" in peers:
            ax.bar(xs + 0.2, [float(r[6].split()[0]) for r in pipe_rows], 0.4, label="DALI CPU")
        ax.set_xticks(xs, labels)
        ax.set_ylabel("images/s")
        ax.set_title("decode -> crop/resize 224 -> normalize, batch 32")
        ax.legend()
        if op_rows and "dali" in peers:
            ax = axes[0][1]
            ratios = [float(r[4].rstrip("x")) for r in op_rows]
            ax.barh(np.arange(len(op_rows)), ratios)
            ax.axvline(1.0, color="k", lw=0.8)
            ax.axvline(0.5, color="r", lw=0.8, ls="--")
            ax.set_yticks(np.arange(len(op_rows)), [r[0] for r in op_rows])
            ax.set_xscale("log")
            ax.set_xlabel("pipestate / DALI (samples/s, log scale)")
            ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(path)

    save("images", text, plot)


if __name__ == "__main__":
    main()
