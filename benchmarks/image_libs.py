"""Which image libraries should pipestate's image kernels use? Speed and agreement with DALI's CPU operators.

On the reference images (512 JPEGs 500x375, generated here into a cache directory), measures images/s at 1 and 2
threads (a thread pool; a library that holds the GIL does not scale) for JPEG decoding (Pillow, OpenCV,
simplejpeg, PyTurboJPEG when its system library exists, DALI), resizing to 224x224 (pipestate's kernel, Pillow,
OpenCV, DALI), rotation (pipestate, OpenCV, DALI) and RGB->YCbCr, plus each candidate's agreement with DALI's
CPU output (max abs difference, % of values differing). Prints markdown tables, writes
``benchmarks/out/image_libs.{md,png}``. Run: ``PYTHONPATH=. python benchmarks/image_libs.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import fmt, machine, markdown_table, save  # noqa: E402

N_IMAGES, H, W, QUALITY, OUT = 512, 375, 500, 90, 224


def reference_images(cache: pathlib.Path) -> list[bytes]:
    """Create (once) the 512 reference JPEGs: smooth gradients plus +-20 noise, quality 90."""
    import cv2

    root = cache / "images"
    root.mkdir(parents=True, exist_ok=True)
    out = []
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    for i in range(N_IMAGES):
        path = root / f"{i:04d}.jpg"
        if not path.exists():
            rng = np.random.default_rng(i)
            c = rng.uniform(0.2, 1.0, (3, 3))
            planes = [(c[k, 0] * x / W + c[k, 1] * y / H + c[k, 2] * np.sin((x + y * c[k, 0]) / 37.0 + k)) * 255
                      / (c[k].sum() + 1e-6) for k in range(3)]
            img = np.clip(np.stack(planes, -1) + rng.integers(-20, 21, (H, W, 3)), 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(buf.tobytes())
            tmp.replace(path)
        out.append(path.read_bytes())
    return out


def decoders() -> dict:
    import cv2
    from PIL import Image

    cands = {
        "Pillow": lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
        "OpenCV": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR_RGB),
    }
    try:
        import simplejpeg

        cands["simplejpeg"] = lambda b: simplejpeg.decode_jpeg(b, "RGB")
    except ImportError:
        print("(simplejpeg is not installed)")
    try:
        import turbojpeg

        tj = turbojpeg.TurboJPEG()
        cands["PyTurboJPEG"] = lambda b: tj.decode(b, pixel_format=turbojpeg.TJPF_RGB)
    except (ImportError, RuntimeError, OSError) as exc:
        print(f"(PyTurboJPEG unavailable: {str(exc).splitlines()[0]})")
    return cands


def resizers() -> dict:
    import cv2
    from PIL import Image

    from pipestate.operators.image._kernels.resample import resample
    from pipestate.operators.image._kernels.resize_params import resize_params

    def ours(kind):
        return lambda img: resample(img, resize_params(img.shape[:2], size=[OUT, OUT]), min_filter=kind,
                                    mag_filter=kind)

    def pil(flt):
        return lambda img: np.asarray(Image.fromarray(img).resize((OUT, OUT), flt))

    def cv(flag):
        return lambda img: cv2.resize(img, (OUT, OUT), interpolation=flag)

    return {
        "linear": {"pipestate": ours("linear"), "Pillow BILINEAR": pil(Image.BILINEAR),
                   "OpenCV INTER_AREA": cv(cv2.INTER_AREA), "OpenCV INTER_LINEAR": cv(cv2.INTER_LINEAR)},
        "cubic": {"pipestate": ours("cubic"), "Pillow BICUBIC": pil(Image.BICUBIC),
                  "OpenCV INTER_CUBIC": cv(cv2.INTER_CUBIC)},
        "lanczos3": {"pipestate": ours("lanczos3"), "Pillow LANCZOS": pil(Image.LANCZOS),
                     "OpenCV INTER_LANCZOS4": cv(cv2.INTER_LANCZOS4)},
        "nn": {"pipestate": ours("nn"), "Pillow NEAREST": pil(Image.NEAREST),
               "OpenCV INTER_NEAREST_EXACT": cv(cv2.INTER_NEAREST_EXACT)},
    }


def rotators() -> dict:
    import cv2

    from pipestate.operators.image._kernels.warp import rotate, rotated_size, rotation_matrix

    def cv_rotate(img):
        size = rotated_size(img.shape[:2], 30.0)
        m = rotation_matrix(img.shape[:2], size, 30.0).astype(np.float64)
        m[:, 2] += m[:, 0] * 0.5 + m[:, 1] * 0.5 - 0.5  # DALI's pixel-centre convention in OpenCV's frame
        return cv2.warpAffine(img, m, (size[1], size[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    return {"pipestate": lambda img: rotate(img, 30.0), "OpenCV warpAffine": cv_rotate}


def converters() -> dict:
    import cv2

    from pipestate.operators.image._kernels.color import convert_color_space

    return {"pipestate": lambda img: convert_color_space(img, "RGB", "YCbCr"),
            "OpenCV cvtColor": lambda img: cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[:, :, [0, 2, 1]]}


def dali_runner(kind: str, samples: list, threads: int, batch: int = 32):
    """A callable running DALI's CPU operator over ``samples`` (in batches); returns outputs."""
    from nvidia.dali import fn, pipeline_def, types

    def build(x):
        if kind == "decode":
            return fn.decoders.image(x, device="cpu")
        if kind.startswith("resize:"):
            interp = {"linear": types.INTERP_LINEAR, "cubic": types.INTERP_CUBIC, "lanczos3": types.INTERP_LANCZOS3,
                      "nn": types.INTERP_NN}[kind.split(":")[1]]
            return fn.resize(x, size=[OUT, OUT], interp_type=interp)
        if kind == "rotate":
            return fn.rotate(x, angle=30.0)
        return fn.color_space_conversion(x, image_type=types.RGB, output_type=types.YCbCr)

    state = {"i": 0}

    def source():
        i = state["i"]
        state["i"] = (i + batch) % len(samples)
        return [samples[(i + k) % len(samples)] for k in range(batch)]

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=1)
    def pipe():
        x = fn.external_source(source=source, batch=True, layout=None if kind == "decode" else "HWC")
        return build(x)

    p = pipe()
    p.build()

    def run(n):
        outs = []
        for _ in range(n // batch):
            (o,) = p.run()
            outs += [np.array(o[k]) for k in range(batch)]
        return outs

    return run


def rate_pool(func, samples, threads, n) -> float:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(func, samples[:16]))
        start = time.perf_counter()
        list(pool.map(func, [samples[i % len(samples)] for i in range(n)]))
        return n / (time.perf_counter() - start)


