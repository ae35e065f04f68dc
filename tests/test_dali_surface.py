"""DALI's smaller public names: types.Constant / ScalarConstant and type conversions, pipestate.tensors,
pipeline.experimental.pipeline_def, Pipeline's positional options in DALI's order."""

from __future__ import annotations

import numpy as np
import pytest

from pipestate import Batch, Pipeline, fn, pipeline_def, types
from pipestate.pipeline import experimental
from pipestate.tensors import TensorCPU, TensorGPU, TensorListCPU, TensorListGPU


def test_scalar_constants_and_conversions():
    c = types.Constant(15)
    assert isinstance(c, types.ScalarConstant) and c.dtype == types.INT32 and c.value == 15
    assert c.float32().dtype == types.FLOAT and c.float32().value == 15.0 and c.uint8() == types.Constant(15).uint8()
    assert types.Constant(1.5).dtype == types.FLOAT and types.Constant(True).dtype == types.BOOL
    assert types.Constant(np.int16(3)).dtype == types.INT16 and str(c.float32()) == "15.0:DALIDataType.FLOAT"
    assert int(c) == 15 and bool(c)
    with pytest.raises(TypeError, match="float"):
        bool(types.Constant(1.5))
    with pytest.raises(TypeError, match="scalar"):
        types.ScalarConstant("a")
    assert types.to_dali_type(np.uint8) == types.UINT8 and types.to_dali_type("float64") == types.FLOAT64
    assert types.to_dali_type(np.dtype("int16")) == types.INT16 and types.to_numpy_type(types.FLOAT) is np.float32
    with pytest.raises(TypeError, match="could not be converted"):
        types.to_dali_type("complex64")
    assert types.INTERP_LINEAR == types.DALIInterpType.INTERP_LINEAR == 1 and types.NHWC == "HWC"
    assert types.YCbCr == 3 and types.TensorLayout("HWC") == "HWC"


def _typed_outputs(lib):
    @lib.pipeline_def(batch_size=2, num_threads=1, device_id=None, seed=1)
    def pipe():
        x = lib.fn.external_source(source=lambda i: [np.array([3, 250], np.uint8)] * 2, dtype=lib.types.UINT8)
        return (
            x + lib.types.Constant(1).uint8(),
            x * lib.types.Constant(2).float64(),
            lib.types.Constant(300).int16() - x,
            x + lib.types.Constant(7),
            lib.types.Constant(5),
            lib.types.Constant([1, 2], layout="W"),
            lib.fn.cast(lib.types.Constant(1.5), dtype=lib.types.INT32),
        )

    p = pipe()
    p.build()
    return [(np.array(out.at(0)), out.layout()) for out in p.run()]


def test_constants_compute_as_in_dali():
    ours = _typed_outputs(__import__("pipestate"))
    assert [a.dtype for a, _ in ours][:4] == [np.uint8, np.float64, np.int16, np.int32]
    dali = pytest.importorskip("nvidia.dali", reason="the comparison with DALI needs DALI")
    for (a, layout), (b, their_layout) in zip(ours, _typed_outputs(dali)):
        assert a.dtype == b.dtype and layout == their_layout
        np.testing.assert_array_equal(a, b)


def test_tensors_for_isinstance_checks():
    pipe = Pipeline(batch_size=2, seed=1)
    with pipe:
        pipe.set_outputs(fn.random.uniform(shape=[3]))
    (out,) = pipe.run()
    assert TensorListCPU is Batch and isinstance(out, TensorListCPU) and not isinstance(out, TensorListGPU)
    t = TensorCPU(out.at(1), "W")
    assert t.shape() == [3] and t.layout() == "W" and t.dtype == np.float32 and t.ndim() == 1
    np.testing.assert_array_equal(np.asarray(t), out.at(1))
    assert TensorListCPU([t, TensorCPU(out.at(0))], "W").shape() == [(3,), (3,)]
    with pytest.raises(TypeError, match="CPU"):
        TensorGPU(out.at(0))


def test_experimental_pipeline_def():
    @experimental.pipeline_def(batch_size=2, seed=1)
    def pipe():
        return fn.random.coin_flip()

    assert pipe().run()[0].dtype == np.int32
    with pytest.raises(ValueError, match="debug"):
        experimental.pipeline_def(batch_size=2, debug=True)
    assert experimental.pipeline_def.__module__ == "pipestate.pipeline.experimental"


def test_pipeline_options_in_dalis_positional_order():
    pipe = Pipeline(2, 3, None, 5, False, 4, False)  # batch_size, num_threads, device_id, seed, exec_pipelined, ...
    assert (pipe.batch_size, pipe.num_threads, pipe.prefetch_queue_depth) == (2, 3, 4)
    assert pipe.options.extra == {"exec_pipelined": False, "exec_async": False}
    with pytest.raises(TypeError, match="exec_async"):
        Pipeline(2, 1, None, 5, True, 2, "no")

    @pipeline_def(batch_size=2, output_layout="W", concurrency=None)
    def layout():
        return fn.constant(idata=[1, 2], layout="W")

    assert layout().run()[0].layout() == "W"
