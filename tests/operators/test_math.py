"""Arithmetic and fn.cast: results and DALI's type rules (checked against DALI when installed)."""

import itertools

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def, types
from pipestate.testing import assert_equal_output_after_checkpoint

DTYPES = [np.uint8, np.int32, np.int64, np.float32, np.float64]
OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}
LEFT = np.array([[1, 2, 3], [4, 5, 6]])
RIGHT = np.array([[2, 2, 2], [3, 3, 3]])


def compute(fn_module, pipeline_def_, op, ldt, rdt, right_constant=None, **options):
    @pipeline_def_(batch_size=2, seed=1, **options)
    def p():
        a = fn_module.external_source(source=lambda: LEFT.astype(ldt))
        if right_constant is not None:
            return OPS[op](a, right_constant)
        b = fn_module.external_source(source=lambda: RIGHT.astype(rdt))
        return OPS[op](a, b)

    pipe = p()
    pipe.build()
    return pipe.run()[0].as_array()


def ours(op, ldt, rdt, right_constant=None):
    return compute(fn, pipeline_def, op, ldt, rdt, right_constant)


@pytest.mark.parametrize("op", OPS)
def test_values_match_numpy(op):
    out = ours(op, np.float64, np.float64)
    assert np.allclose(out, OPS[op](LEFT.astype(float), RIGHT.astype(float)))


def test_dali_type_rules():
    assert ours("+", np.int32, np.float32).dtype == np.float32  # numpy would give float64
    assert ours("/", np.int32, np.int32).dtype == np.float32
    assert ours("*", np.float32, None, right_constant=2.0).dtype == np.float32
    assert ours("+", np.uint8, None, right_constant=1).dtype == np.int32
    assert ours("<", np.int32, np.float64).dtype == np.bool_


def test_unary_minus_and_reflected_operators():
    @pipeline_def(batch_size=2, seed=1)
    def p():
        a = fn.external_source(source=lambda: LEFT.astype(np.float32))
        return -a, 10.0 - a, 2.0 / a, 3 * a

    neg, sub, div, mul = (b.as_array() for b in p().run())
    assert np.array_equal(neg, -LEFT) and np.array_equal(sub, 10 - LEFT)
    assert np.allclose(div, 2 / LEFT) and np.array_equal(mul, 3 * LEFT)


def test_per_sample_broadcasting_never_mixes_batch_and_sample_axes():
    """A (3,)-shaped sample plus a scalar sample, batch size 3: per-sample broadcast, not numpy's."""

    @pipeline_def(batch_size=3, seed=1)
    def p():
        v = fn.external_source(source=lambda: np.arange(9, dtype=np.float32).reshape(3, 3))
        s = fn.external_source(source=lambda: np.array([100, 200, 300], np.float32))
        return v + s

    out = p().run()[0].as_array()
    assert out.tolist() == [[100, 101, 102], [203, 204, 205], [306, 307, 308]]


def test_incompatible_sample_shapes_raise_naming_the_operator():
    @pipeline_def(batch_size=2, seed=1)
    def p():
        a = fn.external_source(source=lambda: np.zeros((2, 3), np.float32))
        b = fn.external_source(source=lambda: np.zeros((2, 2), np.float32))
        return a + b

    with pytest.raises(OperatorError, match="arithmetic_0"):
        p().run()


def test_cast_rounds_and_saturates():
    @pipeline_def(batch_size=1, seed=1)
    def p():
        x = fn.external_source(source=lambda: np.array([[-300.0, -1.5, 0.4, 2.5, 254.6, 1e9]], np.float32))
        return fn.cast(x, dtype=types.UINT8), fn.cast(x, dtype=types.INT8), fn.cast(x, dtype=np.float16)

    u8, i8, f16 = (b.as_array()[0] for b in p().run())
    assert u8.tolist() == [0, 0, 0, 3, 255, 255]
    assert i8.tolist() == [-128, -2, 0, 3, 127, 127]
    assert f16.dtype == np.float16


def test_cast_needs_dtype():
    @pipeline_def(batch_size=1, seed=1)
    def p():
        return fn.cast(fn.random.uniform())

    with pytest.raises(TypeError, match="dtype="):
        p()


def test_arithmetic_checkpoint_conformance():
    @pipeline_def(batch_size=2, seed=4, enable_checkpointing=True)
    def p():
        u = fn.random.uniform(shape=[2])
        return (u * 3.0 - fn.random.normal()) / 2.0, u > 0.0

    assert_equal_output_after_checkpoint(p, steps=5)


