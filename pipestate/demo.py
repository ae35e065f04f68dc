"""``pipestate demo``: build a pipeline on a generated dataset, run, checkpoint, restore, verify."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import numpy as np

from pipestate import fn, pipeline_def, types
from pipestate.checkpoint import decode
from pipestate.testing import assert_events_equal, record

NUM_FILES = 256
BATCH_SIZE = 16


@dataclasses.dataclass
class DemoReport:
    """The demo's outcome: ``ok`` when the restored continuation was bit-identical."""

    ok: bool
    text: str


def make_dataset(root: str) -> list[str]:
    """Write ``NUM_FILES`` small "images" (8x8x3 uint8, deterministic) and return their paths."""
    os.makedirs(root, exist_ok=True)
    paths = []
    for i in range(NUM_FILES):
        path = os.path.join(root, f"sample_{i:04d}.npy")
        if not os.path.exists(path):
            np.save(path, np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def make_pipeline(root: str, **options):
    """The demo pipeline: a shuffling reader, then random brightness, flips and noise."""

    @pipeline_def(batch_size=BATCH_SIZE, num_threads=2, seed=1234, enable_checkpointing=True)
    def demo_pipeline():
        image = fn.readers.numpy(file_root=root, random_shuffle=True, initial_fill=64, name="reader")
        brightness = fn.random.uniform(range=[0.7, 1.3], name="brightness")
        mirror = fn.random.coin_flip(probability=0.5, name="mirror")
        noise = fn.random.normal(image, stddev=4.0, name="noise")
        image = fn.python_function(image, mirror, function=_mirror, name="flip")
        out = fn.cast(fn.cast(image, dtype=types.FLOAT) * brightness + noise, dtype=types.UINT8)
        label = fn.random.choice(10, name="label")
        return out, label

    return demo_pipeline(**options)


def _mirror(image: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    return image[:, ::-1] if mirror else image


def run_demo(directory: str | None = None, iterations: int = 20, continuation: int = 10) -> DemoReport:
    """Run ``iterations`` batches (crossing reader epochs), checkpoint, restore into a new pipeline and
    compare ``continuation`` more batches with the uninterrupted run."""
    with tempfile.TemporaryDirectory() as tmp:
        root = directory or os.path.join(tmp, "data")
        paths = make_dataset(root)
        first = make_pipeline(root)
        record(first, iterations)
        checkpoint_path = os.path.join(tmp, "demo.pscpt")
        blob = first.checkpoint(checkpoint_path)
        expected, _ = record(first, continuation)
        first.close()

        start = time.perf_counter()
        with open(checkpoint_path, "rb") as f:
            restored = make_pipeline(root, checkpoint=f.read())
        got, _ = record(restored, continuation)
        restore_ms = (time.perf_counter() - start) * 1e3
        restored.close()
    try:
        assert_events_equal(expected, got, "demo")
        ok, verdict = True, "IDENTICAL: the restored pipeline continued bit for bit"
    except AssertionError as exc:
        ok, verdict = False, f"MISMATCH: {exc}"
    data = decode(blob)
    text = "\n".join(
        [
            "pipestate demo",
            f"  dataset:      {len(paths)} generated 8x8x3 .npy samples, shuffled (buffer 64), batch {BATCH_SIZE}, "
            "2 threads, prefetch 2",
            f"  pipeline:     {', '.join(op.name for op in data.operators)}",
            f"  ran:          {iterations} batches, then checkpoint() -> {len(blob)} bytes "
            f"(fingerprint {data.fingerprint.hex()[:12]}...)",
            f"  restored:     a new pipeline with checkpoint=..., ran {continuation} batches "
            f"({restore_ms:.1f} ms including the first batches)",
            f"  compared:     {continuation} batches x 2 outputs with the uninterrupted run",
            f"  result:       {verdict}",
        ]
    )
    return DemoReport(ok, text)