def rate_dali(run, n) -> float:
    run(32)
    start = time.perf_counter()
    run(n)
    return n / (time.perf_counter() - start)


def agreement(got: np.ndarray, expected: np.ndarray) -> str:
    if got.shape != expected.shape:
        return f"shape {got.shape} vs {expected.shape}"
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    return f"{int(diff.max())} / {100 * (diff > 0).mean():.3f} %"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=256, help="images per timing")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pipestate-bench"))
    args = parser.parse_args(argv)
    from _common import dali_available

    if not dali_available():
        sys.exit("this benchmark compares with NVIDIA DALI: pip install '.[dali]'")
    jpegs = reference_images(pathlib.Path(args.cache))
    dali_decoded = dali_runner("decode", [np.frombuffer(b, np.uint8) for b in jpegs], 1)(64)
    pixels = dali_decoded[:64]
    groups = [("JPEG decode", "decode", decoders(), [bytes(b) for b in jpegs], [np.frombuffer(b, np.uint8)
                                                                                  for b in jpegs])]
    for interp, cands in resizers().items():
        groups.append((f"resize 224x224 {interp}", f"resize:{interp}", cands, pixels, pixels))
    groups.append(("rotate 30 deg linear", "rotate", rotators(), pixels, pixels))
    groups.append(("RGB->YCbCr", "color", converters(), pixels, pixels))

    rows, plot_data = [], []
    for title, kind, cands, samples, dali_samples in groups:
        reference = dali_runner(kind, dali_samples, 1)(64)
        results: dict[str, dict[int, list[float]]] = {name: {1: [], 2: []} for name in [*cands, "DALI"]}
        runners = {t: dali_runner(kind, dali_samples, t) for t in (1, 2)}
        for _ in range(args.repeats):  # interleaved A B A B
            for threads in (1, 2):
                for name, func in cands.items():
                    results[name][threads].append(rate_pool(func, samples, threads, args.n))
                results["DALI"][threads].append(rate_dali(runners[threads], args.n))
        for name in results:
            one, two = results[name][1], results[name][2]
            scaling = np.median(two) / np.median(one)
            if name == "DALI":
                agree = "(reference)"
            else:
                outs = [cands[name](s) for s in samples[:16]]
                agree = agreement(np.stack(outs), np.stack(reference[:16]))
            dali_one = np.median(results["DALI"][1])
            rows.append([title, name, fmt(one, 0), fmt(two, 0), f"{scaling:.2f}x",
                         f"{np.median(one) / dali_one:.2f}", agree])
            plot_data.append((f"{title}\n{name}", np.median(one), np.median(two)))
        print(f"done: {title}", flush=True)

    header = ["operation", "library", "img/s 1 thread", "img/s 2 threads", "2/1 scaling", "vs DALI (1 thr)",
              "vs DALI: max diff / % differing"]
    table = (f"image libraries on the reference JPEGs ({N_IMAGES} x {W}x{H}, q{QUALITY}); {machine()}; "
             f"median (min-max) of {args.repeats} interleaved repeats, {args.n} images each\n\n"
             + markdown_table(header, rows))
    print(table)

    def plot(path):
        import matplotlib.pyplot as plt

        labels = [p[0] for p in plot_data]
        ys = np.arange(len(labels))
        fig, ax = plt.subplots(figsize=(10, 0.42 * len(labels) + 1))
        ax.barh(ys - 0.2, [p[1] for p in plot_data], 0.4, label="1 thread")
        ax.barh(ys + 0.2, [p[2] for p in plot_data], 0.4, label="2 threads")
        ax.set_yticks(ys, labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("images/s")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)

    save("image_libs", table, plot)


if __name__ == "__main__":
    main()
