"""The geometry operators against DALI's CPU operators of the same names, same inputs and arguments.

Tolerances (max difference / share of values that differ):
- exact: crop, slice, flip, pad, erase, paste, multi_paste, crop_mirror_normalize (float32 with scale 1 and
  shift 0), warp_perspective, nearest-neighbour warps and displacements, shapes and types everywhere;
- crop_mirror_normalize with scale/shift: 2e-6 (float rounding);
- resize, random crops' resizing, resize_crop_mirror, tensor_resize: 1 level on at most 0.5 % (1 % for
  resize_crop_mirror, whose source window DALI computes in another order);
- linear warps and displacements (OpenCV's 1/32-pixel weights): 1 level on at most 2 %.
"""

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def, types
from tests.operators.image._dali import assert_close, dali, run_both, test_image

pytest.importorskip("cv2")
HWC = [test_image(30 + i, 33 + 8 * i, 47 - 5 * i) for i in range(3)]
CHW = [np.ascontiguousarray(im.transpose(2, 0, 1)) for im in HWC]
FHWC = [np.stack([im, im[::-1].copy()]) for im in HWC]
F32 = [im.astype(np.float32) * 0.5 for im in HWC]
PER_SAMPLE = [np.float32(v) for v in (0.2, 0.5, 0.9)]

RESIZE = [
    dict(resize_x=31, resize_y=22),
    dict(resize_shorter=25, max_size=40),
    dict(resize_longer=61.5, interp_type=types.INTERP_CUBIC),
    dict(size=(20, 0), mode="not_larger"),
    dict(size=30, mode="not_smaller", antialias=False),
    dict(size=(25, 26), mode="stretch", min_filter=types.INTERP_LANCZOS3, mag_filter=types.INTERP_NN),
    dict(size=(18, 24), roi_start=(0.1, 0.9), roi_end=(0.8, 0.2), roi_relative=True),
    dict(resize_x=40, resize_y=30, subpixel_scale=False, interp_type=types.INTERP_GAUSSIAN),
    dict(resize_x=40, resize_y=30, dtype="FLOAT", interp_type=types.INTERP_TRIANGULAR),
]


@pytest.mark.parametrize("kw", RESIZE, ids=[str(i) for i in range(len(RESIZE))])
def test_resize_equals_dali(kw):
    dali()
    for batch, layout in ((HWC, "HWC"), (CHW, "CHW"), (FHWC, "FHWC")):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x: fn.resize(x, **{k: getattr(types, v) if k == "dtype" else v for k, v in kw.items()}),
            layout=layout,
        )
        if "dtype" in kw:  # float output: the unrounded values
            assert_close(ours, theirs, atol=0.51, where=layout)
        else:
            assert_close(ours, theirs, atol=1, fraction=0.005, where=layout)


def test_resize_per_sample_sizes_and_save_attrs_equal_dali():
    dali()
    sizes = [np.float32(v) for v in (17, 40, 23)]
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x, s: (
            *fn.resize(x, resize_x=s, save_attrs=True),
            fn.resize(x, resize_y=s, resize_x=s),
            fn.resize(x, resize_shorter=s, interp_type=types.INTERP_LINEAR),
        ),
        extra=(sizes,),
    )
    assert_close(ours, theirs, atol=1, fraction=0.005)


@pytest.mark.dali_differential("resize_crop_mirror")
def test_resize_crop_mirror_equals_dali():
    dali()
    mirror = [np.int32(v) for v in (0, 1, 3)]
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x, m, p: (
            fn.resize_crop_mirror(x, size=(35, 55), crop=(20, 20), mirror=m, crop_pos_x=p),
            fn.resize_crop_mirror(x, resize_shorter=40, crop=(21, 33), crop_pos_y=p, mirror=2),
        ),
        extra=(mirror, PER_SAMPLE),
    )
    assert_close(ours, theirs, atol=1, fraction=0.01)


def test_crop_equals_dali():
    dali()
    for batch, layout in ((HWC, "HWC"), (CHW, "CHW"), (FHWC, "FHWC")):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, p: (
                fn.crop(x, crop=(20, 21), crop_pos_x=p, crop_pos_y=0.25),
                fn.crop(x, crop_h=50, crop_w=10.7, out_of_bounds_policy="pad", fill_values=7, rounding="truncate"),
                fn.crop(x, crop=(50, 50), out_of_bounds_policy="trim_to_shape", crop_pos_x=p),
                fn.crop(x, crop=(10, 0), dtype=types.FLOAT),
            ),
            layout=layout,
            extra=(PER_SAMPLE,),
        )
        assert_close(ours, theirs, where=layout)


