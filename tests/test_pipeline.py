"""The definition layer and the pipeline lifecycle."""

import numpy as np
import pytest

from pipestate import Batch, Pipeline, PipestateError, fn, pipeline_def, types


@pipeline_def(batch_size=4, seed=7)
def two_outputs(scale=2.0):
    u = fn.random.uniform(range=[0.0, 1.0], shape=[3])
    return u * scale, fn.random.coin_flip()


def test_run_returns_one_batch_per_output():
    p = two_outputs()
    u, flip = p.run()
    assert isinstance(u, Batch) and len(u) == 4
    assert u.as_array().shape == (4, 3) and u.as_array().dtype == np.float32
    assert flip.as_array().shape == (4,) and flip.as_array().dtype == np.int32
    assert ((u.as_array() >= 0) & (u.as_array() < 2)).all()
    p.close()


def test_bare_decorator_and_call_time_options_override():
    @pipeline_def
    def bare():
        return fn.random.uniform()

    p = bare(batch_size=3, seed=1)
    assert p.batch_size == 3 and len(p.run()[0]) == 3
    q = two_outputs(batch_size=6, seed=1)
    assert q.batch_size == 6 and q.seed == 1


def test_function_arguments_reach_the_definition():
    a = two_outputs(scale=1.0).run()[0].as_array()
    b = two_outputs(scale=10.0).run()[0].as_array()
    assert np.allclose(b, a * 10)


def test_parameter_named_like_an_option_is_a_type_error():
    with pytest.raises(TypeError, match="batch_size"):

        @pipeline_def(seed=1)
        def bad(batch_size):
            return fn.random.uniform()


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="unknown pipeline option"):
        pipeline_def(batch_sise=3)
    with pytest.raises(TypeError, match="unknown pipeline option"):
        Pipeline(batch_size=2, exec_asynk=True)


@pytest.mark.parametrize(
    "options,match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2, "num_threads": 0}, "num_threads"),
        ({"batch_size": 2, "prefetch_queue_depth": 0}, "prefetch_queue_depth"),
        ({"batch_size": 2, "prefetch_queue_depth": 2**31}, "prefetch_queue_depth"),  # DALI's limit: int32
        ({"batch_size": 2, "num_threads": -1}, "num_threads"),  # DALI refuses it too (was taken as 1)
        ({"batch_size": 2**32}, "batch_size"),
        ({"batch_size": 2, "seed": 2**63}, "seed"),
    ],
)
def test_bad_options_name_the_option(options, match):
    with pytest.raises(ValueError, match=match):
        Pipeline(**options)


def test_pipeline_used_directly_with_set_outputs():
    p = Pipeline(batch_size=2, seed=3)
    with p:
        x = fn.random.normal(shape=[2])
        p.set_outputs(x, -x)
    a, b = p.run()
    assert np.array_equal(a.as_array(), -b.as_array())
    # After the definition, `with` closes the pipeline on exit.
    with p:
        p.run()
    with pytest.raises(PipestateError, match="closed"):
        p.run()


def test_fn_outside_a_definition_gives_a_detached_node_as_in_dali():
    node = fn.random.uniform()
    assert node.op.graph is None and "detached" in repr(node)


def test_auto_names_are_stable_and_user_names_win():
    @pipeline_def(batch_size=1, seed=0)
    def named():
        a = fn.random.uniform()
        b = fn.random.uniform(name="second")
        c = fn.random.uniform()
        return a + b + c

    assert (
        named().operators
        == named().operators
        == [
            "random.uniform_0",
            "second",
            "random.uniform_1",
            "arithmetic_0",
            "arithmetic_1",
        ]
    )


def test_duplicate_names_are_rejected():
    @pipeline_def(batch_size=1, seed=0)
    def dup():
        return fn.random.uniform(name="x") + fn.random.normal(name="x")

    with pytest.raises(ValueError, match="name='x'"):
        dup()


def test_unknown_argument_lists_valid_ones():
    @pipeline_def(batch_size=1, seed=0)
    def typo():
        return fn.random.uniform(rnage=[0, 1])

    with pytest.raises(TypeError, match="rnage.*valid arguments"):
        typo()


def test_datanode_has_no_truth_value():
    @pipeline_def(batch_size=1, seed=0)
    def branchy():
        u = fn.random.uniform()
        if u:
            return u
        return u

    with pytest.raises(TypeError, match="truth value"):
        branchy()


def test_build_is_optional_and_idempotent():
    p = two_outputs()
    p.build()
    p.build()
    assert len(p.run()) == 2
    p.close()
    p.close()


@pytest.mark.parametrize(
    "samples",
    [
        [np.frombuffer(bytes([i]) * 5, np.uint8) for i in range(4)],  # read-only buffers, as file readers give
        [np.arange(6, dtype=">i4").reshape(2, 3) + i for i in range(3)],  # non-native byte order
        [np.arange(12.0).reshape(3, 4).T + i for i in range(3)],  # not C-contiguous
        [np.array(["a", "bc"], dtype=object), np.array(["d", "e"], dtype=object)],
        [np.array(i, np.float16) for i in range(3)],  # 0-d samples
        [np.zeros((2, 0), np.int32)] * 2,
    ],
    ids=["uint8", "big-endian", "transposed", "object", "0-d", "empty"],
)
def test_batch_as_array_equals_np_stack(samples):
    stacked = Batch(samples).as_array()
    expected = np.stack(samples)
    assert stacked.dtype == expected.dtype and stacked.shape == expected.shape
    assert np.array_equal(stacked, expected)
    stacked[0] = stacked[1]  # writable, like np.stack's result
    assert np.array_equal(stacked[0], expected[1])


def test_batch_api():
    dense = Batch(np.arange(6).reshape(3, 2))
    assert len(dense) == 3 and dense[1].tolist() == [2, 3] and dense.at(2).tolist() == [4, 5]
    assert [s.tolist() for s in dense] == [[0, 1], [2, 3], [4, 5]]
    assert np.asarray(dense).shape == (3, 2) and dense.is_dense_tensor()
    assert np.asarray(dense, dtype=np.float32).dtype == np.float32
    ragged = Batch([np.zeros(2), np.zeros(3)])
    assert not ragged.is_dense_tensor() and ragged.shape() == [(2,), (3,)]
    with pytest.raises(ValueError, match="differ in shape"):
        ragged.as_array()
    assert Batch.from_samples([np.ones(2), np.ones(2)]).as_array().shape == (2, 2)


def test_types_map_to_numpy():
    assert types.to_numpy_dtype(types.FLOAT) == np.float32
    assert types.to_numpy_dtype("int16") == np.int16
    with pytest.raises(TypeError, match="not supported"):
        types.to_numpy_dtype(np.complex64)


def test_random_seed_when_none_given_differs_between_pipelines():
    a = two_outputs(seed=None)
    b = two_outputs(seed=-1)
    assert a.seed != b.seed
    assert not np.array_equal(a.run()[0].as_array(), b.run()[0].as_array())
