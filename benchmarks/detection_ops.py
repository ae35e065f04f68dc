"""Detection operators vs DALI CPU: samples/s of each geometry, box and segmentation operator, and of
fn.readers.coco.

Each operator runs on the same generated inputs in pipestate and in DALI (``device_id=None``), fed by an
external source of one fixed batch, with the same ``num_threads`` and batch size, interleaved (A B A B):
warm-up batches, then timed rounds; the table gives the median (min–max) of the rounds and the ratio
pipestate / DALI. Run:

    PYTHONPATH=. python benchmarks/detection_ops.py [--threads 2] [--rounds 5] [--iters 40] [--only box_encoder]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import pipestate  # noqa: E402
from benchmarks._common import dali_available, fmt, interleave, machine, markdown_table, save, summary  # noqa: E402

SEED = 2026
BATCH = 32


def _inputs() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(SEED)

    def ltrb(n):
        lo = rng.uniform(0, 0.7, (n, 2))
        return np.concatenate([lo, lo + rng.uniform(0.05, 0.3, (n, 2))], axis=1).astype(np.float32)

    masks = []
    for _ in range(BATCH):
        m = np.zeros((256, 256), np.uint8)
        for _ in range(6):
            y, x, h, w = (int(v) for v in rng.integers(0, 200, 4) // [1, 1, 4, 4])
            m[y : y + h + 8, x : x + w + 8] = int(rng.integers(1, 4))
        masks.append(m)
    polygons = [np.array([[k % 5, 4 * k, 4 * k + 4] for k in range(10)], np.int32)] * BATCH
    return {
        "angle": [np.float32(a) for a in rng.uniform(-180, 180, BATCH)],
        "matrix": [rng.uniform(-1, 1, (2, 3)).astype(np.float32) for _ in range(BATCH)],
        "points": [rng.uniform(0, 1, (100, 2)).astype(np.float32) for _ in range(BATCH)],
        "boxes": [ltrb(20) for _ in range(BATCH)],
        "labels": [np.arange(1, 21, dtype=np.int32) for _ in range(BATCH)],
        "image": [rng.integers(0, 256, (300, 300, 3), dtype=np.uint8) for _ in range(BATCH)],
        "shape": [np.array([375, 500, 3], np.int64)] * BATCH,
        "mask": masks,
        "mask_ids": [np.array([0, 2, 4], np.int32)] * BATCH,
        "polygons": polygons,
        "vertices": [rng.uniform(0, 1, (40, 2)).astype(np.float32) for _ in range(BATCH)],
    }


def _ssd_anchors() -> list[float]:
    """SSD300's 8,732 default boxes (ltrb, relative)."""
    out = []
    for size, (low, high), ratios in zip(
        [38, 19, 10, 5, 3, 1],
        [(21, 45), (45, 99), (99, 153), (153, 207), (207, 261), (261, 315)],
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
    ):
        for i in range(size):
            for j in range(size):
                cx, cy = (j + 0.5) / size, (i + 0.5) / size
                shapes = [(low / 300, low / 300), (np.sqrt(low * high) / 300,) * 2]
                shapes += [(low / 300 * np.sqrt(r), low / 300 / np.sqrt(r)) for r in ratios]
                shapes += [(low / 300 / np.sqrt(r), low / 300 * np.sqrt(r)) for r in ratios]
                for w, h in shapes:
                    out += [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    return [float(np.clip(v, 0, 1)) for v in out]


ANCHORS = _ssd_anchors()

# name -> (input description, build(fn, types, src) -> outputs); src(key, layout=None) gives the fixed batch.
CASES: dict[str, tuple[str, Callable[..., Any]]] = {
    "transforms.rotation": (
        "per-sample angle",
        lambda fn, t, src: fn.transforms.rotation(angle=src("angle"), center=[0.5, 0.5]),
    ),
    "transforms.translation": (
        "2x3 input",
        lambda fn, t, src: fn.transforms.translation(src("matrix"), offset=[1.0, 2.0]),
    ),
    "transforms.scale": (
        "2x3 input",
        lambda fn, t, src: fn.transforms.scale(src("matrix"), scale=[2.0, 3.0], center=[0.5, 0.5]),
    ),
    "transforms.shear": ("2x3 input", lambda fn, t, src: fn.transforms.shear(src("matrix"), angles=[10.0, 20.0])),
    "transforms.crop": ("2x3 input", lambda fn, t, src: fn.transforms.crop(src("matrix"), from_end=[300.0, 200.0])),
    "transforms.combine": (
        "2 x 2x3",
        lambda fn, t, src: fn.transforms.combine(src("matrix"), fn.transforms.rotation(angle=src("angle"))),
    ),
    "coord_transform": (
        "100 points",
        lambda fn, t, src: fn.coord_transform(src("points"), M=[0.5, 0.1, -0.2, 1.5], T=[1.0, 2.0]),
    ),
    "coord_flip": ("100 points", lambda fn, t, src: fn.coord_flip(src("points"), flip_y=1)),
    "bb_flip": ("20 boxes", lambda fn, t, src: fn.bb_flip(src("boxes"), ltrb=True)),
    "bbox_paste": ("20 boxes", lambda fn, t, src: fn.bbox_paste(src("boxes"), ratio=2.0, ltrb=True)),
    "box_encoder": (
        "20 boxes, 8732 anchors",
        lambda fn, t, src: tuple(
            fn.box_encoder(
                src("boxes"), src("labels"), anchors=ANCHORS, offset=True, scale=300.0, stds=[0.1, 0.1, 0.2, 0.2]
            )
        ),
    ),
    "random_bbox_crop": (
        "20 boxes, SSD options",
        lambda fn, t, src: tuple(
            fn.random_bbox_crop(
                src("boxes"),
                src("labels"),
                bbox_layout="xyXY",
                thresholds=[0.0, 0.1, 0.3, 0.5, 0.7, 0.9],
                scaling=[0.3, 1.0],
                aspect_ratio=[0.5, 2.0],
                allow_no_crop=True,
                num_attempts=1,
            )
        ),
    ),
    "ssd_random_crop": (
        "300x300 image, 20 boxes",
        lambda fn, t, src: tuple(fn.ssd_random_crop(src("image", "HWC"), src("boxes"), src("labels"))),
    ),
    "random_crop_generator": ("shape (3,)", lambda fn, t, src: tuple(fn.random_crop_generator(src("shape")))),
    "roi_random_crop": (
        "no input",
        lambda fn, t, src: fn.roi_random_crop(
            crop_shape=[64, 64], roi_start=[10, 20], roi_shape=[100, 50], in_shape=[375, 500]
        ),
    ),
    "batch_permutation": ("no input", lambda fn, t, src: fn.batch_permutation()),
    "segmentation.random_mask_pixel": (
        "256x256 mask",
        lambda fn, t, src: fn.segmentation.random_mask_pixel(src("mask"), foreground=1),
    ),
    "segmentation.random_object_bbox": (
        "256x256 mask",
        lambda fn, t, src: tuple(fn.segmentation.random_object_bbox(src("mask"), format="box", output_class=True)),
    ),
    "segmentation.select_masks": (
        "10 polygons",
        lambda fn, t, src: tuple(fn.segmentation.select_masks(src("mask_ids"), src("polygons"), src("vertices"))),
    ),
}


def _pipeline(lib, build: Callable[..., Any], data: dict, threads: int, batch: int):
    extra = {"device_id": None} if lib is not pipestate else {}

    @lib.pipeline_def(batch_size=batch, num_threads=threads, seed=1, prefetch_queue_depth=2, **extra)
    def pipe():
        def src(key, layout=None):
            samples = data[key]
            return lib.fn.external_source(source=lambda: samples, layout=layout)

        out = build(lib.fn, lib.types, src)
        return out

    p = pipe()
    if lib is not pipestate:
        p.build()
    return p


def measure(p, batch: int, iters: int) -> Callable[[], float]:
    """A function timing ``iters`` batches of pipeline ``p`` (samples/s), after warm-up."""
    for _ in range(3):
        p.run()

    def once() -> float:
        start = time.perf_counter()
        for _ in range(iters):
            p.run()
        return iters * batch / (time.perf_counter() - start)

    return once


def coco_pipelines(lib, root: str, threads: int):
    from tests.operators.readers.coco_data import write_coco

    args = write_coco(root, n_images=256, seed=5, sizes=(300, 500)) if lib is pipestate else coco_pipelines.args
    coco_pipelines.args = args
    extra = {"device_id": None} if lib is not pipestate else {}

    @lib.pipeline_def(batch_size=BATCH, num_threads=threads, seed=1, **extra)
    def pipe():
        return tuple(
            lib.fn.readers.coco(
                **args, ltrb=True, ratio=True, polygon_masks=True, image_ids=True, random_shuffle=True, initial_fill=64
            )
        )

    p = pipe()
    if lib is not pipestate:
        p.build()
    return p


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--only", nargs="*", default=None, help="operator names to run (default: all and readers.coco)")
    args = parser.parse_args(argv)
    import nvidia.dali as dali

    warnings.simplefilter("ignore")
    data = _inputs()
    rows, results = [], {}
    for name, (what, build) in CASES.items():
        if args.only and name not in args.only:
            continue
        runs = interleave(
            {
                "pipestate": measure(_pipeline(pipestate, build, data, args.threads, BATCH), BATCH, args.iters),
                "DALI": measure(_pipeline(dali, build, data, args.threads, BATCH), BATCH, args.iters),
            },
            args.rounds,
        )
        results[name] = runs
        ratio = summary(runs["pipestate"])[0] / summary(runs["DALI"])[0]
        rows.append([f"`{name}`", what, fmt(runs["pipestate"], 0), fmt(runs["DALI"], 0), f"{ratio:.2f}"])
    if not args.only or "readers.coco" in args.only:
        with tempfile.TemporaryDirectory() as root:
            runs = interleave(
                {
                    "pipestate": measure(coco_pipelines(pipestate, root, args.threads), BATCH, args.iters),
                    "DALI": measure(coco_pipelines(dali, root, args.threads), BATCH, args.iters),
                },
                args.rounds,
            )
        results["readers.coco"] = runs
        ratio = summary(runs["pipestate"])[0] / summary(runs["DALI"])[0]
        rows.append(
            ["`readers.coco`", "256 JPEGs, polygons", fmt(runs["pipestate"], 0), fmt(runs["DALI"], 0), f"{ratio:.2f}"]
        )
    table = f"Detection operators, samples/s, batch {BATCH}, {args.threads} threads ({machine()})\n\n" + markdown_table(
        ["operator", "input (per sample)", "pipestate", "DALI CPU", "ratio"], rows
    )
    print(table)

    def plot(path: pathlib.Path) -> None:
        import matplotlib.pyplot as plt

        names = list(results)
        x = np.arange(len(names))
        fig, ax = plt.subplots(figsize=(12, 4.5))
        for k, lib in enumerate(["pipestate", "DALI"]):
            ax.bar(x + (k - 0.5) * 0.4, [summary(results[n][lib])[0] for n in names], 0.4, label=lib)
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("samples/s (median)")
        ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)

    save("detection_ops", table, plot)


if __name__ == "__main__":
    if not dali_available():
        sys.exit("DALI is not installed: pip install nvidia-dali-cuda120")
    main()
