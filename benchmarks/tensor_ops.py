"""Tensor operators, reductions and math functions: samples/s of pipestate vs DALI CPU, per operator.

Each operator runs in a pipeline of its own (an external source giving the same batch every iteration, the
operator, its output) in pipestate and in DALI with the same batch size and threads, on synthetic tensors
of a stated shape (generated with a fixed seed); the two are timed in alternation (A B A B), and the table
gives the median (min-max) samples/s and the ratio of the medians. A first row times the source alone.

    PYTHONPATH=. python benchmarks/tensor_ops.py --rounds 3 --iterations 20
"""

from __future__ import annotations

import argparse
import sys
import time
import types as _types
from collections.abc import Callable

import numpy as np
from _common import dali_available, fmt, machine, markdown_table, save

BATCH = 32


def _data() -> dict[str, tuple[str, list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    u8 = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(BATCH)]
    f32 = [(s / 255.0).astype(np.float32) for s in u8]
    ragged = [rng.integers(0, 256, (200 + 2 * i, 248 - i, 3), dtype=np.uint8) for i in range(BATCH)]
    return {
        "u8": ("uint8 224x224x3", u8),
        "f32": ("float32 224x224x3", f32),
        "ragged": ("uint8 ~224x224x3 ragged", ragged),
        "seq": ("uint8 16x64x64x3 (FHWC)", [rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)] * BATCH),
        "labels": ("int32 (100,)", [rng.integers(0, 10, (100,), dtype=np.int32) for _ in range(BATCH)]),
        "one": ("float32 224x224x1", [s[:, :, :1].copy() for s in f32]),
    }


LAYOUT = {"u8": "HWC", "f32": "HWC", "ragged": "HWC", "seq": "FHWC", "labels": None, "one": "HWC"}


def _dtype(lib, t):
    return np.dtype(t) if lib.name == "pipestate" else lib.types.to_dali_type(np.dtype(t).type)


# (operator, data, build(lib, x)) -- lib has .fn, .math, .types, .name
CASES: list[tuple[str, str, Callable]] = [
    ("(external source only)", "u8", lambda lib, x: x),
    ("reshape", "u8", lambda lib, x: lib.fn.reshape(x, shape=[224, -1])),
    ("reinterpret", "u8", lambda lib, x: lib.fn.reinterpret(x, dtype=_dtype(lib, np.int16), shape=[224, -1])),
    ("squeeze", "one", lambda lib, x: lib.fn.squeeze(x, axes=[2])),
    ("expand_dims", "u8", lambda lib, x: lib.fn.expand_dims(x, axes=[0], new_axis_names="F")),
    ("transpose", "u8", lambda lib, x: lib.fn.transpose(x, perm=[2, 0, 1])),
    ("transpose", "ragged", lambda lib, x: lib.fn.transpose(x, perm=[2, 0, 1])),
    ("copy", "u8", lambda lib, x: lib.fn.copy(x)),
    ("shapes", "u8", lambda lib, x: lib.fn.shapes(x)),
    ("get_property", "u8", lambda lib, x: lib.fn.get_property(x, key="layout")),
    ("cat", "u8", lambda lib, x: lib.fn.cat(x, x, axis=2)),
    ("stack", "u8", lambda lib, x: lib.fn.stack(x, x)),
    ("cast_like", "u8", lambda lib, x: lib.fn.cast_like(x, lib.fn.cast(x, dtype=_dtype(lib, np.float32)))),
    ("lookup_table", "u8", lambda lib, x: lib.fn.lookup_table(x, keys=list(range(0, 256, 2)), values=[0.5] * 128)),
    ("one_hot", "labels", lambda lib, x: lib.fn.one_hot(x, num_classes=10)),
    ("element_extract", "seq", lambda lib, x: lib.fn.element_extract(x, element_map=[0, 8])[1]),
    ("sequence_rearrange", "seq", lambda lib, x: lib.fn.sequence_rearrange(x, new_order=list(range(15, -1, -1)))),
    ("per_frame", "seq", lambda lib, x: lib.fn.per_frame(x)),
    ("permute_batch", "u8", lambda lib, x: lib.fn.permute_batch(x, indices=list(range(BATCH - 1, -1, -1)))),
    ("full", "labels", lambda lib, x: lib.fn.full(lib.fn.reductions.max(x), shape=[224, 224, 3])),
    ("full_like", "u8", lambda lib, x: lib.fn.full_like(x, np.float32(7.0))),
    ("zeros", "u8", lambda lib, x: lib.fn.zeros(shape=[224, 224, 3], dtype=_dtype(lib, np.uint8))),
    ("zeros_like", "u8", lambda lib, x: lib.fn.zeros_like(x)),
    ("ones", "u8", lambda lib, x: lib.fn.ones(shape=[224, 224, 3], dtype=_dtype(lib, np.float32))),
    ("ones_like", "u8", lambda lib, x: lib.fn.ones_like(x)),
    ("reductions.min", "u8", lambda lib, x: lib.fn.reductions.min(x, axis_names="HW")),
    ("reductions.max", "f32", lambda lib, x: lib.fn.reductions.max(x)),
    ("reductions.sum", "u8", lambda lib, x: lib.fn.reductions.sum(x, axes=[0, 1])),
    ("reductions.sum", "f32", lambda lib, x: lib.fn.reductions.sum(x)),
    ("reductions.mean", "u8", lambda lib, x: lib.fn.reductions.mean(x, axis_names="HW")),
    ("reductions.mean", "ragged", lambda lib, x: lib.fn.reductions.mean(x, axis_names="HW")),
    ("reductions.mean_square", "f32", lambda lib, x: lib.fn.reductions.mean_square(x, axes=[0, 1])),
    ("reductions.rms", "f32", lambda lib, x: lib.fn.reductions.rms(x)),
    ("reductions.std_dev", "f32", lambda lib, x: lib.fn.reductions.std_dev(x, lib.fn.reductions.mean(x))),
    ("reductions.variance", "u8", lambda lib, x: lib.fn.reductions.variance(x, np.float32(128.0), axes=[0, 1, 2])),
    ("math.sqrt", "f32", lambda lib, x: lib.math.sqrt(x)),
    ("math.sqrt", "u8", lambda lib, x: lib.math.sqrt(x)),
    ("math.abs", "f32", lambda lib, x: lib.math.abs(x - 0.5)),
    ("math.floor", "f32", lambda lib, x: lib.math.floor(x)),
    ("math.exp", "f32", lambda lib, x: lib.math.exp(x)),
    ("math.log", "f32", lambda lib, x: lib.math.log(x)),
    ("math.sin", "f32", lambda lib, x: lib.math.sin(x)),
    ("math.atan2", "f32", lambda lib, x: lib.math.atan2(x, 0.5)),
    ("math.pow", "f32", lambda lib, x: lib.math.pow(x, 2.0)),
    ("math.min", "u8", lambda lib, x: lib.math.min(x, 100)),
    ("math.clamp", "f32", lambda lib, x: lib.math.clamp(x, 0.2, 0.8)),
    ("math.clamp", "ragged", lambda lib, x: lib.math.clamp(x, 20, 200)),
]


