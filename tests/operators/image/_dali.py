"""Run one DALI CPU operator over numpy inputs (the oracle of the kernel tests); images made in the tests."""

from __future__ import annotations

import io

import numpy as np
import pytest


def dali():
    """``(fn, types, pipeline_def)`` from DALI, or skip the test with a reason."""
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is the reference oracle; pip install '.[dali]'")
    from nvidia.dali import fn, pipeline_def, types

    return fn, types, pipeline_def


def run_dali(samples: list, build, layout: str | None = "HWC") -> list[np.ndarray]:
    """Feed ``samples`` (one batch) to ``build(fn, types, node)`` on DALI's CPU and return its outputs."""
    fn, types, pipeline_def = dali()

    @pipeline_def(batch_size=len(samples), num_threads=1, device_id=None)
    def pipe():
        node = fn.external_source(source=lambda: list(samples), batch=True, layout=layout)
        return build(fn, types, node)

    p = pipe()
    p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(len(samples))]


def test_image(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """Smooth gradients plus noise (like the benchmark's reference images), deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c = rng.uniform(0.2, 1.0, (3, 3))
    planes = [
        (c[k, 0] * x / width + c[k, 1] * y / height + c[k, 2] * np.sin((x + y * c[k, 0]) / 11.0 + k))
        * 255
        / (c[k].sum() + 1e-6)
        for k in range(3)
    ]
    img = np.stack(planes, -1) + rng.integers(-20, 21, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


test_image.__test__ = False  # a helper, not a test


def encode(image: np.ndarray, ext: str, **params) -> bytes:
    """Encode with OpenCV (the chosen library): ``ext`` like ``".jpg"``; ``image`` is RGB(A) or grey."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV is the image library; pip install '.[image]'")
    flags = []
    for key, value in params.items():
        flags += [getattr(cv2, key), value]
    if image.ndim == 3 and image.shape[2] >= 3:
        image = image[:, :, [2, 1, 0, 3][: image.shape[2]]]
    ok, buf = cv2.imencode(ext, image, flags)
    assert ok
    return buf.tobytes()


def pil_encode(image: np.ndarray, fmt: str, **params) -> bytes:
    """Encode with Pillow when a test needs a container OpenCV does not write the same way (EXIF)."""
    pil = pytest.importorskip("PIL.Image")
    out = io.BytesIO()
    pil.fromarray(image).save(out, format=fmt, **params)
    return out.getvalue()


def run_both(samples: list, build, layout: str | None = "HWC", extra: tuple = (), batch_size: int | None = None,
             threads: int = 2) -> tuple[list, list]:
    """Run ``build(fn, types, node, *extra_nodes)`` in pipestate and in DALI (CPU) on the same batch.

    ``extra`` are further inputs, each a list with one array per sample. Returns ``(ours, dalis)``: for each
    output, the list of per-sample arrays. ``build`` receives the library's own ``fn`` and ``types``, so the
    same call (DALI's API) runs on both.
    """
    import pipestate
    from pipestate import fn as p_fn
    from pipestate import types as p_types

    d_fn, d_types, d_pipeline_def = dali()
    n = batch_size or len(samples)

    def pipe_of(fn, types, pipeline_def, **options):
        @pipeline_def(batch_size=n, num_threads=threads, seed=5, **options)
        def pipe():
            node = fn.external_source(source=lambda: list(samples), batch=True, layout=layout)
            others = [fn.external_source(source=(lambda v: (lambda: list(v)))(e), batch=True) for e in extra]
            out = build(fn, types, node, *others)
            return tuple(out) if isinstance(out, (list, tuple)) else out

        return pipe()

    ours_pipe = pipe_of(p_fn, p_types, pipestate.pipeline_def)
    ours = [[np.array(s) for s in out] for out in ours_pipe.run()]
    ours_pipe.close()
    theirs_pipe = pipe_of(d_fn, d_types, d_pipeline_def, device_id=None)
    theirs_pipe.build()
    theirs = [[np.array(out[i]) for i in range(n)] for out in theirs_pipe.run()]
    return ours, theirs


def assert_close(ours: list, theirs: list, atol: float = 0, fraction: float = 1.0, where: str = "") -> None:
    """Every output and sample has DALI's shape and type and differs by at most ``atol``, on at most
    ``fraction`` of its values."""
    assert len(ours) == len(theirs), f"{where}: {len(ours)} outputs, DALI {len(theirs)}"
    for k, (mine, dalis) in enumerate(zip(ours, theirs)):
        for i, (a, d) in enumerate(zip(mine, dalis)):
            at = f"{where} output {k} sample {i}"
            assert a.shape == d.shape and a.dtype == d.dtype, f"{at}: {a.dtype}{a.shape} vs DALI {d.dtype}{d.shape}"
            if a.size == 0:
                continue
            diff = np.abs(a.astype(np.float64) - d.astype(np.float64))
            assert diff.max() <= atol, f"{at}: max difference {diff.max()} > {atol}"
            assert (diff > 0).mean() <= fraction, f"{at}: {(diff > 0).mean():.4f} of values differ (> {fraction})"
