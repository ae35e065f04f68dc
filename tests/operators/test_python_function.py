import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from pipestate.testing import assert_equal_output_after_checkpoint, assert_same_output


@pipeline_def(batch_size=4, seed=3, enable_checkpointing=True)
def flips():
    x = fn.random.uniform(shape=[3])
    f = fn.random.coin_flip()
    y, z = fn.python_function(x, f, function=lambda a, b: (a[::-1] if b else a, a.sum()), num_outputs=2)
    return x, y, z


def test_per_sample_function():
    x, y, z = flips().run()
    for i in range(4):
        assert np.array_equal(y[i], x[i][::-1]) or np.array_equal(y[i], x[i])
        assert np.isclose(z[i], x[i].sum())


def test_batch_processing():
    @pipeline_def(batch_size=3, seed=1)
    def p():
        x = fn.random.uniform(shape=[2])
        return x, fn.python_function(x, function=lambda xs: [s * 2 for s in xs], batch_processing=True)

    x, y = p().run()
    assert np.array_equal(y.as_array(), x.as_array() * 2)


def test_conformance_and_thread_independence():
    assert_equal_output_after_checkpoint(flips, steps=6)
    assert_same_output(flips, [{"num_threads": 1}, {"num_threads": 4}])


def test_errors_name_the_operator():
    @pipeline_def(batch_size=2, seed=1)
    def p():
        return fn.python_function(fn.random.uniform(), function=lambda x: 1 / 0, name="divide")

    with pytest.raises(OperatorError, match="'divide'.*ZeroDivisionError") as info:
        p().run()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