def _lib(name: str):
    if name == "pipestate":
        import pipestate
        from pipestate import fn, math, types

        return _types.SimpleNamespace(name=name, fn=fn, math=math, types=types, pipeline_def=pipestate.pipeline_def)
    import nvidia.dali as dali
    import nvidia.dali.math as dmath

    return _types.SimpleNamespace(name=name, fn=dali.fn, math=dmath, types=dali.types, pipeline_def=dali.pipeline_def)


def _pipeline(lib, build: Callable, batch: list[np.ndarray], layout: str | None, threads: int):
    options = {"batch_size": BATCH, "num_threads": threads, "seed": 1}
    if lib.name == "dali":
        options["device_id"] = None

    @lib.pipeline_def(**options)
    def pipe():
        x = lib.fn.external_source(source=lambda: batch, batch=True, layout=layout)
        return build(lib, x)

    p = pipe()
    p.build()
    return p


def _rate(pipe, iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        pipe.run()
    return iterations * BATCH / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20, help="batches per timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="run the operators whose name contains this")
    args = parser.parse_args(argv)
    if not dali_available():
        sys.exit("this benchmark compares with NVIDIA DALI: pip install '.[dali]'")
    data = _data()
    libs = [_lib("pipestate"), _lib("dali")]
    rows, plot_data = [], []
    for name, key, build in CASES:
        if args.only not in name:
            continue
        label, batch = data[key]
        pipes = [_pipeline(lib, build, batch, LAYOUT[key], args.threads) for lib in libs]
        for pipe in pipes:
            _rate(pipe, 3)  # warm up
        rates: list[list[float]] = [[], []]
        for _ in range(args.rounds):  # interleaved A B A B
            for k, pipe in enumerate(pipes):
                rates[k].append(_rate(pipe, args.iterations))
        for pipe in pipes:
            if hasattr(pipe, "close"):
                pipe.close()
        ratio = float(np.median(rates[0]) / np.median(rates[1]))
        rows.append([name, label, fmt(rates[0], 0), fmt(rates[1], 0), f"{ratio:.2f}"])
        plot_data.append((f"{name} ({label})", ratio))
        print(f"done: {name} {label}: {ratio:.2f}", file=sys.stderr, flush=True)

    header = ["operator", "input", "pipestate samples/s", "DALI samples/s", "ratio"]
    table = (
        f"tensor operators, batch {BATCH}, {args.threads} threads, {machine()}; median (min-max) of {args.rounds} "
        f"interleaved rounds of {args.iterations} batches\n\n" + markdown_table(header, rows)
    )
    print(table)

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 0.28 * len(plot_data) + 1))
        ys = np.arange(len(plot_data))
        ax.barh(ys, [p[1] for p in plot_data])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(0.5, color="r", lw=0.8, ls="--")
        ax.set_yticks(ys, [p[0] for p in plot_data], fontsize=6)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("pipestate / DALI (samples/s)")
        fig.tight_layout()
        fig.savefig(path, dpi=120)

    save("tensor_ops", table, plot)


if __name__ == "__main__":
    main()
