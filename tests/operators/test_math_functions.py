"""``pipestate.math`` against DALI's ``nvidia.dali.math``: result types over every input type and pair of
types, values (exact, or within a few units in the last place for the C library's transcendental
functions), constants, broadcasting, layouts and errors."""

from __future__ import annotations

import numpy as np
import pytest

import pipestate
from pipestate import OperatorError, fn, math, pipeline_def
from pipestate.operators.elementwise import FUNCTIONS

NUMERIC = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64"]
UNARY = [name for name, (_, arity, _) in FUNCTIONS.items() if arity == 1]
BINARY = [name for name, (_, arity, _) in FUNCTIONS.items() if arity == 2]
EXACT = {"abs", "fabs", "floor", "ceil", "sqrt", "min", "max", "clamp"}  # and every integer result
# DALI computes these with the C library (rsqrt: an SSE estimate refined once); numpy's implementations
# agree within this many units in the last place.
ULPS = 4


def _values(dtype: str, shift: int = 0) -> np.ndarray:
    """Values every function accepts for most types (small, positive and negative where signed)."""
    d = np.dtype(dtype)
    base = np.array([0, 1, 2, 3, 5, 7, 9, 4], dtype=np.float64) + shift
    if d.kind == "i":
        base = base - 3
    if d.kind == "f":
        base = base * 0.37 - 0.8
    return base.astype(d)


def _constant_source(batch):
    return lambda: batch


def _run(lib, build, batches, layouts=None, batch_size=2):
    layouts = layouts or [None] * len(batches)

    @lib.pipeline_def(batch_size=batch_size, num_threads=1, device_id=None, seed=3)
    def pipe():
        nodes = [
            lib.fn.external_source(source=_constant_source(b), layout=layout) for b, layout in zip(batches, layouts)
        ]
        out = build(lib, *nodes)
        return tuple(out) if isinstance(out, (list, tuple)) else out

    p = pipe()
    p.build()
    return [([np.array(s) for s in o], o.layout()) for o in p.run()]


def _math(lib):
    if lib is pipestate:
        return math
    import nvidia.dali.math

    return nvidia.dali.math


def _assert_close(mine: np.ndarray, theirs: np.ndarray, where: str, exact: bool) -> None:
    assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, (
        f"{where}: {mine.dtype}{mine.shape} vs DALI {theirs.dtype}{theirs.shape}"
    )
    if exact or mine.dtype.kind != "f":
        assert mine.tobytes() == theirs.tobytes(), f"{where}: {mine!r} vs DALI {theirs!r}"
        return
    same_nan = np.isnan(mine) == np.isnan(theirs)
    assert same_nan.all(), f"{where}: NaN at different places: {mine!r} vs {theirs!r}"
    ok = ~np.isnan(mine)
    bits = {4: np.int32, 8: np.int64, 2: np.int16}[mine.dtype.itemsize]
    ulps = np.abs(mine[ok].view(bits).astype(np.int64) - theirs[ok].view(bits).astype(np.int64))
    assert (ulps <= ULPS).all() or np.allclose(mine[ok], theirs[ok], rtol=0, atol=1e-30), (
        f"{where}: {int(ulps.max())} ulps apart: {mine!r} vs DALI {theirs!r}"
    )


@pytest.fixture(scope="module")
def dali():
    return pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")


@pytest.mark.dali_differential("math")
@pytest.mark.parametrize("dtype", NUMERIC)
def test_unary_functions_equal_dalis_for_every_type(dali, dtype):
    def build(lib, x):
        m = _math(lib)
        return [getattr(m, name)(x) for name in UNARY]

    batches = [[_values(dtype), _values(dtype, 1)[:5]]]
    mine, theirs = _run(pipestate, build, batches), _run(dali, build, batches)
    for name, (m_out, _), (d_out, _) in zip(UNARY, mine, theirs):
        for i, (a, d) in enumerate(zip(m_out, d_out)):
            _assert_close(a, d, f"{name}({dtype}) sample {i}", name in EXACT)


