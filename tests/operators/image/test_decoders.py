"""The decoder operators against DALI's CPU operators of the same names, on images encoded in the test.

Tolerances: RGB/BGR/ANY_DATA of every format, GRAY of JPEG, every dtype, the crop, slice and peek variants
are exact; YCbCr, and GRAY of colour non-JPEG images, within 1 level (see docs/images.md).
"""

import os

import numpy as np
import pytest

import pipestate
from pipestate import OperatorError, fn, pipeline_def, types
from tests.operators.image._dali import assert_close, dali, encode, run_both, test_image

pytest.importorskip("cv2")
IMAGES = [test_image(10 + i, 30 + 7 * i, 41 + 5 * i) for i in range(3)]
RGBA = np.dstack([IMAGES[1], np.arange(IMAGES[1][:, :, 0].size, dtype=np.uint8).reshape(IMAGES[1].shape[:2])])


def as_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8)


JPEGS = [as_bytes(encode(im, ".jpg", IMWRITE_JPEG_QUALITY=90)) for im in IMAGES]
MIXED = [
    JPEGS[0],
    as_bytes(encode(RGBA, ".png")),
    as_bytes(encode(IMAGES[2][:, :, 0], ".bmp")),
    as_bytes(encode(IMAGES[0], ".webp", IMWRITE_WEBP_QUALITY=101)),
    as_bytes(encode(IMAGES[1].astype(np.uint16) * 257, ".png")),
]


@pytest.mark.dali_differential("decoders.image", "experimental.decoders.image")
@pytest.mark.parametrize("output_type", ["RGB", "BGR", "GRAY", "YCbCr", "ANY_DATA"])
def test_decoder_equals_dali_on_a_mixed_batch(output_type):
    dali()
    for op in ("decoders", "experimental.decoders"):

        def build(fn, types, x, op=op):
            module = fn.experimental.decoders if op != "decoders" else fn.decoders
            return module.image(x, output_type=getattr(types, output_type))

        ours, theirs = run_both(MIXED, build, layout=None)
        assert_close(ours, theirs, atol=1 if output_type in ("GRAY", "YCbCr") else 0, where=op)


@pytest.mark.parametrize("dtype", ["UINT8", "INT8", "UINT16", "INT16", "FLOAT"])
def test_decoder_output_types_equal_dali(dtype):
    dali()
    batch = [*JPEGS, as_bytes(encode(np.arange(256, dtype=np.uint8).reshape(16, 16), ".png"))]
    ours, theirs = run_both(batch, lambda fn, types, x: fn.decoders.image(x, dtype=getattr(types, dtype)), layout=None)
    assert_close(ours, theirs)


@pytest.mark.dali_differential("decoders.image_crop", "experimental.decoders.image_crop")
def test_image_crop_equals_dali():
    dali()
    pos = [np.float32(v) for v in (0.0, 0.37, 1.0)]
    ours, theirs = run_both(
        JPEGS,
        lambda fn, types, x, p: (
            fn.decoders.image_crop(x, crop=(21, 30), crop_pos_x=p, crop_pos_y=0.7),
            fn.decoders.image_crop(x, crop_h=11.7, crop_w=19, rounding="truncate", output_type=types.GRAY),
            fn.experimental.decoders.image_crop(x, crop=(0, 25), crop_pos_x=p),
        ),
        layout=None,
        extra=(pos,),
    )
    assert_close(ours, theirs)


@pytest.mark.dali_differential("decoders.image_slice", "experimental.decoders.image_slice")
def test_image_slice_equals_dali():
    dali()
    anchors = [np.array([0.1, 0.2], np.float32), np.array([0.5, 0.05], np.float32), np.array([0.0, 0.0], np.float32)]
    shapes = [np.array([0.5, 0.7], np.float32), np.array([0.5, 0.9], np.float32), np.array([1.0, 1.0], np.float32)]
    abs_anchor = [np.array([3, 4], np.int32)] * 3
    abs_shape = [np.array([20, 10], np.int32)] * 3
    ours, theirs = run_both(
        JPEGS,
        lambda fn, types, x, a, s, ia, ish: (
            fn.decoders.image_slice(x, a, s),
            fn.decoders.image_slice(x, ia, ish, axis_names="HW"),
            fn.decoders.image_slice(x, start=(5, 2), end=(25, 28)),
            fn.decoders.image_slice(x, rel_start=(0.15, 0.25), rel_shape=(0.5, 0.5), dtype=types.FLOAT),
            fn.experimental.decoders.image_slice(x, start=(1, 2), shape=(9, 8), axes=(0, 1)),
        ),
        layout=None,
        extra=(anchors, shapes, abs_anchor, abs_shape),
    )
    assert_close(ours, theirs)