def test_crop_mirror_normalize_equals_dali():
    dali()
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    mirror = [np.int32(v) for v in (1, 0, 1)]
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x, m, p: (
            fn.crop_mirror_normalize(x, crop=(20, 25), mean=mean, std=std, mirror=m, crop_pos_x=p),
            fn.crop_mirror_normalize(x, mean=mean, std=std, mirror=m, output_layout="HWC", dtype=types.FLOAT16),
            fn.crop_mirror_normalize(x, crop=(22, 30), mean=[128.0], std=[1.0], dtype=types.UINT8, mirror=m),
            fn.crop_mirror_normalize(x, crop=(22, 30), mean=[5.0], dtype=types.INT8),
        ),
        extra=(mirror, PER_SAMPLE),
    )
    assert_close(ours, theirs, atol=1e-3)
    assert_close([ours[0]], [theirs[0]])  # float32 with scale 1, shift 0: exact
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x: (
            fn.crop_mirror_normalize(
                x, mean=mean, std=std, scale=2.5, shift=10.0, pad_output=True, output_layout="HWC"
            ),
            fn.crop_mirror_normalize(x, crop=(20, 20), mean=mean, std=std, output_layout="HCW"),
        ),
    )
    assert_close(ours, theirs, atol=2e-6)
    for batch, layout, out in ((CHW, "CHW", "HWC"), (FHWC, "FHWC", "FCHW"), (F32, "HWC", "CHW")):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, out=out: fn.crop_mirror_normalize(
                x, crop=(20, 20), mean=[10.0], std=[3.0], mirror=1, output_layout=out
            ),
            layout=layout,
        )
        assert_close(ours, theirs, atol=2e-6, where=layout)


def test_crop_mirror_normalize_padding_outside_the_image():
    dali()
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x: fn.crop_mirror_normalize(
            x, crop=(60, 30), out_of_bounds_policy="pad", fill_values=7.0, mean=[100.0], std=[2.0], mirror=1
        ),
    )
    assert_close(ours, theirs)


def test_slice_equals_dali():
    dali()
    anchors = [np.array([0.1, 0.2], np.float32)] * 3
    shapes = [np.array([3.0, 9.0], np.float32)] * 3
    for batch, layout in ((HWC, "HWC"), (CHW, "CHW")):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, a, s, layout=layout: (
                fn.slice(x, a, s, normalized_shape=False),
                fn.slice(x, start=(1, 2), end=(15, 16)),
                fn.slice(x, rel_start=(0.1, 0.2), rel_end=(0.55, 0.75), dtype=types.FLOAT),
                fn.slice(
                    x,
                    start=(-2, 3),
                    shape=(30, 40),
                    out_of_bounds_policy="pad",
                    fill_values=(1, 2, 3) if layout == "HWC" else 9,
                ),
                fn.slice(x, start=(4,), end=(30,), axis_names="W", out_of_bounds_policy="trim_to_shape"),
            ),
            layout=layout,
            extra=(anchors, shapes),
        )
        assert_close(ours, theirs, where=layout)


def test_flip_pad_erase_equal_dali():
    dali()
    flags = [np.int32(v) for v in (0, 1, 1)]
    anchors = [
        np.array([3, 4, 10, 0], np.float32),
        np.array([-2, -3, 0, 0], np.float32),
        np.array([0.2, 0.1, 0.5, 0.5], np.float32),
    ]
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x, f, a: (
            fn.flip(x, horizontal=f, vertical=1),
            fn.flip(x),
            fn.pad(x, fill_value=-3.0),
            fn.pad(x, axes=(1,), align=8),
            fn.pad(x, shape=(50, -1, 4), fill_value=300.0),
            fn.pad(x, axis_names="H", shape=(70,)),
            fn.erase(x, anchor=a, shape=(5.5, 6.5, 2, 3), fill_value=(100, 50, 3)),
            fn.erase(x, anchor=(0.15, 0.25), shape=(0.33, 0.41), normalized=True, centered_anchor=True),
            fn.erase(x, anchor=(3,), shape=(5,), axes=(1,)),
        ),
        extra=(flags, anchors),
    )
    assert_close(ours, theirs)
    for batch, layout in ((CHW, "CHW"), (FHWC, "FHWC")):
        ours, theirs = run_both(batch, lambda fn, types, x: fn.flip(x, vertical=1, horizontal=0), layout=layout)
        assert_close(ours, theirs, where=layout)


