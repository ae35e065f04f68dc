"""Run the same pipeline body on pipestate and on DALI's CPU (the colour/filter tests' oracle)."""

from __future__ import annotations

import numpy as np

from pipestate import fn, pipeline_def, types
from tests.operators.image._dali import dali


def run(lib_fn, lib_types, make, options, samples, layout, build):
    """``build(fn, types, x)`` on one library, ``x`` an external source of ``samples`` (one batch)."""

    @make(batch_size=len(samples), num_threads=1, **options)
    def pipe():
        x = lib_fn.external_source(source=lambda: list(samples), layout=layout or None)
        return build(lib_fn, lib_types, x)

    p = pipe()
    if hasattr(p, "build"):
        p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(len(samples))]


def both(samples, layout, build):
    """(pipestate's, DALI's) outputs of ``build(fn, types, x)``."""
    dali()
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def
    from nvidia.dali import types as dtypes

    ours = run(fn, types, pipeline_def, {}, samples, layout, build)
    return ours, run(dfn, dtypes, dali_pipeline_def, {"device_id": None}, samples, layout, build)


def assert_identical(ours, theirs):
    for a, d in zip(ours, theirs):
        assert a.dtype == d.dtype and a.shape == d.shape, (a.dtype, a.shape, d.dtype, d.shape)
        assert a.tobytes() == d.tobytes(), np.abs(a.astype(float) - d.astype(float)).max()
