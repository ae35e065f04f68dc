"""Colour, filter and noise operators vs DALI CPU: samples/s per operator on the reference images.

The reference images (BENCHMARKS.md: 500x375 JPEGs, generated into a cache directory by ``image_libs.py``) are
decoded once, outside the timing, with OpenCV; every operator runs in a pipeline fed by an external source of
the same decoded batch (or what the operator takes: YCbCr images, Bayer mosaics, float images), pipestate and
DALI at the same ``num_threads``, interleaved (A B A B), median and min-max over ``rounds``. The last row runs
RandAugment (n=2, m=9) with the colour augmentations of its suite, in both libraries.

    PYTHONPATH=. python benchmarks/image_ops_color.py --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import dali_available, fmt, interleave, machine, markdown_table, save  # noqa: E402
from image_libs import reference_images  # noqa: E402

import pipestate  # noqa: E402

COLOUR_AUGS = ("brightness", "color", "sharpness", "posterize", "solarize", "equalize", "identity")


def decoded(batch: int, cache: pathlib.Path) -> list[np.ndarray]:
    import cv2

    jpegs = reference_images(cache)[:batch]
    return [np.ascontiguousarray(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]) for j in jpegs]


def _rand_augment(lib, x):
    import importlib

    ra = importlib.import_module(f"{lib.__name__}.auto_aug.rand_augment")
    suite = [aug for aug in ra.get_rand_augment_suite() if aug.name in COLOUR_AUGS]
    return ra.apply_rand_augment(suite, x, n=2, m=9)


def cases(images: list[np.ndarray]) -> list[tuple[str, str, list[np.ndarray], str, object]]:
    """(name, input description, batch, layout, build(lib, node))."""
    from pipestate.operators.image._kernels import color

    rgb = "500x375 RGB uint8"
    ycbcr = [color.convert_color_space(i, "RGB", "YCbCr") for i in images]
    bayer = [np.ascontiguousarray(i[:374, :, 1]) for i in images]
    floats = [(i / 255.0).astype(np.float32) for i in images]
    sharpen = np.array([[-1, -1, -1], [-1, 21, -1], [-1, -1, -1]], np.float32) / 13
    t = lambda lib: lib.types  # noqa: E731
    return [
        (
            "brightness_contrast",
            rgb,
            images,
            "HWC",
            lambda lib, x: lib.fn.brightness_contrast(x, brightness=1.2, contrast=0.8),
        ),
        (
            "brightness_contrast →float",
            rgb,
            images,
            "HWC",
            lambda lib, x: lib.fn.brightness_contrast(x, contrast=0.8, dtype=t(lib).FLOAT),
        ),
        ("hsv", rgb, images, "HWC", lambda lib, x: lib.fn.hsv(x, hue=30.0, saturation=1.2, value=0.9)),
        ("hue", rgb, images, "HWC", lambda lib, x: lib.fn.hue(x, hue=45.0)),
        ("saturation", rgb, images, "HWC", lambda lib, x: lib.fn.saturation(x, saturation=0.5)),
        (
            "color_twist",
            rgb,
            images,
            "HWC",
            lambda lib, x: lib.fn.color_twist(x, hue=30.0, saturation=1.2, contrast=0.9, brightness=1.1),
        ),
        (
            "color_twist float",
            "500x375 RGB float32",
            floats,
            "HWC",
            lambda lib, x: lib.fn.color_twist(x, hue=30.0, contrast=0.9),
        ),
        (
            "color_space_conversion RGB→YCbCr",
            rgb,
            images,
            "HWC",
            lambda lib, x: lib.fn.color_space_conversion(x, image_type=t(lib).RGB, output_type=t(lib).YCbCr),
        ),
        (
            "color_space_conversion YCbCr→RGB",
            "500x375 YCbCr uint8",
            ycbcr,
            "HWC",
            lambda lib, x: lib.fn.color_space_conversion(x, image_type=t(lib).YCbCr, output_type=t(lib).RGB),
        ),
        (
            "color_space_conversion RGB→GRAY",
            rgb,
            images,
            "HWC",
            lambda lib, x: lib.fn.color_space_conversion(x, image_type=t(lib).RGB, output_type=t(lib).GRAY),
        ),
        ("normalize (per-sample stats)", rgb, images, "HWC", lambda lib, x: lib.fn.normalize(x)),
        ("normalize (given)", rgb, images, "HWC", lambda lib, x: lib.fn.normalize(x, mean=120.0, stddev=50.0)),
        ("equalize", rgb, images, "HWC", lambda lib, x: lib.fn.equalize(x)),
        ("debayer", "500x374 Bayer uint8", bayer, "HW", lambda lib, x: lib.fn.debayer(x, blue_position=[0, 0])),
        ("filter 3x3", rgb, images, "HWC", lambda lib, x: lib.fn.filter(x, sharpen)),
        ("gaussian_blur sigma 2", rgb, images, "HWC", lambda lib, x: lib.fn.gaussian_blur(x, sigma=2.0)),
        ("gaussian_blur window 3", rgb, images, "HWC", lambda lib, x: lib.fn.gaussian_blur(x, window_size=3)),
        ("laplacian window 3", rgb, images, "HWC", lambda lib, x: lib.fn.laplacian(x, window_size=3)),
        ("grid_mask", rgb, images, "HWC", lambda lib, x: lib.fn.grid_mask(x, tile=40, ratio=0.4, angle=0.3)),
        (
            "jpeg_compression_distortion",
            rgb,
            images,
            "HWC",
            lambda lib, x: lib.fn.jpeg_compression_distortion(x, quality=50),
        ),
        ("noise.gaussian", rgb, images, "HWC", lambda lib, x: lib.fn.noise.gaussian(x, stddev=20.0)),
        ("noise.salt_and_pepper", rgb, images, "HWC", lambda lib, x: lib.fn.noise.salt_and_pepper(x, prob=0.05)),
        ("noise.shot", rgb, images, "HWC", lambda lib, x: lib.fn.noise.shot(x, factor=10.0)),
        ("rand_augment colour n=2 m=9", rgb, images, "HWC", _rand_augment),
    ]


def runner(lib, build, data: list[np.ndarray], layout: str, threads: int):
    extra = {"device_id": None} if lib is not pipestate else {}

    @lib.pipeline_def(
        batch_size=len(data), num_threads=threads, prefetch_queue_depth=1, seed=5, enable_conditionals=True, **extra
    )
    def pipe():
        return build(lib, lib.fn.external_source(source=lambda: data, layout=layout))

    p = pipe()
    p.build()
    for _ in range(2):
        p.run()
    return p


def rate(p, batch: int, iters: int) -> float:
    """Samples/s over ``iters`` batches, after two untimed batches: both libraries compute batches ahead on
    background threads (while the other library is timed), and those would be free."""
    for _ in range(2):
        p.run()
    start = time.perf_counter()
    for _ in range(iters):
        p.run()
    return batch * iters / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    parser.add_argument("--cache", default=str(pathlib.Path(tempfile.gettempdir()) / "pipestate-bench-images"))
    args = parser.parse_args(argv)
    if not dali_available():
        raise SystemExit("DALI is not installed: pip install '.[dali]'")
    import warnings

    import nvidia.dali as dali
    import nvidia.dali.auto_aug.rand_augment  # noqa: F401 - imported by name in _rand_augment

    warnings.simplefilter("ignore", DeprecationWarning)
    images = decoded(args.batch, pathlib.Path(args.cache))
    rows, names, ratios = [], [], []
    for name, what, data, layout, build in cases(images):
        if args.only not in name:
            continue
        ours, theirs = (
            runner(pipestate, build, data, layout, args.threads),
            runner(dali, build, data, layout, args.threads),
        )
        res = interleave(
            {
                "ours": lambda p=ours: rate(p, args.batch, args.iters),
                "dali": lambda p=theirs: rate(p, args.batch, args.iters),
            },
            args.rounds,
        )
        ours.close()
        ratio = [a / b for a, b in zip(res["ours"], res["dali"])]
        rows.append([name, what, fmt(res["ours"]), fmt(res["dali"]), fmt(ratio, 2)])
        names.append(name)
        ratios.append(float(np.median(ratio)))
        print(" | ".join(rows[-1]), flush=True)
    header = ["operator", "input", "pipestate samples/s", "DALI samples/s", "ratio"]
    table = (
        f"Colour, filter and noise operators on the reference images, batch {args.batch}, {args.threads} threads, "
        f"{args.rounds} rounds of {args.iters} batches ({machine()}):\n\n" + markdown_table(header, rows)
    )
    print(table)

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1))
        ax.barh(names, ratios)
        ax.axvline(1.0, color="k", linewidth=0.8)
        ax.axvline(0.5, color="r", linewidth=0.8, linestyle="--")
        ax.set_xlabel("pipestate / DALI CPU (samples/s)")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(path)

    save("image_ops_color", table, plot)


if __name__ == "__main__":
    main()