@pytest.mark.dali_differential("peek_image_shape", "experimental.peek_image_shape")
def test_peek_image_shape_equals_dali():
    dali()
    batch = MIXED[:4]
    ours, theirs = run_both(
        batch,
        lambda fn, types, x: (
            fn.peek_image_shape(x),
            fn.peek_image_shape(x, dtype=types.FLOAT),
            fn.peek_image_shape(x, dtype=types.INT32),
            fn.peek_image_shape(x, image_type=types.GRAY),
            fn.experimental.peek_image_shape(x),
        ),
        layout=None,
    )
    assert_close(ours, theirs)


def _write_dataset(root: str) -> str:
    os.makedirs(os.path.join(root, "cat"))
    for i, data in enumerate(JPEGS[:2]):
        with open(os.path.join(root, "cat", f"{i}.jpg"), "wb") as f:
            f.write(data.tobytes())
    with open(os.path.join(root, "cat", "2_broken.jpg"), "wb") as f:
        f.write(JPEGS[2].tobytes()[:300])
    return root


def test_bad_bytes_name_the_file(tmp_path):
    root = _write_dataset(str(tmp_path / "data"))

    @pipeline_def(batch_size=3, num_threads=2, seed=1)
    def pipe():
        data, _ = fn.readers.file(file_root=root)
        return fn.decoders.image(data)

    p = pipe()
    with pytest.raises(OperatorError, match="2_broken.jpg") as info:
        p.run()
    p.close()
    chain, cause = [], info.value
    while cause is not None and len(chain) < 10:  # a finite chain that ends in the decoder's error
        chain.append(cause)
        cause = cause.__cause__
    assert len(chain) < 10 and "damaged" in str(chain[-1])


def test_sources_travel_with_the_decoded_images(tmp_path):
    root = _write_dataset(str(tmp_path / "data"))

    @pipeline_def(batch_size=2, num_threads=1, seed=1)
    def pipe():
        data, _ = fn.readers.file(file_root=root)
        return fn.decoders.image(data)

    p = pipe()
    (out,) = p.run()
    assert out.source_info(0).endswith("0.jpg") and out.source_info(1).endswith("1.jpg")
    assert out.layout() == "HWC"
    p.close()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda x: fn.decoders.image(x, dtype=types.FLOAT16), TypeError, "dtype"),
        (lambda x: fn.decoders.image(x, output_type=7), ValueError, "output_type"),
        (lambda x: fn.decoders.image_crop(x, crop_h=10), ValueError, "crop_w"),
        (lambda x: fn.decoders.image_crop(x, crop=(10, -1)), ValueError, "crop"),
        (lambda x: fn.decoders.image_crop(x, crop=(3, 10, 10)), ValueError, "volumes"),
        (lambda x: fn.decoders.image_slice(x, start=(1, 1), rel_start=(0.1, 0.1)), ValueError, "start"),
        (lambda x: fn.decoders.image_random_crop(x, random_area=(0.9, 0.1)), ValueError, "random_area"),
        (lambda x: fn.decoders.image_random_crop(x, random_aspect_ratio=(0.0, 1.0)), ValueError, "positive"),
        (lambda x: fn.peek_image_shape(x, dtype=types.UINT8), TypeError, "dtype"),
    ],
)
def test_bad_arguments_are_refused_at_definition(make, error, match):
    @pipeline_def(batch_size=1, num_threads=1)
    def pipe():
        return make(fn.external_source(source=lambda: [JPEGS[0]]))

    with pytest.raises(error, match=match):
        pipe()


def test_wrong_input_type_or_rank_and_windows_outside_the_image():
    def run(make, data):
        @pipeline_def(batch_size=1, num_threads=1)
        def pipe():
            return make(fn.external_source(source=lambda: [data]))

        p = pipe()
        try:
            p.run()
        finally:
            p.close()

    with pytest.raises(OperatorError, match="uint8"):
        run(fn.decoders.image, JPEGS[0].astype(np.int32))
    with pytest.raises(OperatorError, match="1-dimensional|dimensional"):
        run(fn.decoders.image, JPEGS[0].reshape(1, -1))
    with pytest.raises(OperatorError, match="exceeds"):
        run(lambda x: fn.decoders.image_crop(x, crop=(300, 20)), JPEGS[0])
    with pytest.raises(OperatorError, match="sample 0"):
        run(lambda x: fn.decoders.image_slice(x, start=(1, 2, 3), end=(5, 6, 7)), JPEGS[0])


def test_experimental_aliases_are_registered():
    for name in ("image", "image_crop", "image_slice", "image_random_crop"):
        assert callable(getattr(pipestate.fn.experimental.decoders, name))
    assert callable(pipestate.fn.experimental.peek_image_shape)
