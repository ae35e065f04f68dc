"""``fn.reductions.*`` against DALI bit for bit (types, ``dtype=``, axes, layouts, special values), numpy as a
property check, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pipestate
from pipestate import OperatorError, fn, pipeline_def, types
from pipestate.operators._reduce import tree_sum

KINDS = ["min", "max", "sum", "mean", "mean_square", "rms"]
TYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32"]


def _source(batch):
    return lambda: batch


def _run(lib, build, batches, layouts=None):
    layouts = layouts or [None] * len(batches)

    @lib.pipeline_def(batch_size=len(batches[0]), num_threads=2, device_id=None, seed=3)
    def pipe():
        nodes = [lib.fn.external_source(source=_source(b), layout=lo) for b, lo in zip(batches, layouts)]
        out = build(lib, *nodes)
        return tuple(out) if isinstance(out, (list, tuple)) else out

    p = pipe()
    p.build()
    return [([np.array(s) for s in o], o.layout()) for o in p.run()]


def _compare(build, batches, layouts=None):
    dali = pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")
    mine, theirs = _run(pipestate, build, batches, layouts), _run(dali, build, batches, layouts)
    assert len(mine) == len(theirs)
    for k, ((m_out, m_layout), (d_out, d_layout)) in enumerate(zip(mine, theirs)):
        assert m_layout == d_layout, f"output {k}: layout {m_layout!r} vs DALI {d_layout!r}"
        for i, (a, d) in enumerate(zip(m_out, d_out)):
            where = f"output {k}, sample {i}"
            assert a.dtype == d.dtype and a.shape == d.shape, f"{where}: {a.dtype}{a.shape} vs DALI {d.dtype}{d.shape}"
            assert a.tobytes() == d.tobytes(), f"{where}: {a!r} vs DALI {d!r}"


def _data(dtype: str, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = np.dtype(dtype)
    if d.kind == "f":
        return (rng.standard_normal(shape) * 50).astype(d)
    info = np.iinfo(d)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(d)


AXES = [None, [0], [1], [2], [0, 1], [0, 2], [1, 2], [-1], []]


@pytest.mark.dali_differential("reductions.sum")
@pytest.mark.parametrize("dtype", TYPES)
def test_every_reduction_type_and_axes_equal_dalis(dtype):
    batches = [[_data(dtype, (37, 23, 3), 1), _data(dtype, (5, 70, 2), 2), _data(dtype, (1, 1, 1), 3)]]

    def build(lib, x):
        r = lib.fn.reductions
        return [getattr(r, kind)(x, axes=axes, keep_dims=k % 2 == 1) for kind in KINDS for k, axes in enumerate(AXES)]

    _compare(build, batches, ["HWC"])


@pytest.mark.parametrize("dtype", [t for t in TYPES if t != "float32"])
def test_every_dtype_argument_dali_allows_equals_dalis(dtype):
    from pipestate.operators.reductions import _allowed

    batches = [[_data(dtype, (31, 19), 4), _data(dtype, (200,)[:1] * 1 + (3,), 5)]]
    cases = [(kind, t) for kind in ["sum", "mean", "mean_square", "rms"] for t in _allowed(kind, np.dtype(dtype))]

    def build(lib, x):
        r = lib.fn.reductions
        return [
            getattr(r, kind)(x, dtype=lib.types.to_dali_type(t.type) if lib is not pipestate else t)
            for kind, t in cases
        ]

    _compare(build, batches)


@pytest.mark.dali_differential("reductions.std_dev")
@pytest.mark.dali_differential("reductions.variance")
def test_std_dev_and_variance_with_mean_inputs_equal_dalis():
    batches = [[_data("float32", (40, 30, 3), 6), _data("float32", (9, 70, 3), 7)], [_data("uint8", (40, 30), 8)] * 2]

    def build(lib, x, u):
        r = lib.fn.reductions
        return (
            r.std_dev(x, r.mean(x)),
            r.variance(x, r.mean(x, axes=[0, 1]), axes=[0, 1]),
            r.std_dev(x, r.mean(x, axes=1, keep_dims=True), axes=1, keep_dims=True, ddof=1),
            r.variance(x, r.mean(x, axis_names="W"), axis_names="W", ddof=-2),
            r.std_dev(u, r.mean(u, axes=0), axes=0),
            r.variance(u, 3.0, axes=[]),
            r.std_dev(x, r.mean(x, axes=[0, 2]), axes=[0, 2]),
            r.std_dev(x, 0.25),
        )

    _compare(build, batches, ["HWC", None])


def test_a_scalar_mean_serves_every_output_element():
    """A deliberate difference: DALI reads a one-value mean as if it had one value per output element."""
    x = _data("float32", (6, 4), 9)
    out = _one(lambda d: fn.reductions.variance(d, 0.5, axes=[0]), x)[0]
    np.testing.assert_allclose(out, ((x - 0.5) ** 2).mean(axis=0), rtol=1e-6)


def test_short_sums_with_few_tree_leaves_equal_dalis():
    """Lengths whose tree has one to a few leaves per step (the order numpy would change for them)."""
    rng = np.random.default_rng(11)
    batches = [[(rng.standard_normal(n) * 1e3).astype(np.float32) for n in (9, 33, 64, 70, 100, 129, 1000)]]

    def build(lib, x):
        r = lib.fn.reductions
        return r.sum(x), r.mean(x), r.rms(x), r.variance(x, 1.5), r.std_dev(x, -2.0, ddof=1)

    _compare(build, batches)


def test_large_unsigned_sums_in_float_equal_dalis():
    """Past 2**24 a float32 sum of integers rounds, in DALI's order (below, the exact integer sum is used)."""
    rng = np.random.default_rng(12)
    batches = [[np.full((300, 300, 3), 255, np.uint8), rng.integers(0, 256, (400, 411, 3), dtype=np.uint8)]]

    def build(lib, x):
        r = lib.fn.reductions
        f32 = lib.types.FLOAT
        return r.mean(x), r.sum(x, dtype=f32), r.mean(x, axes=[0, 1]), r.sum(x, axes=[1], dtype=f32)

    _compare(build, batches)