@pytest.mark.parametrize(
    "kw",
    [
        dict(ratio=2.0, fill_value=(1, 2, 3)),
        dict(ratio=1.3, fill_value=300, paste_x=0.3),
        dict(ratio=1.0, min_canvas_size=60, fill_value=(9,), paste_y=1.0),
    ],
)
def test_paste_equals_dali(kw):
    dali()
    ours, theirs = run_both(HWC, lambda fn, types, x: fn.paste(x, **kw))
    assert_close(ours, theirs)


def test_multi_paste_equals_dali():
    dali()
    i32, f32 = (lambda *v: np.array(v, np.int32)), (lambda *v: np.array(v, np.float32))
    ids = [i32(1, 0), i32(2, 2), i32(0, 1)]
    out_anchors = [i32([0, 0], [4, 5]), i32([1, 1], [2, 2]), i32([0, 3], [3, 0])]
    in_rel = [f32([0.1, 0.2], [0.5, 0.5]), f32([0.0, 0.0], [0.25, 0.45]), f32([0.3, 0.3], [0.1, 0.4])]
    shape_rel = [f32([0.5, 0.4], [0.5, 0.5])] * 3
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x, i, o, a, s: (
            fn.multi_paste(x, in_ids=i, output_size=(60, 70), out_anchors=o, in_anchors_rel=a, shapes_rel=s),
            fn.multi_paste(x, in_ids=i, output_size=(50, 60), dtype=types.FLOAT),
            fn.multi_paste(x, x, output_size=[50, 48]),
        ),
        extra=(ids, out_anchors, in_rel, shape_rel),
    )
    assert_close(ours, theirs)


def test_warps_equal_dali():
    dali()
    angles = [np.float32(v) for v in (30.0, -17.5, 135.0)]
    matrices = [np.array([[0.9, 0.2, -3.5], [-0.15, 1.1, 2.3]], np.float32)] * 3
    for batch, layout in ((HWC, "HWC"), (FHWC, "FHWC")):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, a, m: (
                fn.rotate(x, angle=a),
                fn.rotate(x, angle=a, fill_value=5.0, keep_size=True),
                fn.rotate(x, angle=a, size=(30, 40), dtype=types.UINT8),
                fn.warp_affine(x, matrix=m),
                fn.warp_affine(x, m, size=(25, 35), fill_value=0.0, inverse_map=False),
                fn.warp_affine(x, matrix=(1.1, 0.1, -2, 0, 0.9, 1), fill_value=200.0),
            ),
            layout=layout,
            extra=(angles, matrices),
        )
        assert_close(ours, theirs, atol=1, fraction=0.02, where=layout)
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, m: fn.warp_affine(x, matrix=m, interp_type=types.INTERP_NN),
            layout=layout,
            extra=(matrices,),
        )
        assert_close(ours, theirs, where=f"{layout} nn")


@pytest.mark.parametrize("border", ["constant", "replicate", "reflect", "reflect_101", "wrap"])
def test_warp_perspective_equals_dali(border):
    dali()
    m = [np.array([[0.9, 0.1, 3.0], [-0.05, 1.1, -2.0], [0.0005, 0.001, 1.0]], np.float32)] * 3
    for batch, layout in ((HWC, "HWC"), (CHW, "CHW"), (F32, "HWC")):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, m: (
                fn.experimental.warp_perspective(x, matrix=m, border_mode=border, fill_value=[10.0]),
                fn.experimental.warp_perspective(
                    x,
                    m,
                    size=(30, 20),
                    interp_type=types.INTERP_CUBIC,
                    border_mode=border,
                    pixel_origin="center",
                    inverse_map=False,
                ),
            ),
            layout=layout,
            extra=(m,),
        )
        assert_close(ours, theirs, where=layout)


@pytest.mark.dali_differential("sphere", "water")
@pytest.mark.parametrize("interp, atol", [("INTERP_NN", 0), ("INTERP_LINEAR", 1)])
def test_sphere_and_water_equal_dali(interp, atol):
    dali()
    masks = [np.int32(v) for v in (1, 0, 1)]
    for batch in (HWC, F32):
        ours, theirs = run_both(
            batch,
            lambda fn, types, x, m: (
                fn.sphere(x, interp_type=getattr(types, interp), mask=m, fill_value=40.0),
                fn.water(x, interp_type=getattr(types, interp), ampl_x=3.5, freq_y=0.3, phase_x=1.0),
            ),
            extra=(masks,),
        )
        assert_close(ours, theirs, atol=atol if batch is HWC else 0.51, fraction=0.02 if batch is HWC else 1.0)


