"""Golden checkpoints: every checkpoint a past release wrote must keep restoring, bit for bit.

Each ``tests/golden/vN/NAME.cpt`` was written by the release that introduced format version N (see
make_golden.py), with the batches that followed it; these are never regenerated.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from tests.golden import make_golden, pipelines

HERE = os.path.dirname(__file__)
VERSIONS = sorted(d for d in os.listdir(HERE) if d.startswith("v") and os.path.isdir(os.path.join(HERE, d)))
CASES = [
    (v, name)
    for v in VERSIONS
    for name in make_golden.PIPELINES
    if os.path.exists(os.path.join(HERE, v, f"{name}.cpt"))
]


def expected_batches(root: str, name: str) -> list[list[list[np.ndarray]]]:
    """The saved batches: steps -> outputs -> samples."""
    steps = []
    for j in range(make_golden.AFTER):
        outputs = []
        k = 0
        while True:
            dense = os.path.join(root, name, f"step{j}_out{k}.npy")
            per_sample = sorted(
                glob.glob(os.path.join(root, name, f"step{j}_out{k}_*.npy")),
                key=lambda p: int(p.rsplit("_", 1)[1][:-4]),
            )
            if os.path.exists(dense):
                outputs.append(list(np.load(dense)))
            elif per_sample:
                outputs.append([np.load(p) for p in per_sample])
            else:
                break
            k += 1
        steps.append(outputs)
    return steps


def test_goldens_exist():
    assert {"v1", "v2"} <= set(VERSIONS)
    for version in ("v1", "v2"):
        assert len([c for c in CASES if c[0] == version]) == len(make_golden.PIPELINES)


@pytest.mark.parametrize(("version", "name"), CASES)
def test_golden_restores_bit_identically(version, name, monkeypatch):
    root = os.path.join(HERE, version)
    monkeypatch.chdir(root)  # reader pipelines use paths relative to the golden directory
    with open(f"{name}.cpt", "rb") as f:
        blob = f.read()
    pipe = getattr(pipelines, name)(checkpoint=blob)
    assert pipe.is_restored_from_checkpoint
    for j, expected in enumerate(expected_batches(root, name)):
        got = pipe.run()
        assert len(got) == len(expected), f"step {j}: {len(got)} outputs, expected {len(expected)}"
        for k, (out, exp) in enumerate(zip(got, expected)):
            assert len(out) == len(exp), f"step {j}, output {k}"
            for i, (a, b) in enumerate(zip(out, exp)):
                assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (
                    f"{version}/{name}: step {j}, output {k}, sample {i}: got {a!r}, expected {b!r}"
                )
    pipe.close()


def test_golden_comparison_can_fail(monkeypatch):
    """Control: a pipeline started from scratch does not produce the golden continuation."""
    root = os.path.join(HERE, "v1")
    monkeypatch.chdir(root)
    pipe = pipelines.random_ops()
    got = pipe.run()
    expected = expected_batches(root, "random_ops")[0]
    assert any(a.tobytes() != b.tobytes() for out, exp in zip(got, expected) for a, b in zip(out, exp))
    pipe.close()
