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
    planes = [(c[k, 0] * x / width + c[k, 1] * y / height + c[k, 2] * np.sin((x + y * c[k, 0]) / 11.0 + k))
              * 255 / (c[k].sum() + 1e-6) for k in range(3)]
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