@pytest.mark.dali_differential("tensor_resize", "experimental.tensor_resize")
def test_tensor_resize_equals_dali():
    dali()
    ours, theirs = run_both(
        HWC,
        lambda fn, types, x: (
            fn.tensor_resize(x, axes=[0, 1], sizes=[30, 45]),
            fn.tensor_resize(x, axes=[1], sizes=[45]),
            fn.tensor_resize(x, sizes=[30, 45, 3]),
            fn.tensor_resize(x, axis_names="HW", scales=[0.77, 1.61]),
            fn.tensor_resize(x, axes=[0, 1], scales=[0.6, 0.7], size_rounding="truncate", alignment=[0.0, 1.0]),
            fn.experimental.tensor_resize(x, axes=[0, 1], sizes=[30, 45], roi_start=[5, 6], roi_end=[30, 40]),
        ),
    )
    assert_close(ours, theirs, atol=1, fraction=0.03)


def _run(make, data, layout="HWC"):
    @pipeline_def(batch_size=1, num_threads=1)
    def pipe():
        return make(fn.external_source(source=lambda: [data], layout=layout))

    p = pipe()
    try:
        return p.run()
    finally:
        p.close()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda x: fn.resize(x, resize_x=-1e12, resize_y=10), OperatorError, "too large"),
        (lambda x: fn.resize(x), ValueError, "exactly one way"),
        (lambda x: fn.resize(x, size=10, resize_shorter=5), ValueError, "exactly one way"),
        (lambda x: fn.crop(x, crop=(-5, 10)), ValueError, "crop"),
        (lambda x: fn.crop(x, crop=(5, 10), crop_pos_x=1.5), ValueError, "crop_pos_x"),
        (lambda x: fn.crop(x, crop=(50, 10)), OperatorError, "exceeds"),
        (lambda x: fn.crop_mirror_normalize(x, mean=[1, 2, 3], std=[1, 2]), ValueError, "mean"),
        (lambda x: fn.crop_mirror_normalize(x, mean=[1, 2]), OperatorError, "mean has 2 values for 3 channels"),
        (lambda x: fn.crop_mirror_normalize(x, std=[0.0]), ValueError, "std"),
        (lambda x: fn.crop_mirror_normalize(x, output_layout="XYZ"), ValueError, "output_layout"),
        (lambda x: fn.crop_mirror_normalize(x, dtype=types.INT16), TypeError, "dtype"),
        (lambda x: fn.rotate(x), TypeError, "angle"),
        (lambda x: fn.rotate(x, angle=10, keep_size=True, size=(5, 5)), ValueError, "keep_size"),
        (lambda x: fn.warp_affine(x, matrix=[1, 2, 3]), ValueError, "2x3"),
        (lambda x: fn.paste(x, ratio=0.5, fill_value=0), ValueError, "ratio"),
        (lambda x: fn.slice(x, start=(2, 2), end=(1, 1)), OperatorError, "ends before it starts"),
        (lambda x: fn.pad(x, axes=(0,), axis_names="H"), ValueError, "mutually exclusive"),
        (lambda x: fn.erase(x, anchor=(1, 2, 3), shape=(1, 2, 3)), OperatorError, "per box"),
    ],
)
def test_bad_arguments_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        _run(make, HWC[0])


@pytest.mark.parametrize("make", [fn.resize, fn.crop_mirror_normalize, fn.rotate, fn.flip])
def test_unknown_layout_wrong_type_or_rank_is_refused(make):
    kwargs = {"resize": {"size": 5}, "rotate": {"angle": 3.0}}.get(make.__name__, {})
    with pytest.raises(OperatorError, match="layout"):
        _run(lambda x: make(x, **kwargs), HWC[0], layout="XYZ")
    with pytest.raises(OperatorError, match="dimensional|layout"):
        _run(lambda x: make(x, **kwargs), HWC[0][:, :, 0], layout=None)
    if make is not fn.flip:
        with pytest.raises(OperatorError, match="type"):
            _run(lambda x: make(x, **kwargs), HWC[0].astype(np.float64))