def test_special_values_and_empty_samples_equal_dalis():
    nan, inf = np.nan, np.inf
    batches = [
        [np.array([nan, 1.0, -2.0, nan], np.float32), np.array([nan, nan], np.float32), np.zeros((0,), np.float32)],
        [np.array([inf, inf], np.float32), np.array([-0.0, -0.0], np.float32), np.array([1e30, 1e30], np.float32)],
    ]

    def build(lib, a, b):
        r = lib.fn.reductions
        return [getattr(r, kind)(x) for x in (a, b) for kind in KINDS] + [r.std_dev(b, 0.0, ddof=2)]

    _compare(build, batches)


def test_integer_accumulators_wrap_and_truncate_as_dalis():
    batches = [[np.full((60, 60), 255, np.uint8), np.arange(256, dtype=np.uint8).reshape(16, 16)]]

    def build(lib, x):
        r, t = lib.fn.reductions, lib.types
        return (
            r.sum(x, dtype=t.UINT8),
            r.mean(x, dtype=t.UINT8),
            r.rms(x, dtype=t.UINT8),
            r.mean_square(x, dtype=t.UINT64),
        )

    _compare(build, batches)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=40), elements=st.floats(-1e3, 1e3, width=32)
    ),
    st.data(),
)
def test_tree_sums_are_sums(values, data):
    axes = data.draw(st.lists(st.integers(0, values.ndim - 1), unique=True, min_size=1))
    got = tree_sum(values, axes)
    expected = values.astype(np.float64).sum(axis=tuple(axes))
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)


def _one(build, sample, layout=None):
    @pipeline_def(batch_size=1, num_threads=1)
    def p():
        return build(fn.external_source(source=lambda: [sample], layout=layout))

    return p().run()[0]


def test_axes_and_axis_names_are_exclusive_and_axes_are_distinct():
    with pytest.raises(ValueError, match="mutually exclusive"):
        _one(lambda x: fn.reductions.sum(x, axes=[0], axis_names="H"), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="axis 1 twice"):
        _one(lambda x: fn.reductions.max(x, axes=[1, 1]), np.zeros((2, 2), np.float32))


@pytest.mark.parametrize(
    "build, layout, message",
    [
        (lambda x: fn.reductions.sum(x, axes=[3]), None, r"axes=\[3\]: axis 3 is out of range .* \(valid: -3\.\.2\)"),
        (lambda x: fn.reductions.min(x, axes=[0, -3]), None, "names one axis twice"),
        (lambda x: fn.reductions.mean(x, axis_names="HX"), "HWC", "axis 'X' is not in the input's layout 'HWC'"),
        (lambda x: fn.reductions.sum(x, dtype=types.INT16), None, "dtype=int16: for float32 input"),
        (lambda x: fn.reductions.std_dev(x, 1), None, "input 'mean' has type int32"),
        (lambda x: fn.reductions.std_dev(x, np.zeros(4, np.float32), axes=[0]), None, r"output shape \(4, 5\)"),
    ],
)
def test_bad_axes_types_and_means_are_clear_errors(build, layout, message):
    with pytest.raises((OperatorError, TypeError), match=message):
        _one(build, np.zeros((3, 4, 5), np.float32), layout)


def test_float64_input_is_refused_as_in_dali():
    with pytest.raises(OperatorError, match="input 'data' has type float64"):
        _one(lambda x: fn.reductions.sum(x), np.zeros(3))


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(st.sampled_from([np.uint8, np.int16, np.int32]), hnp.array_shapes(min_dims=1, max_dims=3, max_side=12)),
    st.data(),
)
def test_integer_reductions_equal_numpys(values, data):
    axes = data.draw(st.lists(st.integers(0, values.ndim - 1), unique=True, min_size=1))
    keep = data.draw(st.booleans())

    @pipeline_def(batch_size=1, num_threads=1)
    def p():
        x = fn.external_source(source=lambda: [values])
        return (
            fn.reductions.sum(x, axes=axes, keep_dims=keep),
            fn.reductions.min(x, axes=axes, keep_dims=keep),
            fn.reductions.max(x, axes=axes, keep_dims=keep),
        )

    out = p().run()
    wide = np.int64 if values.dtype.kind == "i" else np.uint64
    expected = (
        values.sum(axis=tuple(axes), dtype=wide, keepdims=keep),
        values.min(axis=tuple(axes), keepdims=keep),
        values.max(axis=tuple(axes), keepdims=keep),
    )
    for got, want in zip(out, expected):
        assert np.asarray(got[0]).dtype == want.dtype and np.array_equal(got[0], want)