# ---- DALI as the oracle ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dali():
    return pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")


@pytest.mark.parametrize("op", OPS)
def test_result_types_equal_dalis(dali, op):
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def

    for ldt, rdt in itertools.product(DTYPES, DTYPES):
        theirs = compute(dfn, dali_pipeline_def, op, ldt, rdt, device_id=None, num_threads=1)
        mine = ours(op, ldt, rdt)
        assert mine.dtype == theirs.dtype, (op, ldt, rdt)
        assert np.allclose(mine, theirs), (op, ldt, rdt)
    for constant in (2, 2.0):
        theirs = compute(dfn, dali_pipeline_def, op, np.uint8, None, constant, device_id=None, num_threads=1)
        assert ours(op, np.uint8, None, constant).dtype == theirs.dtype, (op, constant)


def test_cast_equals_dalis(dali):
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def
    from nvidia.dali import types as dtypes

    data = np.array([[-300.0, -1.5, -0.5, 0.5, 1.5, 2.5, 254.6, 1e9]], np.float32)

    def run(fn_module, pdef, t, **options):
        @pdef(batch_size=1, seed=1, **options)
        def p():
            return fn_module.cast(fn_module.external_source(source=lambda: data), dtype=t)

        pipe = p()
        pipe.build()
        return pipe.run()[0].as_array()

    for name in ("UINT8", "INT8", "INT32", "FLOAT16"):
        theirs = run(dfn, dali_pipeline_def, getattr(dtypes, name), device_id=None, num_threads=1)
        mine = run(fn, pipeline_def, getattr(types, name))
        assert mine.dtype == theirs.dtype and mine.tolist() == theirs.tolist(), name


def test_integer_division_modulo_power_and_bitwise_equal_dalis(dali):
    """Values and types of // % ** & | ^ and unary minus, with negative operands, mixed types and negative
    exponents, equal DALI's on the same inputs."""
    import nvidia.dali

    import pipestate

    def define(lib):
        @lib.pipeline_def(batch_size=2, num_threads=1, device_id=None, seed=1)
        def p():
            a = lib.fn.external_source(source=lambda: [np.array([-7, 7, -8, 9, 0], np.int32)] * 2)
            b = lib.fn.external_source(source=lambda: [np.array([2, -2, 3, 4, -3], np.int32)] * 2)
            f = lib.fn.external_source(source=lambda: [np.array([-7.5, 7.5, 2.0, -1.0, 0.5], np.float32)] * 2)
            u = lib.fn.external_source(source=lambda: [np.array([5, 6, 250, 3, 0], np.uint8)] * 2)
            return (
                a // b,
                a % b,
                a**2,
                a & b,
                a | b,
                a ^ b,
                f // 2,
                f % 2,
                f**2,
                u // 2,
                u % 4,
                u**2,
                a // 2.0,
                b**b,
                u & 3,
                -u,
                a / b,
                f % b,
                u**b,
            )

        pipe = p()
        pipe.build()
        return [np.asarray(o.as_array()) for o in pipe.run()]

    for i, (mine, theirs) in enumerate(zip(define(pipestate), define(nvidia.dali))):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), (i, mine[0], theirs[0])


BAD_OPERANDS = [None, "a", b"x", 1j, object(), [1, None], np.array(["a"])]


@pytest.mark.parametrize("operand", BAD_OPERANDS, ids=repr)
@pytest.mark.parametrize("reflected", [False, True], ids=["node op x", "x op node"])
def test_operands_dali_refuses_are_type_errors_at_definition(dali, operand, reflected):
    """DALI raises TypeError while the pipeline is defined; so does pipestate (None was accepted and failed
    in run() with an internal StopIteration)."""
    import nvidia.dali

    import pipestate

    def define(lib):
        @lib.pipeline_def(batch_size=2, num_threads=1, device_id=None, seed=1)
        def p():
            node = lib.fn.random.uniform()
            return (operand - node) if reflected else (node - operand)

        return p

    for lib in (nvidia.dali, pipestate):
        with pytest.raises(TypeError):
            define(lib)()


def test_an_operator_missing_an_operand_is_refused_at_definition():
    from pipestate.operators.arithmetic import Arithmetic
    from pipestate.tracing import add_operator

    @pipeline_def(batch_size=2)
    def p():
        return add_operator(Arithmetic, [fn.random.uniform()], {"op": "add"})

    with pytest.raises(TypeError, match="arithmetic add takes 2 operand"):
        p()
