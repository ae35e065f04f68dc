"""The operator contract: schemas and validation, statefulness, fingerprints that survive upgrades,
DALI compatibility of options, devices, DataNode operators and Batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipestate import CheckpointError, CheckpointMismatchError, Pipeline, fn, pipeline_def, types
from pipestate import checkpoint as ckpt
from pipestate.graph import op_identity
from pipestate.operators import schema as sch
from pipestate.operators.base import REGISTRY, Operator, register, unregister
from pipestate.operators.schema import Arg
from pipestate.testing import assert_equal_output_after_checkpoint


def build(body, batch_size=4, **options):
    @pipeline_def(batch_size=batch_size, seed=7, enable_checkpointing=True, **options)
    def p():
        return body()

    return p


def run_once(body, **options):
    pipe = build(body, **options)()
    out = pipe.run()
    pipe.close()
    return out


# ---- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: fn.random.uniform(range=[0, np.inf]), ValueError, "range\\[1\\]"),
        (lambda: fn.random.uniform(range="ab"), TypeError, "range"),
        (lambda: fn.random.uniform(range=[0, 3e9], dtype=types.INT32), ValueError, "does not fit dtype int32"),
        (lambda: fn.random.uniform(range=[-300, -200], dtype=types.UINT8), ValueError, "does not fit"),
        (lambda: fn.random.uniform(dtype=types.BOOL), TypeError, "dtype"),
        (lambda: fn.random.normal(stddev=float("nan")), ValueError, "stddev"),
        (lambda: fn.random.normal(stddev=-1.0), ValueError, "stddev"),
        (lambda: fn.random.choice(2, p=[0.5, float("nan")]), ValueError, "p\\[1\\]"),
        (lambda: fn.random.coin_flip(probability=True), TypeError, "probability"),
        (lambda: fn.random.uniform(shape=[2], seed=True), TypeError, "seed"),
        (lambda: fn.readers.file(file_root=".", file_filters=5), TypeError, "file_filters"),
        (lambda: fn.readers.file(file_root=".", shard_id=2, num_shards=2), ValueError, "shard_id"),
        (lambda: fn.random.uniform(devise="cpu"), TypeError, "unexpected argument"),
        (lambda: fn.random.uniform(device="gpu"), ValueError, "device='gpu'"),
        (lambda: fn.cast(fn.random.uniform(), dtype="nope"), TypeError, "dtype"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        build(call)()


def test_numpy_scalars_and_zero_d_arrays_are_accepted():
    out = run_once(lambda: fn.random.uniform(range=[np.float32(0), np.array(2.0)], shape=np.int64(3), seed=np.int64(5)))
    assert out[0].as_array().shape == (4, 3)
    pipe = Pipeline(batch_size=np.int64(2), seed=np.int64(5), num_threads=np.int32(2))
    assert pipe.batch_size == 2 and isinstance(pipe.batch_size, int)


def test_scalar_broadcasts_to_a_list_where_dali_does():
    a = run_once(lambda: fn.random.uniform(shape=3, seed=1))[0].as_array()
    b = run_once(lambda: fn.random.uniform(shape=[3], seed=1))[0].as_array()
    assert a.tobytes() == b.tobytes()


def test_the_users_arguments_are_never_mutated():
    shape, filters = [3], ["*.bin"]
    build(lambda: fn.random.uniform(shape=shape))()
    assert shape == [3] and filters == ["*.bin"]


def test_config_is_read_only():
    captured = {}

    def body():
        node = fn.random.uniform(shape=[2])
        captured["op"] = node.op
        return node

    build(body)()
    with pytest.raises(TypeError):
        captured["op"].args["shape"] = (5,)


def test_docstrings_come_from_the_schema():
    doc = fn.random.uniform.__doc__
    assert "Args:" in doc and "range:" in doc and "per-sample DataNode accepted" in doc and "device:" in doc


# ---- statefulness follows from state() ---------------------------------------------------------------
def test_statefulness_follows_from_defining_state():
    assert not REGISTRY["random.uniform"].stateful
    assert REGISTRY["readers.file"].stateful and REGISTRY["external_source"].stateful
    with pytest.raises(TypeError, match="defines state\\(\\) but not check_state\\(state, at\\) and restore"):

        class Broken(Operator):
            type = "test.broken"

            def state(self):
                return 0

    with pytest.raises(TypeError, match="defines state\\(\\) but not check_state\\(state, at\\);"):

        class Unchecked(Operator):  # a restore that cannot refuse before moving anything
            type = "test.unchecked"

            def state(self):
                return 0

            def restore(self, state, at):
                pass


# ---- fingerprints keyed by name, defaults left out ----------------------------------------------------
def _op(body):
    captured = {}

    def wrapped():
        node = body()
        captured["op"] = node.op
        return node

    build(wrapped)()
    return captured["op"]


def test_arguments_equal_to_their_defaults_do_not_enter_the_digest():
    plain = op_identity(_op(lambda: fn.random.normal(shape=[2])))
    explicit = op_identity(_op(lambda: fn.random.normal(shape=[2], mean=0.0, stddev=1, device="cpu")))
    assert plain == explicit
    assert set(plain[1]) == {"shape"}


def test_adding_an_optional_argument_keeps_old_checkpoints(monkeypatch):
    p = build(lambda: fn.random.normal(shape=[2]) * 2.0)
    blob = p().checkpoint()
    cls = REGISTRY["random.normal"]
    monkeypatch.setattr(cls, "SCHEMA", (*cls.SCHEMA, Arg("new_option", sch.Int(), 3, "A new optional argument")))
    restored = p(checkpoint=blob)  # a release that adds an argument with a default still restores it
    assert restored.is_restored_from_checkpoint


def test_mismatch_names_exactly_the_arguments_that_differ():
    a = build(lambda: fn.random.normal(shape=[2], mean=1.0, stddev=2.0, name="n"))().checkpoint()
    b = build(lambda: fn.random.normal(shape=[2], mean=1.0, stddev=3.0, name="n"))
    with pytest.raises(CheckpointMismatchError) as info:
        b(checkpoint=a)
    text = str(info.value)
    assert "changed arguments: stddev" in text and "mean" not in text.split("changed arguments:")[1]
    c = build(lambda: fn.random.normal(shape=[2], mean=1.0, name="n"))  # stddev back to its default
    with pytest.raises(CheckpointMismatchError, match="changed arguments: stddev"):
        c(checkpoint=a)


def test_callable_fingerprints_do_not_depend_on_the_module():
    def source(info):
        return [np.zeros(1)] * 4

    first = op_identity(_op(lambda: fn.external_source(source=source, batch_info=True)))
    source.__module__ = "__mp_main__"
    second = op_identity(_op(lambda: fn.external_source(source=source, batch_info=True)))
    assert first == second


# ---- generic state ---------------------------------------------------------------------------------
def test_a_new_stateful_operator_needs_no_codec_change():
    @register
    @dataclasses.dataclass(init=False)
    class Counter(Operator):
        """Counts batches (a test operator with nested plain-data state)."""

        type = "test.counter"
        ARGS = (Arg("step", sch.Int(1), 1, "Increment"),)

        def setup(self, env):
            self.count = 0

        def run(self, ctx, inputs, arg_inputs):
            from pipestate.batch import Batch

            self.count += self.args["step"]
            return (Batch(np.full((ctx.batch_size, 1), self.count, dtype=np.int64)),)

        def state(self):
            return {"count": self.count, "history": [self.count, b"\x00", None, 1.5, {"ok": True}]}

        def check_state(self, state, at):
            if not isinstance(state, dict) or not isinstance(state.get("count"), int):
                raise CheckpointError(f"not a counter's state: {state!r}")

        def restore(self, state, at):
            self.count = state["count"]

    try:
        counter = fn.test.counter  # registered at run time: fn has it at once
        assert_equal_output_after_checkpoint(build(lambda: counter(step=2)), steps=5)
        blob = build(lambda: counter(step=2))().checkpoint()
        assert ckpt.decode(blob).operators[0].state == {"count": 0, "history": [0, b"\x00", None, 1.5, {"ok": True}]}
    finally:
        unregister("test.counter")
    assert not hasattr(fn, "test") or not hasattr(fn.test, "counter")


def test_operator_state_that_is_not_plain_data_is_a_clear_error():
    from pipestate import PipestateError

    class Source:
        def __call__(self):
            return [np.zeros(1)] * 4

        def state(self):
            return object()

        def restore(self, data):
            pass

    with pytest.raises((PipestateError, TypeError), match="must return bytes"):
        build(lambda: fn.external_source(source=Source()))().run()


# ---- DALI compatibility ----------------------------------------------------------------------------
def test_dali_pipeline_options_are_accepted():
    pipe = Pipeline(
        batch_size=2, num_threads=2, device_id=0, seed=1, exec_async=True, exec_pipelined=False, exec_dynamic=False,
        py_start_method="spawn", py_num_workers=2, set_affinity=True, bytes_per_sample=1024, enable_memory_stats=False,
        prefetch_queue_depth={"cpu_size": 3, "gpu_size": 2}, enable_conditionals=False, stream_policy=None,
    )
    assert pipe.prefetch_queue_depth == 3 and pipe.device_id == 0
    with pytest.raises(ValueError, match="exec_async"):  # DALI's rule for separated queues
        Pipeline(batch_size=2, exec_async=False, prefetch_queue_depth={"cpu_size": 3, "gpu_size": 2})
    with pytest.raises(TypeError, match="pipeline option exec_async"):
        Pipeline(batch_size=2, exec_async="no")
    with pytest.raises(TypeError, match="pipeline option enable_checkpointing"):
        Pipeline(batch_size=2, enable_checkpointing="no")


def test_unknown_factory_keyword_says_pipeline_option():
    p = build(lambda: fn.random.uniform())
    with pytest.raises(TypeError, match="neither pipeline options"):
        p(batch_sise=3)


def test_output_dtype_and_ndim_are_checked():
    from pipestate import OperatorError, PipestateError

    ok = build(lambda: fn.random.uniform(shape=[2]), output_dtype=types.FLOAT, output_ndim=1)()
    ok.run()
    bad = build(lambda: fn.random.uniform(shape=[2]), output_dtype=types.INT32)()
    with pytest.raises((PipestateError, OperatorError), match="output_dtype"):
        bad.run()


def test_batch_has_dali_tensorlist_methods():
    out = run_once(lambda: fn.external_source(source=lambda i: np.ones((4, 2, 3, 1), np.uint8), layout="HWC"))[0]
    assert out.as_cpu() is out and out.layout() == "HWC" and out.at(1).shape == (2, 3, 1)
    assert out.as_tensor().shape == (4, 2, 3, 1) and out.is_dense_tensor() and out.shape() == [(2, 3, 1)] * 4


def test_dataNode_operators_and_numpy_operands():
    def body():
        x = fn.external_source(source=lambda i: np.arange(24, dtype=np.int32).reshape(4, 6) + i)
        return x // 4, x % 5, x**2, x & 6, x | 1, x ^ 3, np.int32(2) * x, x[1:5:2], x[..., 0], x[None, -1]

    outs = [o.as_array() for o in run_once(body)]
    x = np.arange(24, dtype=np.int32).reshape(4, 6)
    expected = [x // 4, np.fmod(x, 5), x**2, x & 6, x | 1, x ^ 3, 2 * x, x[:, 1:5:2], x[:, 0], x[:, None, -1]]
    for got, want in zip(outs, expected):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_datanode_index_per_sample():
    def body():
        x = fn.external_source(source=lambda i: np.arange(24, dtype=np.int32).reshape(4, 6))
        k = fn.external_source(source=lambda i: np.array([0, 1, 2, 3], dtype=np.int64))
        return x[k]

    assert run_once(body)[0].as_array().tolist() == [0, 7, 14, 21]


def test_constants_and_cast_like():
    def body():
        x = fn.random.uniform(shape=[2])
        c = types.Constant(np.array([1, 2], dtype=np.int16))
        return fn.constant(fdata=[1.5, 2.5], shape=[2]), c, fn.cast_like(x * 10.0, c), fn.cast(x, types.FLOAT64)

    const, c, like, cast = run_once(body)
    assert const.as_array().tolist() == [[1.5, 2.5]] * 4 and const.dtype == np.float32
    assert c.dtype == np.int16 and like.dtype == np.int16 and cast.dtype == np.float64


def test_random_beta_is_in_range_and_restores():
    out = run_once(lambda: fn.random.beta(alpha=2.0, beta=5.0, shape=[1000]))[0].as_array()
    assert out.dtype == np.float32 and (out >= 0).all() and (out <= 1).all()
    assert abs(out.mean() - 2 / 7) < 0.02  # the Beta(2, 5) mean
    assert_equal_output_after_checkpoint(build(lambda: fn.random.beta(alpha=0.5, beta=0.5, shape=[3])), steps=4)


def test_stop_iteration_inside_an_operator_is_an_error_not_an_epoch_end():
    from pipestate import OperatorError

    def bad(x):
        raise StopIteration

    pipe = build(lambda: fn.python_function(fn.random.uniform(), function=bad))()
    with pytest.raises(OperatorError, match="python_function"):
        pipe.run()


def test_non_numeric_samples_are_rejected():
    from pipestate import OperatorError

    pipe = build(lambda: fn.python_function(fn.random.uniform(), function=lambda x: None))()
    with pytest.raises(OperatorError, match="numeric"):
        pipe.run()
    pipe = build(lambda: fn.external_source(source=lambda i: [np.array("ab")] * 4))()
    with pytest.raises(OperatorError, match="numeric"):
        pipe.run()


def test_no_argument_callable_is_not_restored_mid_epoch_with_refuse():
    counter = iter(range(10**6))
    p = build(lambda: fn.external_source(source=lambda: [np.array([next(counter)])] * 4))
    with pytest.warns(UserWarning, match="cannot be checkpointed"):
        pipe = p(uncaptured_sources="refuse")
    pipe.run()
    blob = pipe.checkpoint()
    with pytest.raises(CheckpointError, match="taking no argument"), pytest.warns(UserWarning):
        p(checkpoint=blob, uncaptured_sources="refuse")
    with pytest.warns(UserWarning):  # the default, as DALI: restored, the source called again
        assert p(checkpoint=blob).is_restored_from_checkpoint


def test_external_source_batch_false_sequences_and_cycle():
    samples = [np.array([i], dtype=np.int32) for i in range(6)]
    pipe = build(lambda: fn.external_source(source=samples, batch=False), batch_size=2)()
    assert [pipe.run()[0].as_array().ravel().tolist() for _ in range(3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(StopIteration):
        pipe.run()

    def gen():
        yield from ([np.array([i])] * 2 for i in range(3))

    cyc = build(lambda: fn.external_source(source=gen, cycle="quiet"), batch_size=2)
    with pytest.warns(UserWarning):
        pipe = cyc()
    assert [int(pipe.run()[0].as_array()[0, 0]) for _ in range(5)] == [0, 1, 2, 0, 1]
    with pytest.warns(UserWarning):
        assert_equal_output_after_checkpoint(cyc, steps=6)


def test_an_operator_defined_outside_a_pipeline_is_adopted_as_in_dali():
    u = fn.random.uniform(range=[0.0, 1.0], shape=[2])  # detached, as DALI allows
    offset = fn.random.normal(shape=[2], name="noise")

    def make(**options):
        pipe = Pipeline(batch_size=3, seed=9, enable_checkpointing=True, **options)
        with pipe:
            pipe.set_outputs(u + offset)
        return pipe

    pipe = make()
    assert pipe.operators == ["random.uniform_0", "noise", "arithmetic_0"]
    first = pipe.run()[0].as_array()
    blob = pipe.checkpoint()

    @pipeline_def(batch_size=3, seed=9, enable_checkpointing=True)
    def inside():
        return fn.random.uniform(range=[0.0, 1.0], shape=[2]) + fn.random.normal(shape=[2], name="noise")

    same = inside()
    assert same.run()[0].as_array().tobytes() == first.tobytes()
    assert inside(checkpoint=blob).run()[0].as_array().tobytes() == same.run()[0].as_array().tobytes()
    with pytest.raises(TypeError, match="not a DataNode defined in this pipeline"):
        other = Pipeline(batch_size=3, seed=9)
        with other:
            other.set_outputs(u)


def test_constant_matches_dali_shapes():
    def body():
        return (
            fn.constant(idata=42),
            fn.constant(idata=42, shape=(3,)),
            fn.constant(fdata=[1.0, 2.0]),
            fn.constant(idata=[1, 2, 3, 4], shape=[2, 2]),
        )

    got = [o.as_array() for o in run_once(body)]
    # DALI 2.4's outputs for the same calls (batch of 4)
    assert [g.shape for g in got] == [(4, 1), (4, 3), (4, 2), (4, 2, 2)]
    assert [g.dtype for g in got] == [np.int32, np.int32, np.float32, np.int32]
    assert got[1][0].tolist() == [42, 42, 42] and got[3][0].tolist() == [[1, 2], [3, 4]]


def test_an_argument_given_as_none_takes_its_default_as_in_dali():
    @pipeline_def(batch_size=2, seed=1)
    def pipe(**kwargs):
        return fn.random.uniform(shape=[64], **kwargs)

    (given_none,) = pipe(range=None).run()
    (omitted,) = pipe().run()
    (other,) = pipe(range=[0, 1]).run()
    assert np.array_equal(np.asarray(given_none), np.asarray(omitted))
    assert not np.array_equal(np.asarray(given_none), np.asarray(other))


def test_an_integer_argument_beyond_64_bits_is_a_clear_error():
    from pipestate.operators import schema as sch

    for value in (2**63, -(2**63) - 1, -(2**70)):
        with pytest.raises(ValueError, match="fits in 64 bits"):
            sch.Int().check(value, "fn.x(): n")
        with pytest.raises(ValueError, match=r"fits in 64 bits"):
            sch.Seq(sch.Int()).check((1, value), "fn.x(): shape")
    assert sch.Int().check(2**63 - 1, "fn.x(): n") == 2**63 - 1
