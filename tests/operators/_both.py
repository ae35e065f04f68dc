"""Run the same pipeline definition in pipestate and in DALI (CPU) and compare the outputs.

``build(fn, types)`` defines the graph with either library's ``fn`` and ``types``; inputs come from
``source(fn, samples)`` (an external source of a fixed batch). Used by the detection operators' DALI
differential tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest


def dali():
    """The ``nvidia.dali`` module, or skip the test when DALI is not installed."""
    return pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")


def source(fn: Any, samples: Sequence[np.ndarray], layout: str | None = None) -> Any:
    """An external source giving the same batch ``samples`` at every iteration."""
    batch = [np.array(s, order="C") for s in samples]  # (ascontiguousarray would make 0-d arrays 1-d)
    return fn.external_source(source=lambda: batch, layout=layout)


def outputs(library: str, build: Callable[[Any, Any], Any], batch_size: int, iters: int = 1, seed: int = 1) -> list:
    """``iters`` batches of ``build``'s outputs in ``library`` (``"pipestate"`` or ``"dali"``): a list (per
    iteration) of lists (per output) of (arrays, layout)."""
    if library == "dali":
        d = dali()
        from nvidia.dali import fn, types

        decorator = d.pipeline_def(batch_size=batch_size, num_threads=1, device_id=None, seed=seed)
    else:
        from pipestate import fn, pipeline_def, types

        decorator = pipeline_def(batch_size=batch_size, num_threads=1, seed=seed)

    @decorator
    def pipe():
        out = build(fn, types)
        return tuple(out) if isinstance(out, (list, tuple)) else out

    p = pipe()
    if library == "dali":
        p.build()
    result = []
    for _ in range(iters):
        outs = p.run()
        outs = outs if isinstance(outs, tuple) else (outs,)
        result.append([([np.array(o[i]) for i in range(batch_size)], o.layout()) for o in outs])
    if library != "dali":
        p.close()
    return result


def assert_same(build: Callable[[Any, Any], Any], batch_size: int = 3, iters: int = 1, atol: float = 0.0) -> list:
    """Assert pipestate's outputs equal DALI's: dtypes, shapes, layouts and values (bit for bit unless
    ``atol``); return pipestate's outputs."""
    ours = outputs("pipestate", build, batch_size, iters)
    theirs = outputs("dali", build, batch_size, iters)
    for j, (mine, ref) in enumerate(zip(ours, theirs)):
        assert len(mine) == len(ref), f"iteration {j}: {len(mine)} outputs, DALI {len(ref)}"
        for k, ((a_out, a_layout), (d_out, d_layout)) in enumerate(zip(mine, ref)):
            assert a_layout == d_layout, f"iteration {j}, output {k}: layout {a_layout!r}, DALI {d_layout!r}"
            for i, (a, d) in enumerate(zip(a_out, d_out)):
                where = f"iteration {j}, output {k}, sample {i}"
                assert a.dtype == d.dtype and a.shape == d.shape, (
                    f"{where}: {a.dtype}{a.shape}, DALI {d.dtype}{d.shape}"
                )
                if atol:
                    np.testing.assert_allclose(a, d, atol=atol, rtol=0, err_msg=where)
                else:
                    assert a.tobytes() == d.tobytes(), f"{where}:\n{a}\nDALI:\n{d}"
    return ours


def outcomes(library: str, build: Callable[[Any, Any], Any], batch_size: int = 8, iters: int = 40) -> dict[tuple, int]:
    """How often each per-sample outcome (the tuple of every output's values) occurs in ``iters`` batches."""
    counts: dict[tuple, int] = {}
    for batch in outputs(library, build, batch_size, iters):
        for i in range(batch_size):
            key = tuple(tuple(np.asarray(samples[i]).reshape(-1).tolist()) for samples, _ in batch)
            counts[key] = counts.get(key, 0) + 1
    return counts


def assert_same_distribution(
    build: Callable[[Any, Any], Any], batch_size: int = 8, iters: int = 40, min_p: float = 1e-3
) -> dict:
    """Assert pipestate and DALI produce the same outcomes with frequencies that a chi-square test of
    homogeneity cannot tell apart (p >= ``min_p``; both runs are seeded, so the test is deterministic).

    Outcomes seen at least 8 times by one library must be seen by the other; outcomes seen fewer than 10
    times in all are pooled into one bin for the chi-square test. Returns pipestate's outcome counts.
    """
    from scipy.stats import chi2_contingency

    ours, theirs = outcomes("pipestate", build, batch_size, iters), outcomes("dali", build, batch_size, iters)
    only_ours = {k for k, v in ours.items() if v >= 8 and k not in theirs}
    only_theirs = {k for k, v in theirs.items() if v >= 8 and k not in ours}
    assert not only_ours and not only_theirs, f"outcomes only in pipestate: {only_ours}; only in DALI: {only_theirs}"
    keys = sorted(set(ours) | set(theirs))
    common = [k for k in keys if ours.get(k, 0) + theirs.get(k, 0) >= 10]
    rare = [k for k in keys if k not in common]
    table = np.array(
        [[counts.get(k, 0) for k in common] + [sum(counts.get(k, 0) for k in rare)] for counts in (ours, theirs)]
    )
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        p = chi2_contingency(table).pvalue
        assert p >= min_p, (
            f"frequencies differ (chi-square p={p:.2g}): pipestate {table[0].tolist()}, DALI {table[1].tolist()}"
        )
    return ours
