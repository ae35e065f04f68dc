"""Conditionals (``enable_conditionals=True``): checked against DALI, checkpointed, independent of threads.

Each ``case_*`` function is a pipeline body written once and run by both libraries (``lib.fn``,
``lib.types``): both convert it, as the pipeline function calls it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipestate
from pipestate import fn, pipeline_def
from pipestate.errors import OperatorError
from pipestate.rng import Stream
from pipestate.testing import assert_equal_output_after_checkpoint, assert_same_output

BATCH = 8


def _num(info):
    return np.int32((info.idx_in_epoch * 7) % 11 - 5)


def _other(info):
    return np.int32(info.idx_in_epoch * 3 - 4)


def _flag(info):
    return np.array((info.idx_in_epoch * 5) % 3 == 0)


def _zero(info):
    return np.int32(0)


# ---- bodies run by pipestate and by DALI --------------------------------------------------------------


def case_basic(fn, types):
    n = fn.external_source(_num, batch=False)
    a = np.int32(0)
    b = np.int32(0)
    if n > 0:
        a = -n
    else:
        b = 2 * n
    return a, b


def case_unbalanced(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 0:
        n = np.int32(3)
    return n


def case_local_var(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 0:
        b = np.int32(4)
        n = b + 1
    return n


def case_elif(fn, types):
    n = fn.external_source(_num, batch=False)
    if n == 0:
        result = n + 10
    elif n > 0:
        result = n + 100
    else:
        result = n - 50
    return result


def case_nested(fn, types):
    x = fn.external_source(_other, batch=False)
    p0 = fn.external_source(_flag, batch=False)
    n = fn.external_source(_num, batch=False)
    to_assign = x * -5
    if p0:
        if n > 0:
            output = x + 10
        else:
            output = to_assign
    else:
        output = fn.cast(x, dtype=types.FLOAT) * 0.5 + 3000
        output = fn.cast(output, dtype=types.INT32)
    return output, to_assign


def case_multiple_nests(fn, types):
    x = fn.external_source(_other, batch=False)
    n = fn.external_source(_num, batch=False)
    if n > -5:
        if n > -3:
            if n > -1:
                if n > 1:
                    if n > 3:
                        output = x - 100
                    else:
                        output = x + 100
                else:
                    output = x - 200
            else:
                output = x + 400
        else:
            output = x - 800
    else:
        output = x + 1600
    return output


def case_consecutive(fn, types):
    x = fn.external_source(_other, batch=False)
    p0 = fn.external_source(_flag, batch=False)
    n = fn.external_source(_num, batch=False)
    if p0:
        output = x + 1
    else:
        output = x + 2
    if n > 0:
        output2 = output * 3
    else:
        output2 = output - 4
    return output, output2


def case_tuples(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 1:
        pair = (n, n * 2)
        d = {"k": n + 1}
    else:
        pair = (n - 1, n)
        d = {"k": n * 5}
    return pair[0], pair[1], d["k"]


def case_empty_true(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 100:
        y = n * 1000
    else:
        y = n - 1
    return y


def case_empty_false(fn, types):
    n = fn.external_source(_num, batch=False)
    if n < 100:
        y = fn.cast(n, dtype=types.FLOAT) * 0.25
    else:
        y = fn.cast(n, dtype=types.FLOAT)
    return y


def case_returns(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 2:
        return n + 1
    y = n * 10
    return y


def case_returns_both(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 0:
        return n * 2, n
    else:
        return n - 7, n * 0


def case_promoted_constants(fn, types):
    n = fn.external_source(_num, batch=False)
    a = 5
    if n > 2:
        a = n
    if n < 0:
        c = 1
    else:
        c = 0
    return a, c


def case_logical(fn, types):
    n = fn.external_source(_num, batch=False)
    p = fn.external_source(_flag, batch=False)
    both = (n > -2) and (n < 3)
    either = (n > 3) or p
    negated = not n
    if (n > 0 and not p) or n == -5:
        y = n + 1000
    else:
        y = n
    return both, either, negated, y


def case_truthy_predicates(fn, types):
    n = fn.external_source(_num, batch=False)
    f = fn.cast(n, dtype=types.FLOAT) * 0.5
    if n:
        y = n * 2
    else:
        y = n + 50
    if f:
        z = f + 1
    else:
        z = f - 1
    return y, z


def case_explicit_split_merge(fn, types):
    n = fn.external_source(_num, batch=False)
    p = fn.external_source(_flag, batch=False)
    t, f = fn._conditional.split(n, predicate=p)
    return fn._conditional.merge(t * 3, f - 3, predicate=p)


def case_source_in_branch(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 0:
        y = fn.external_source(_other, batch=False)
    else:
        y = n
    return y


def case_attribute(fn, types):
    class Box:
        pass

    box = Box()
    n = fn.external_source(_num, batch=False)
    box.value = n
    if n > 0:
        box.value = n * 4
    return box.value


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


def _build(lib, case, batch_size=BATCH, **options):
    @lib.pipeline_def(batch_size=batch_size, num_threads=2, device_id=None, seed=5, enable_conditionals=True, **options)
    def pipe():
        return case(lib.fn, lib.types)

    return pipe()


def _outputs(pipe, iterations):
    pipe.build()
    out = []
    for _ in range(iterations):
        out.append([[np.asarray(b.at(i)) for i in range(len(b))] for b in pipe.run()])
    return out


@pytest.mark.dali_differential("_conditional.split", "_conditional.merge")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_same_outputs_as_dali(case):
    dali = pytest.importorskip("nvidia.dali")
    ours = _outputs(_build(pipestate, case), 3)
    theirs = _outputs(_build(dali, case), 3)
    assert len(ours[0]) == len(theirs[0])
    for it, (a, b) in enumerate(zip(ours, theirs)):
        for k, (oa, ob) in enumerate(zip(a, b)):
            for i, (sa, sb) in enumerate(zip(oa, ob)):
                assert sa.dtype == sb.dtype, (case.__name__, it, k, i)
                np.testing.assert_array_equal(sa, sb, err_msg=f"{case.__name__} iteration {it} output {k} sample {i}")


def test_cases_take_both_branches():
    """The inputs make every case above take both branches of its main `if` (no vacuous comparison)."""
    n = np.array([_num(type("I", (), {"idx_in_epoch": i})()) for i in range(3 * BATCH)])
    assert (n > 0).any() and (n <= 0).any() and (n == 0).any() and (n == -5).any()
    assert (n > 3).any() and (n < -3).any()


# ---- errors, as DALI's ---------------------------------------------------------------------------------


def err_one_branch(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 2:
        z = n + 1
    return z


def err_one_return(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 2:
        return n


def err_structure(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 2:
        t = (n, n + 1)
    else:
        t = n
    return t


def err_before_assignment(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 2:
        w = n + 1
    else:
        w = w + 1  # noqa: F821 - the error under test
    return w


DEFINITION_ERRORS = [
    (err_one_branch, RuntimeError, "Variable 'z' must also be initialized in the `else` branch."),
    (err_one_return, RuntimeError, "The `else` branch must also have a return statement."),
    (err_structure, ValueError, "Divergent data found in different branches of `if/else` control flow statement"),
    (err_before_assignment, UnboundLocalError, "'w' is used before assignment"),
]


@pytest.mark.parametrize("case,error,message", DEFINITION_ERRORS, ids=lambda v: getattr(v, "__name__", ""))
def test_definition_errors_as_dali(case, error, message):
    with pytest.raises(error, match=_literal(message)):
        _build(pipestate, case)
    dali = pytest.importorskip("nvidia.dali")
    with pytest.raises(error, match=_literal(message)):
        _build(dali, case)


def err_vector_predicate(fn, types):
    v = fn.external_source(lambda info: np.array([info.idx_in_batch, 1], np.int32), batch=False)
    if v:
        y = v + 1
    else:
        y = v - 1
    return y


def err_divergent_types(fn, types):
    n = fn.external_source(_num, batch=False)
    if n > 0:
        y = n + 1
    else:
        y = fn.cast(n, dtype=types.FLOAT)
    return y


def err_and_int(fn, types):
    n = fn.external_source(_num, batch=False)
    return n and (n > 2)


def err_or_right(fn, types):
    n = fn.external_source(_num, batch=False)
    return (n > 2) or n


def err_not_vector(fn, types):
    v = fn.external_source(lambda info: np.array([True, False]), batch=False)
    return not v


_SCALAR = "restricted to scalar (0-d tensors) inputs"
_BOOL = _SCALAR + " of `bool` type, that are placed on CPU. "
RUN_ERRORS = [
    (err_vector_predicate, _SCALAR + ", that are placed on CPU. Got a 1-d input as a condition of the `if` statement."),
    (err_divergent_types, "number of dimensions, layout and other metadata. Found distinct types"),
    (err_and_int, "Logical expression `and` is " + _BOOL + "Got an input of type `int32` as the left argument"),
    (err_or_right, "Logical expression `or` is " + _BOOL + "Got an input of type `int32` as the right argument"),
    (err_not_vector, "Logical expression `not` is " + _SCALAR + ", that are placed on CPU. Got a 1-d input in logical"),
]


@pytest.mark.parametrize("case,message", RUN_ERRORS, ids=lambda v: getattr(v, "__name__", ""))
def test_run_errors_as_dali(case, message):
    pipe = _build(pipestate, case)
    with pytest.raises(OperatorError, match=_literal(message)) as info:
        pipe.run()
    assert info.value.operator.startswith("_conditional.")
    dali = pytest.importorskip("nvidia.dali")
    with pytest.raises(RuntimeError, match=_literal(message)):
        dpipe = _build(dali, case)
        dpipe.build()
        dpipe.run()


def _literal(text):
    import re

    return re.escape(text)


def test_conditional_expression_is_not_converted():
    """DALI does not convert `a if p else b`: a DataNode predicate there is an error in both."""

    @pipeline_def(batch_size=2, enable_conditionals=True)
    def pipe():
        n = fn.external_source(_num, batch=False)
        return n + 1 if n > 2 else n - 1

    with pytest.raises(TypeError, match="no truth value"):
        pipe()


def test_without_enable_conditionals_if_on_a_datanode_fails():
    @pipeline_def(batch_size=2)
    def pipe():
        n = fn.external_source(_num, batch=False)
        if n > 0:
            n = n + 1
        return n

    with pytest.raises(TypeError, match="enable_conditionals=True"):
        pipe()


def test_item_assignment_in_a_branch_is_refused():
    @pipeline_def(batch_size=2, enable_conditionals=True)
    def pipe():
        n = fn.external_source(_num, batch=False)
        out = {"v": n}
        if n > 0:
            out["v"] = n + 1
        return out["v"]

    with pytest.raises(TypeError, match=r"out\['v'\] = \.\.\..*assign to a variable"):
        pipe()


def test_mixing_branches_of_explicit_splits_is_refused():
    @pipeline_def(batch_size=2)
    def pipe():
        n = fn.external_source(_num, batch=False)
        t, f = fn._conditional.split(n, predicate=n > 0)
        return t + f

    with pytest.raises(ValueError, match="inputs from different conditional branches"):
        pipe()


# ---- Python predicates, helpers ------------------------------------------------------------------------


def _helper(x, flag):
    if flag:  # a Python value: an ordinary `if`
        return x * 2
    if x > 0:  # a DataNode: both branches
        return x + 100
    return x


def test_python_predicates_and_called_functions():
    @pipeline_def(batch_size=BATCH, enable_conditionals=True)
    def pipe(flag):
        n = fn.external_source(_num, batch=False)
        if flag and not False:
            extra = 1
        else:
            extra = 2
        return _helper(n, flag) + extra, n

    ((doubled, n),) = _outputs(pipe(True), 1)
    np.testing.assert_array_equal(np.stack(doubled), np.stack(n) * 2 + 1)
    ((shifted, n),) = _outputs(pipe(False), 1)
    n = np.stack(n)
    np.testing.assert_array_equal(np.stack(shifted), np.where(n > 0, n + 100, n) + 2)


# ---- randomness inside branches: exact restores, global sample indices ---------------------------------


def _random_branches(batch_size=BATCH, **options):
    @pipeline_def(batch_size=batch_size, seed=11, enable_checkpointing=True, enable_conditionals=True, **options)
    def pipe():
        x = fn.external_source([[np.full(2, i + 10 * it, np.float32) for i in range(batch_size)] for it in range(3)])
        flip = fn.random.coin_flip(probability=0.4)
        if flip:
            noise = fn.random.normal(x, stddev=0.1)
            low = fn.random.uniform(range=[0.0, 1.0])
            y = x + noise * low
        elif x[0] > 12.0:
            y = fn.random.uniform(x, range=[-1.0, 0.0])
        else:
            y = x * 0.0
        counter = fn.external_source(lambda info: np.int64(info.iteration), batch=False)
        return y, counter, flip

    return pipe()


def test_random_operators_in_branches_restore_exactly():
    assert_equal_output_after_checkpoint(_random_branches, steps=9)


def test_outputs_do_not_depend_on_threads_or_prefetching():
    variants = [{"num_threads": 1, "prefetch_queue_depth": 1}, {"num_threads": 3}, {"prefetch_queue_depth": 4}]
    assert_same_output(_random_branches, variants, steps=7)


def _dtype(op):
    return np.int32 if op is fn.random.coin_flip else np.float32


def _sampled(op, mask, shapes, per_sample_arg):
    """(values inside a conditional for the samples taking it, values of the same op without one)."""
    batch = len(mask)
    data = [np.ones(shapes[i], np.float32) * i for i in range(batch)]

    def define(conditional):
        @pipeline_def(batch_size=batch, seed=3, enable_conditionals=conditional)
        def pipe():
            x = fn.external_source([data])
            per_sample = per_sample_arg and op is fn.random.normal
            kwargs = {"mean": fn.random.uniform(range=[0.0, 1.0], seed=9)} if per_sample else {}
            if conditional:
                pred = fn.external_source([[np.array(m) for m in mask]])
                if pred:
                    y = op(x, name="under_test", **kwargs)
                else:
                    y = fn.cast(x * 0.0 - 1.0, dtype=_dtype(op))
                return y
            return op(x, name="under_test", **kwargs)

        (out,) = pipe().run()
        return [np.asarray(s) for s in out]

    return define(True), define(False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mask=st.lists(st.booleans(), min_size=1, max_size=12),
    ragged=st.booleans(),
    op=st.sampled_from(["normal", "uniform", "beta", "coin_flip"]),
    per_sample_arg=st.booleans(),
)
def test_random_op_in_a_branch_draws_what_it_draws_outside(mask, ragged, op, per_sample_arg):
    """For every sample taking the branch, a random operator gives exactly what the operator with the same
    name and seed gives that sample without conditionals (whatever the split, ragged shapes too)."""
    shapes = [(1 + (i % 3 if ragged else 2), 2) for i in range(len(mask))]
    inside, outside = _sampled(getattr(fn.random, op), np.array(mask), shapes, per_sample_arg)
    for i, taken in enumerate(mask):
        if taken:
            assert inside[i].tobytes() == outside[i].tobytes() and inside[i].dtype == outside[i].dtype, i
        else:
            np.testing.assert_array_equal(inside[i], np.full(shapes[i], -1, _dtype(getattr(fn.random, op))))


@settings(max_examples=50, deadline=None)
@given(
    n_words=st.sampled_from([1, 3, 8, 9, 64, 65, 130]),
    picks=st.lists(st.booleans(), min_size=0, max_size=40),
    first=st.integers(0, 2**40),
    shuffle=st.booleans(),
)
def test_stream_at_indices_matches_dense_rows(n_words, picks, first, shuffle):
    dense = Stream(99, first, len(picks)).words(n_words, purpose=2)
    idx = np.flatnonzero(np.array(picks, dtype=bool))
    if shuffle:
        idx = idx[::-1]
    got = Stream.at(99, idx + first).words(n_words, purpose=2)
    assert got.shape == (len(idx), n_words) and got.dtype == np.uint32
    np.testing.assert_array_equal(got, dense[idx])


def test_empty_branch_runs_operators_on_no_samples():
    @pipeline_def(batch_size=4, seed=1, enable_conditionals=True)
    def pipe():
        x = fn.external_source(lambda info: np.float32(info.idx_in_batch), batch=False)
        if x > 100.0:
            y = fn.random.normal(x) + fn.python_function(x, function=lambda s: s * 2)
        else:
            y = x
        return y

    (out,) = pipe().run()
    np.testing.assert_array_equal(np.asarray(out), np.arange(4, dtype=np.float32))


def test_names_and_checkpoint_structure_are_stable():
    pipe = _random_branches()
    again = _random_branches()
    assert pipe.operators == again.operators
    assert any(name.startswith("_conditional.split") for name in pipe.operators)
    assert any(name.startswith("_conditional.merge") for name in pipe.operators)


def test_restore_checks_the_conditional_structure():
    pipe = _random_branches()
    pipe.run()
    blob = pipe.checkpoint()

    @pipeline_def(batch_size=BATCH, seed=11, enable_checkpointing=True, enable_conditionals=True)
    def other():
        x = fn.external_source([[np.full(2, i, np.float32) for i in range(BATCH)]] * 3)
        return x, x, x

    with pytest.raises(pipestate.CheckpointMismatchError):
        other(checkpoint=blob)