@pytest.mark.parametrize("left", NUMERIC)
def test_binary_and_ternary_functions_equal_dalis_for_every_pair_of_types(dali, left):
    def build(lib, *nodes):
        m = _math(lib)
        x = nodes[0]
        out = []
        for y in nodes[1:]:
            out += [getattr(m, name)(x, y) for name in BINARY]
            out.append(m.clamp(x, y, 6))
        return out

    batches = [[_values(left), _values(left, 1)]] + [[_values(r, 2), _values(r, 3)] for r in NUMERIC]
    mine, theirs = _run(pipestate, build, batches), _run(dali, build, batches)
    names = [f"{f}({left}, {r})" for r in NUMERIC for f in [*BINARY, "clamp"]]
    for name, (m_out, _), (d_out, _) in zip(names, mine, theirs):
        for i, (a, d) in enumerate(zip(m_out, d_out)):
            _assert_close(a, d, f"{name} sample {i}", name.split("(")[0] in EXACT)


def test_constants_broadcasting_layouts_and_special_values_equal_dalis(dali):
    def build(lib, x, v, n):
        m = _math(lib)
        return (
            m.pow(2, x),
            m.pow(x, -1),
            m.pow(10.0, x / 20.0),
            m.min(x, 2.5),
            m.max(np.uint8(3), x),
            m.clamp(x, 4, 1),
            m.clamp(v, -1.0, np.array([0.5, 1.0, 2.0], np.float32)),
            m.atan2(v, x),
            m.min(n, 1.0),
            m.min(1.0, n),
            m.max(n, -1.0),
            m.sqrt(n),
            m.fpow(x, 2),
            m.abs(v),
            m.min(v, 0.0),
            m.max(v, 0.0),
            m.min(0.0, v),
            m.max(0.0, v),
            m.clamp(v, 0.0, 0.0),
        )

    x = [np.array([[1, 2, 3], [4, 5, 6]], np.int32), np.array([[7, 8, 9], [0, -1, -2]], np.int32)]
    v = [np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3), np.full((2, 3), -0.0, np.float32)]
    n = [np.array([np.nan, 1.0, -np.inf], np.float32), np.array([np.inf, np.nan, 0.0], np.float32)]
    layouts = ["HW", None, None]
    mine, theirs = _run(pipestate, build, [x, v, n], layouts), _run(dali, build, [x, v, n], layouts)
    for k, ((m_out, m_layout), (d_out, d_layout)) in enumerate(zip(mine, theirs)):
        assert m_layout == d_layout, (k, m_layout, d_layout)
        for i, (a, d) in enumerate(zip(m_out, d_out)):
            _assert_close(a, d, f"output {k} sample {i}", k not in (2, 7, 11, 12))


def test_ragged_samples_broadcast_per_sample():
    def build(lib, x, s):
        return math.clamp(x, s, 10) + math.min(s, x)

    x = [np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(4, dtype=np.float32).reshape(4, 1)]
    s = [np.array([2.0], np.float32), np.array([1.0, 2.0, 3.0], np.float32)]
    ((out, _),) = _run(pipestate, build, [x, s])
    for sample, lo, got in zip(x, s, out):
        expected = np.minimum(np.maximum(sample, lo), 10) + np.where(lo < sample, lo, sample)
        assert got.shape == expected.shape and np.array_equal(got, expected)


def test_boolean_operands_only_are_refused_as_in_dali():
    @pipeline_def(batch_size=2, num_threads=1)
    def p():
        b = fn.external_source(source=lambda: [np.array([True, False])] * 2)
        return math.abs(b)

    with pytest.raises(OperatorError, match="boolean"):
        p().run()


def test_different_layouts_are_an_error():
    @pipeline_def(batch_size=2, num_threads=1)
    def p():
        a = fn.external_source(source=lambda: [np.ones((2, 2), np.float32)] * 2, layout="HW")
        b = fn.external_source(source=lambda: [np.ones((2, 2), np.float32)] * 2, layout="WH")
        return math.max(a, b)

    with pytest.raises(OperatorError, match="layouts 'HW' and 'WH' differ"):
        p().run()


def test_a_function_needs_a_datanode_and_numeric_operands():
    @pipeline_def(batch_size=1, num_threads=1)
    def constants_only():
        return math.sqrt(4.0)

    with pytest.raises(TypeError, match="at least one DataNode"):
        constants_only()

    @pipeline_def(batch_size=1, num_threads=1)
    def text():
        return math.pow(fn.random.uniform(), "2")

    with pytest.raises(TypeError, match="operand 1 is str"):
        text()


def test_math_is_dalis_namespace():
    import nvidia.dali.math

    public = {n for n in dir(nvidia.dali.math) if not n.startswith("_") and callable(getattr(nvidia.dali.math, n))}
    public.discard("DataNode")
    assert public <= set(math.__all__), public - set(math.__all__)
    assert set(math.__all__) == set(FUNCTIONS)
