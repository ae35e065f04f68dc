"""Tensor plumbing against DALI (values, types, shapes and layouts, on ragged batches and with the arguments'
variants), reshape properties, and the errors each operator gives for bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pipestate
from pipestate import OperatorError, fn, pipeline_def, types


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


def compare(build, batches, layouts=None):
    """Run ``build(lib, *inputs)`` in pipestate and DALI; outputs, types, shapes and layouts must be equal."""
    dali = pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")
    mine, theirs = _run(pipestate, build, batches, layouts), _run(dali, build, batches, layouts)
    assert len(mine) == len(theirs)
    for k, ((m_out, m_layout), (d_out, d_layout)) in enumerate(zip(mine, theirs)):
        assert m_layout == d_layout, f"output {k}: layout {m_layout!r} vs DALI {d_layout!r}"
        for i, (a, d) in enumerate(zip(m_out, d_out)):
            where = f"output {k}, sample {i}"
            assert a.dtype == d.dtype and a.shape == d.shape, f"{where}: {a.dtype}{a.shape} vs DALI {d.dtype}{d.shape}"
            assert a.tobytes() == d.tobytes(), f"{where}: {a!r} vs DALI {d!r}"


def _dtype(lib, t):
    return t if lib is pipestate else lib.types.to_dali_type(np.dtype(t).type)


U8 = [np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.arange(12, dtype=np.uint8).reshape(1, 3, 4) + 100]


def test_reshape_and_reinterpret_variants_equal_dalis():
    def build(lib, x, s):
        f = lib.fn
        return (
            f.reshape(x, shape=[-1]),
            f.reshape(x, shape=[3, -1, 4]),
            f.reshape(x, shape=[-2, 12]),
            f.reshape(x, rel_shape=[1, -1]),
            f.reshape(x, rel_shape=[1, 1, 0.5, -1]),
            f.reshape(x, rel_shape=[0.5, -1]),
            f.reshape(x, src_dims=[2, 1, 0]),
            f.reshape(x, src_dims=[0, -1, 1, 2], rel_shape=[1, 1, 1, 1]),
            f.reshape(x, src_dims=[2, 0], rel_shape=[1, -1]),
            f.reshape(x, layout="ABC"),
            f.reshape(x, shape=[-1], layout="X"),
            f.reshape(x, shape=[3, -1, 4], layout=""),
            f.reshape(f.reshape(x, layout=""), s),
            f.reshape(f.reshape(x, layout=""), shape=s),
            f.reinterpret(x, dtype=_dtype(lib, np.int16)),
            f.reinterpret(x, dtype=_dtype(lib, np.int32), shape=[-1]),
            f.reinterpret(x, dtype=_dtype(lib, np.int16), shape=[3, -1]),
            f.reinterpret(x, layout="XYZ"),
        )

    shapes = [np.array([4, 6], np.int32), np.array([2, -1], np.int32)]
    compare(build, [U8, shapes], ["HWC", None])


def test_squeeze_expand_dims_and_transpose_variants_equal_dalis():
    def build(lib, y, x):
        f = lib.fn
        return (
            f.squeeze(y, axes=[0, 2]),
            f.squeeze(y, axis_names="DW"),
            f.squeeze(y, axes=[]),
            f.expand_dims(x, axes=[0]),
            f.expand_dims(x, axes=[0, 4], new_axis_names="FZ"),
            f.expand_dims(x, axes=[1, 0], new_axis_names="AB"),
            f.expand_dims(x, axes=[]),
            f.transpose(x, perm=[2, 0, 1]),
            f.transpose(x),
            f.transpose(x, perm=[2, 0, 1], transpose_layout=False),
            f.transpose(x, perm=[1, 2, 0], output_layout="ABC"),
            f.transpose(y, perm=[3, 1, 0, 2]),
        )

    y = [np.arange(6, dtype=np.float32).reshape(1, 3, 1, 2), np.arange(10, dtype=np.float32).reshape(1, 5, 1, 2)]
    compare(build, [y, U8], ["DHWC", "HWC"])


def test_shapes_copy_and_get_property_equal_dalis():
    def build(lib, x, s):
        f = lib.fn
        outs = [f.shapes(x), f.shapes(s), f.copy(x), f.get_property(x, key="layout"), f.get_property(s, key="layout")]
        outs += [f.shapes(x, dtype=_dtype(lib, t)) for t in ("int32", "uint32", "uint64", "float32", "float64")]
        return outs + [f.get_property(x, key="source_info")]

    compare(build, [U8, [np.float32(1), np.float32(2)]], ["HWC", None])


def test_source_info_of_read_files_equals_dalis(tmp_path):
    names = []
    for i in range(3):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(bytes(range(i + 3)))
        names.append(str(path))

    def build(lib):
        data, _ = lib.fn.readers.file(files=names)
        return lib.fn.get_property(data, key="source_info"), lib.fn.get_property(lib.fn.copy(data), key="source_info")

    dali = pytest.importorskip("nvidia.dali", reason="DALI (nvidia-dali-cuda120) is not installed")
    outs = []
    for lib in (pipestate, dali):
        p = lib.pipeline_def(build, batch_size=3, num_threads=1, device_id=None, seed=1)(lib)
        p.build()
        outs.append([[bytes(np.array(s)) for s in o] for o in p.run()])
    assert outs[0] == outs[1] == [[n.encode() for n in names]] * 2


def test_cat_and_stack_variants_equal_dalis():
    def build(lib, a, b, c):
        f = lib.fn
        return (
            f.cat(a, b),
            f.cat(a, c, axis=1),
            f.cat(a, b, axis=-1),
            f.cat(a, c, axis_name="W"),
            f.cat(a),
            f.cat(a, a, b),
            f.stack(a, b),
            f.stack(a, b, axis=2),
            f.stack(a, b, axis=1, axis_name="C"),
            f.stack(a, b, axis=-1),
            f.stack(a, b, a, axis_name="N"),
        )

    a = [np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(3, dtype=np.float32).reshape(1, 3)]
    b = [x + 100 for x in a]
    c = [np.ones((2, 5), np.float32), np.ones((1, 1), np.float32)]
    compare(build, [a, b, c], ["HW", None, "HW"])


def test_sequence_operators_equal_dalis():
    def build(lib, s, t):
        f = lib.fn
        return (
            *f.element_extract(s, element_map=[1, 0]),
            f.element_extract(t, element_map=[1]),
            f.per_frame(t),
            f.per_frame(s),
            f.per_frame(f.reshape(s, layout="HWC"), replace=True),
            f.sequence_rearrange(s, new_order=[1, 0, 0]),
            f.sequence_rearrange(t, new_order=f.cast(f.shapes(t)[0:1] - 1, dtype=_dtype(lib, np.int32))),
            f.permute_batch(s, indices=[1, 1]),
            f.permute_batch(t, indices=f.cast(f.shapes(t)[0] - 1, dtype=_dtype(lib, np.int32)) % 2),
        )

    s = [np.arange(24, dtype=np.uint8).reshape(4, 3, 2), np.arange(12, dtype=np.uint8).reshape(2, 3, 2)]
    t = [np.arange(12, dtype=np.int16).reshape(2, 6), np.arange(15, dtype=np.int16).reshape(3, 5)]
    compare(build, [s, t], ["FHW", None])


def test_fills_equal_dalis():
    def build(lib, v, w, x):
        f = lib.fn
        return (
            f.full(v, shape=[2, 2]),
            f.full(v, shape=[2, 2], layout="HW"),
            f.full(v),
            f.full(w, shape=[3, 2]),
            f.full(v, shape=[0, 2]),
            f.full_like(x, v),
            f.full_like(x, f.cast(v * 100, dtype=_dtype(lib, np.int16))),
            f.zeros_like(x),
            f.ones_like(x, dtype=_dtype(lib, np.float32)),
            f.ones_like(x, dtype=_dtype(lib, np.bool_)),
            f.zeros(shape=[2, 3]),
            f.ones(shape=[2], dtype=_dtype(lib, np.uint8), layout="X"),
            f.zeros(),
            f.ones(shape=f.cast(f.shapes(x), dtype=_dtype(lib, np.int32)), dtype=_dtype(lib, np.float32)),
        )

    v = [np.array(3.5, np.float32), np.array(-2.7, np.float32)]
    w = [np.array([1, 2], np.int32), np.array([3, 4], np.int32)]
    x = [np.zeros((2, 3), np.uint8), np.zeros((1, 2), np.uint8)]
    compare(build, [v, w, x], [None, None, "HW"])


def test_lookup_table_and_one_hot_variants_equal_dalis():
    def build(lib, i, c, g):
        f = lib.fn
        keys, values = [0, 2, 3, 4, 5, 3], [0.2, 0.4, 0.5, 0.6, 0.7, 0.1]
        return (
            f.lookup_table(i, keys=keys, values=values, default_value=0.99),
            f.lookup_table(i, keys=[1], values=[7], dtype=_dtype(lib, np.uint8), default_value=300),
            f.lookup_table(i, keys=[1], values=[-2.6], dtype=_dtype(lib, np.int8), default_value=-2.5),
            f.lookup_table(f.cast(i, dtype=_dtype(lib, np.uint8)), keys=[1, 255], values=[7, 8]),
            f.lookup_table(i, keys=[0], values=[1e10], dtype=_dtype(lib, np.int32)),
            f.lookup_table(i, keys=[0], values=[1.7], dtype=_dtype(lib, np.float16)),
            f.lookup_table(i),
            f.one_hot(c, num_classes=3),
            f.one_hot(c, num_classes=3, axis=0, axis_name="C"),
            f.one_hot(c, num_classes=3, axis_name="C"),
            f.one_hot(c, num_classes=3, dtype=_dtype(lib, np.uint8), on_value=300.7, off_value=-1.5),
            f.one_hot(f.cast(c, dtype=_dtype(lib, np.float32)) * 0.9, num_classes=4),
            f.one_hot(g, num_classes=4),
            f.one_hot(g, num_classes=4, axis=0),
            f.one_hot(c),
        )

    i = [np.array([[0, 1, 2], [3, 1, 0]], np.int32), np.array([[5, -1, 70000]], np.int32)]
    c = [np.array([0, 2, 1], np.int32), np.array([3, -1], np.int32)]
    g = [np.array([1], np.int32), np.array([3], np.int32)]
    compare(build, [i, c, g], [None, "X", None])


# ---- properties ----------------------------------------------------------------------------------------
def _one(build, sample, layout=None):
    @pipeline_def(batch_size=1, num_threads=1)
    def p():
        return build(fn.external_source(source=lambda: [sample], layout=layout))

    return p().run()


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int16, hnp.array_shapes(min_dims=1, max_dims=4, max_side=6)), st.data())
def test_reshape_round_trips(x, data):
    flat = data.draw(st.sampled_from([[-1], [1, -1], [-1, 1]]))
    (out, back) = _one(lambda d: (lambda r: (r, fn.reshape(r, shape=list(x.shape))))(fn.reshape(d, shape=flat)), x)
    assert np.array_equal(back[0], x) and out[0].size == x.size
    perm = data.draw(st.permutations(range(x.ndim)))
    inverse = list(np.argsort(perm))
    (t,) = _one(lambda d: fn.transpose(fn.transpose(d, perm=list(perm)), perm=inverse), x)
    assert np.array_equal(t[0], x)


# ---- errors -------------------------------------------------------------------------------------------
X = np.zeros((2, 3, 4), np.float32)


@pytest.mark.parametrize(
    "build, layout, error, message",
    [
        (lambda x: fn.reshape(x, shape=[5, -1]), None, OperatorError, r"does not hold the 96 bytes"),
        (lambda x: fn.reshape(x, shape=[-1, -1]), None, ValueError, "more than one negative extent"),
        (lambda x: fn.reshape(x, shape=[0, -1]), None, ValueError, "an extent of 0"),
        (lambda x: fn.reshape(x, shape=[2, 12], rel_shape=[1, -1]), None, ValueError, "mutually exclusive"),
        (lambda x: fn.reshape(x), None, ValueError, "does nothing"),
        (lambda x: fn.reshape(x, layout="AB"), "HWC", OperatorError, "layout='AB' has 2 letters"),
        (lambda x: fn.reshape(x, rel_shape=[1, 1, 0.5, 2]), None, OperatorError, "use src_dims"),
        (lambda x: fn.reshape(x, src_dims=[3, 0]), None, OperatorError, r"src_dims=\[3, 0\]: 3 is not an axis"),
        (lambda x: fn.reinterpret(x[:, :, 1:], dtype=types.FLOAT64), None, OperatorError, "not a whole number"),
        (lambda x: fn.squeeze(x, axes=[1]), None, OperatorError, "axis 1 has extent 3"),
        (lambda x: fn.squeeze(x, axes=[5]), None, OperatorError, r"5 is not an axis .* \(0\.\.2\)"),
        (lambda x: fn.squeeze(x, axes=[-1]), None, OperatorError, "-1 is not an axis"),
        (lambda x: fn.squeeze(x), None, ValueError, "exactly one of axes= or axis_names="),
        (lambda x: fn.squeeze(x, axis_names="X"), "HWC", OperatorError, "axis 'X' is not in the input's layout"),
        (lambda x: fn.expand_dims(x, axes=[4]), None, OperatorError, "4 is past the last axis"),
        (lambda x: fn.expand_dims(x, axes=[0, 0]), None, ValueError, "lists a position twice"),
        (lambda x: fn.expand_dims(x, axes=[0], new_axis_names="AB"), "HWC", ValueError, "one letter per axis"),
        (
            lambda x: fn.expand_dims(x, axes=[0], new_axis_names="A"),
            None,
            OperatorError,
            "needs an input with a layout",
        ),
        (lambda x: fn.transpose(x, perm=[2, 0]), None, OperatorError, r"perm=\[2, 0\] is not a permutation"),
        (lambda x: fn.transpose(x, output_layout="AB"), None, OperatorError, "output_layout='AB' has 2 letters"),
        (lambda x: fn.shapes(x, dtype=types.UINT8), None, TypeError, "dtype=uint8 is not supported"),
        (lambda x: fn.cat(x, fn.cast(x, dtype=types.FLOAT64)), None, OperatorError, "one type and number of dim"),
        (lambda x: fn.cat(x, x[0]), None, OperatorError, "one type and number of dimensions"),
        (lambda x: fn.cat(x, x[:, 1:], axis=2), None, OperatorError, r"may differ only along axis 2.*axis 1 differs"),
        (lambda x: fn.cat(x, x, axis=3), None, OperatorError, r"axis=3 is out of range .* \(valid: -3\.\.2\)"),
        (lambda x: fn.cat(x, x, axis=0, axis_name="H"), "HWC", ValueError, "cannot be used together"),
        (lambda x: fn.cat(x, x, axis_name="W"), None, OperatorError, "axis_name='W' is not an axis"),
        (lambda x: fn.stack(x, x[1:]), None, OperatorError, "stacked tensors must have one shape"),
        (lambda x: fn.stack(x, x, axis=4), None, OperatorError, r"axis=4 is out of range .* \(valid: -4\.\.3\)"),
        (lambda x: fn.stack(x, x, axis_name="CC"), None, ValueError, "single letter"),
        (lambda x: fn.stack(x, x, axis_name="C"), None, OperatorError, "needs an input layout"),
        (lambda x: fn.element_extract(x, element_map=[2]), None, OperatorError, "frame 2 is out of range"),
        (lambda x: fn.element_extract(x, element_map=[0]), "HWC", OperatorError, "must start with 'F'"),
        (lambda x: fn.sequence_rearrange(x, new_order=[0, 5]), None, OperatorError, "frame 5 is out of range"),
        (lambda x: fn.per_frame(x), "HWC", OperatorError, "pass replace=True"),
        (lambda x: fn.permute_batch(x, indices=[1]), None, OperatorError, "1 is not a sample of the batch of 1"),
        (lambda x: fn.permute_batch(x, indices=[0, 0]), None, OperatorError, "the batch has 1 samples"),
        (lambda x: fn.full(x, shape=[2, 2]), None, OperatorError, r"does not broadcast to shape \(2, 2\)"),
        (lambda x: fn.full(x, shape=[-1]), None, ValueError, r"shape\[0\]=-1 must be an int >= 0"),
        (lambda x: fn.zeros(shape=[2], layout="HW"), None, OperatorError, "layout='HW' has 2 letters"),
        (lambda x: fn.lookup_table(x, keys=[1], values=[1.0]), None, OperatorError, "input 'data' has type float32"),
        (lambda x: fn.lookup_table(x, keys=[1, 2], values=[1.0]), None, ValueError, "keys= has 2 values"),
        (lambda x: fn.lookup_table(x, keys=[70000], values=[1.0]), None, ValueError, "<= 65535"),
        (lambda x: fn.one_hot(x, num_classes=2, axis=4), None, OperatorError, r"axis=4 is out of range"),
        (lambda x: fn.one_hot(x, num_classes=2, axis_name="C"), None, OperatorError, "needs an input layout"),
    ],
)
def test_bad_arguments_are_clear_errors(build, layout, error, message):
    with pytest.raises(error, match=message):
        _one(build, X, layout)


def test_permute_batch_keeps_sources_and_layout():
    @pipeline_def(batch_size=3, num_threads=1)
    def p():
        x = fn.external_source(source=lambda: [np.full((2,), i, np.uint8) for i in range(3)], layout="W")
        return fn.permute_batch(x, indices=[2, 0, 2])

    (out,) = p().run()
    assert [int(s[0]) for s in out] == [2, 0, 2] and out.layout() == "W"


def test_a_per_sample_error_keeps_its_cause_chain_finite():
    """An operator error raised for one sample reaches the user with its cause, not chained to itself."""

    @pipeline_def(batch_size=2, num_threads=1)
    def p():
        x = fn.external_source(source=lambda: [np.zeros((2, 3), np.float32), np.zeros((2, 5), np.float32)])
        return fn.cat(x, x[:, 1:], axis=0)

    with pytest.raises(OperatorError) as info:
        p().run()
    seen, cause = set(), info.value
    while cause is not None:
        assert id(cause) not in seen, "the error's __cause__ chain loops"
        seen.add(id(cause))
        cause = cause.__cause__
    assert isinstance(info.value.__cause__, ValueError)
