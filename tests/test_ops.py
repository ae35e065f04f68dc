"""DALI's class-style ``ops`` namespace: built from the registry, DALI's argument rules, the same graph as ``fn``."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate import Pipeline, fn, ops, pipeline_def, types
from pipestate.operators import REGISTRY, Example, Operator, register, unregister


def test_every_operator_has_its_class_and_its_aliases():
    assert ops.readers.File.op_class is REGISTRY["readers.file"]
    assert ops.random.CoinFlip.op_class is REGISTRY["random.coin_flip"]
    assert ops.readers.TFRecord.op_class is REGISTRY["readers.tfrecord"]
    assert ops.io.file.Read.op_class is REGISTRY["io.file.read"]
    assert ops.Cast.op_class is REGISTRY["cast"] and ops.PythonFunction.op_class is REGISTRY["python_function"]
    assert ops.FileReader.op_class is REGISTRY["readers.file"] and ops.Uniform.op_class is REGISTRY["random.uniform"]
    assert ops.MXNetReader.schema_name == "MXNetReader" and ops.readers.MXNet.schema_name == "readers__MXNet"
    assert {"readers__File", "FileReader", "random__CoinFlip", "CoinFlip", "ExternalSource"} <= ops.cpu_ops()
    assert ops.gpu_ops() == ops.mixed_ops() == set()
    assert not hasattr(ops, "ImageDecoder") or "decoders.image" in REGISTRY  # an alias waits for its operator
    assert "Args:" in ops.random.Uniform.__doc__


def test_operators_registered_later_appear_and_go():
    @register
    class Twice(Operator):
        """Twice the input."""

        type = "example.times_two_mfcc"
        EXAMPLE = Example(dali="none: a test operator")

        def run(self, ctx, inputs, arg_inputs):
            return (inputs[0],)

    try:
        assert ops.example.TimesTwoMFCC.op_class is Twice  # DALI's acronyms too
    finally:
        unregister("example.times_two_mfcc")
    assert not hasattr(ops.example, "TimesTwoMFCC")


def _class_style(**kwargs):
    class P(Pipeline):
        def __init__(self, **kw):
            super().__init__(batch_size=3, num_threads=2, device_id=None, seed=5, **kw)
            self.uniform = ops.random.Uniform(range=[0.0, 1.0])
            self.coin = ops.random.CoinFlip(probability=0.25)
            self.cast = ops.Cast(dtype=types.INT32)
            self.normal = ops.random.Normal(stddev=2.0)

        def define_graph(self):
            a, b = self.uniform(), self.uniform()  # one object, two operators
            return a, b, self.cast(a * 10), self.coin(), self.normal(mean=self.uniform())  # a DataNode argument

    return P(**kwargs)


@pipeline_def(batch_size=3, num_threads=2, device_id=None, seed=5)
def _fn_style():
    a, b = fn.random.uniform(range=[0.0, 1.0]), fn.random.uniform(range=[0.0, 1.0])
    cast, coin = fn.cast(a * 10, dtype=types.INT32), fn.random.coin_flip(probability=0.25)
    return a, b, cast, coin, fn.random.normal(mean=fn.random.uniform(range=[0.0, 1.0]), stddev=2.0)


def test_class_style_is_the_same_pipeline_as_fn():
    """Same operators and names (by creation order, as fn names them), same fingerprint, same outputs, and
    checkpoints that restore into each other."""
    ours, theirs = _class_style(enable_checkpointing=True), _fn_style(enable_checkpointing=True)
    ours.build()
    assert ours.operators == theirs.operators
    assert ours.operators[:2] == ["random.uniform_0", "random.uniform_1"]
    assert ours.fingerprint == theirs.fingerprint
    for _ in range(2):
        for x, y in zip(ours.run(), theirs.run()):
            np.testing.assert_array_equal(x.as_array(), y.as_array())
    restored = _fn_style(enable_checkpointing=True, checkpoint=ours.checkpoint())
    for x, y in zip(ours.run(), restored.run()):
        np.testing.assert_array_equal(x.as_array(), y.as_array())


def test_arguments_are_merged_as_dali_merges_them():
    with pytest.raises(ValueError, match="`range` was already specified in __init__"):
        with Pipeline(batch_size=1):
            ops.random.Uniform(range=[0, 1])(range=[0, 2])
    with pytest.raises(ValueError, match="`name` was already specified"):
        with Pipeline(batch_size=1):
            ops.random.Uniform(name="u")(name="v")
    with pytest.raises(TypeError, match="ops.random.Uniform\\(\\) got unexpected argument"):
        ops.random.Uniform(rnage=[0, 1])
    with pytest.raises(TypeError, match="range"):
        ops.random.Uniform(range="wide")
    with pytest.raises(ValueError, match="pipestate runs on the CPU"):
        ops.random.Uniform(device="gpu")
    with pytest.raises(TypeError, match="must be a constant"):
        with Pipeline(batch_size=1):
            ops.Cast(dtype=fn.random.uniform())
    pipe = Pipeline(batch_size=2, seed=1)
    with pipe:
        uniform = ops.random.Uniform(name="u", range=[5, 6])
        pipe.set_outputs(uniform(shape=[2]), ops.Cast(dtype=types.UINT8)(np.array([1.6, 300.0])))
    assert pipe.operators == ["u", "constant_0", "cast_0"]
    values, cast = pipe.run()
    assert values.as_array().shape == (2, 2) and (values.as_array() >= 5).all()
    assert cast.as_array().tolist() == [[2, 255], [2, 255]]
    with pytest.raises(ValueError, match="'u' is used by two operators"):  # one name, two calls (DALI: at build)
        with Pipeline(batch_size=1):
            u = ops.random.Uniform(name="u")
            u(), u()


def test_deprecated_aliases_warn_as_dali():
    pipe = Pipeline(batch_size=1, seed=1)
    with pipe, pytest.warns(DeprecationWarning, match="`pipestate.ops.CoinFlip` is now deprecated. Use `pipestate.fn"):
        pipe.set_outputs(ops.CoinFlip()())
    assert pipe.operators == ["random.coin_flip_0"]  # the same operator as ops.random.CoinFlip
    with pytest.warns(DeprecationWarning, match="pipestate.fn.coin_flip"):
        with Pipeline(batch_size=1):
            fn.coin_flip()


def test_external_source_follows_dalis_rules():
    data = [np.full((2,), i, np.int32) for i in range(4)]
    with pytest.raises(ValueError, match="num_outputs"):
        ops.ExternalSource(name="x", num_outputs=2)
    with pytest.raises(RuntimeError, match="source"), Pipeline(batch_size=2):
        ops.ExternalSource(source=[data])(source=[data])
    with pytest.raises(RuntimeError, match="layout"), Pipeline(batch_size=2):
        ops.ExternalSource(layout="W")(source=[data], layout="W")
    with pytest.raises(ValueError, match="batch"), Pipeline(batch_size=2):
        ops.ExternalSource(batch=True)(source=[data], batch=True)
    with pytest.raises(ValueError, match="cycle"), Pipeline(batch_size=2):
        ops.ExternalSource(source=[data])(cycle=True)
    pipe = Pipeline(batch_size=2)
    with pipe:
        two = ops.ExternalSource(source=lambda i: ([data[i], data[i]], [data[i], data[i]]), num_outputs=2)
        first, second = two()
        named = ops.ExternalSource(layout="W")
        pipe.set_outputs(first, second, named(source=[data[:2], data[2:]], name="named"))
    assert pipe.operators == ["external_source_0", "named"]
    a, b, c = pipe.run()
    assert a.as_array().tolist() == [[0, 0], [0, 0]] and c.layout() == "W"


def test_compose_chains_operators():
    pipe = Pipeline(batch_size=2, seed=3)
    with pipe:
        chain = ops.Compose([ops.Cast(dtype=types.FLOAT), ops.Cast(dtype=types.UINT8)])
        pipe.set_outputs(chain(fn.random.uniform(range=[0, 300])), ops.Compose([ops.Cast(dtype=types.INT8)])(5))
    out, single = pipe.run()
    assert out.dtype == np.uint8 and single.dtype == np.int8
    assert pipe.operators == ["random.uniform_0", "cast_0", "cast_1", "constant_0", "cast_2"]


def test_python_function_takes_its_function_positionally():
    pipe = Pipeline(batch_size=2)
    with pipe:
        pipe.set_outputs(ops.PythonFunction(lambda x: x + 1)(types.Constant(np.arange(3))))
    assert pipe.run()[0].as_array().tolist() == [[1, 2, 3], [1, 2, 3]]
