"""Colour operators and kernels against DALI's CPU operators: every comparison is exact (bit-identical).

The conversions are checked on 2^16 colours of the RGB cube by default and on all 2^24 with PIPESTATE_SLOW=1;
the colour twist family on random parameters for every input type DALI accepts; brightness/contrast for every
input and output type pair.
"""

import os

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def, types
from pipestate.operators.image._kernels import color
from tests.operators.image._dali import dali, run_dali, test_image

SLOW = os.environ.get("PIPESTATE_SLOW") == "1"
SPACES = ("RGB", "BGR", "GRAY", "YCbCr")


def colour_cube(full: bool) -> np.ndarray:
    if full:
        v = np.arange(256, dtype=np.uint8)
        return np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(4096, 4096, 3)
    return np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


@pytest.mark.parametrize("source, target", [(a, b) for a in SPACES for b in SPACES if a != b])
def test_color_space_conversion_is_exact(source, target):
    dali()
    cube = colour_cube(SLOW)
    image = np.ascontiguousarray(cube[..., :1]) if source == "GRAY" else cube
    expected = run_dali(
        [image],
        lambda fn, types, x: fn.color_space_conversion(
            x, image_type=getattr(types, source), output_type=getattr(types, target)
        ),
    )[0]
    got = color.convert_color_space(image, source, target)
    assert got.shape == expected.shape and got.tobytes() == expected.tobytes()


def random_params(n, seed):
    rng = np.random.default_rng(seed)
    return [
        tuple(
            float(v)
            for v in (
                rng.uniform(0, 2),
                rng.uniform(0, 2),
                rng.uniform(-400, 400),
                rng.uniform(0, 3),
                rng.uniform(0, 2),
            )
        )
        for _ in range(n)
    ]


def twist_inputs(dtype):
    image = test_image(4, 48, 64)
    if dtype == np.float32 or dtype == np.float16:
        return (image / 255.0).astype(dtype)
    if dtype == np.int16:
        return image.astype(np.int16) * 100 - 3000
    return image.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float16, np.float32])
def test_color_twist_family_is_exact(dtype):
    dali()
    image = twist_inputs(dtype)
    for params in random_params(3 if not SLOW else 20, 7):
        for name in ("hsv", "color_twist", "hue", "saturation"):
            ours = run_ours([image], lambda x, n=name, p=params: twist(fn, types, x, n, *p))[0]
            theirs = run_dali([image], lambda dfn, dtypes, x, n=name, p=params: twist(dfn, dtypes, x, n, *p))[0]
            assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes(), (name, dtype, params)


def twist(lib_fn, lib_types, x, name, brightness, contrast, hue, saturation, value):
    """The same call on either library's ``fn``."""
    if name == "hsv":
        return lib_fn.hsv(x, hue=hue, saturation=saturation, value=value, dtype=lib_types.FLOAT)
    if name == "color_twist":
        return lib_fn.color_twist(x, brightness=brightness, contrast=contrast, hue=hue, saturation=saturation)
    if name == "hue":
        return lib_fn.hue(x, hue=hue)
    return lib_fn.saturation(x, saturation=saturation)


def run_ours(samples, build, layout="HWC"):
    @pipeline_def(batch_size=len(samples), num_threads=1)
    def pipe():
        return build(fn.external_source(source=lambda: list(samples), layout=layout))

    p = pipe()
    (out,) = p.run()
    p.close()
    return [np.array(s) for s in out]


BC_TYPES = {"uint8": "UINT8", "int16": "INT16", "int32": "INT32", "float32": "FLOAT"}


@pytest.mark.parametrize("in_type", list(BC_TYPES))
@pytest.mark.parametrize("out_type", [None, *BC_TYPES])
def test_brightness_contrast_is_exact_for_every_type_pair(in_type, out_type):
    dali()
    rng = np.random.default_rng(hash((in_type, out_type)) % 2**32)
    if in_type == "float32":
        image = rng.uniform(-0.2, 1.2, (20, 30, 3)).astype(np.float32)
    else:
        info = np.iinfo(in_type)
        image = rng.integers(max(info.min, -30000), min(info.max, 40000), (20, 30, 3)).astype(in_type)
    for trial in range(3):
        kwargs = {
            "brightness": rng.uniform(0, 2),
            "brightness_shift": rng.uniform(-0.3, 0.3),
            "contrast": rng.uniform(0, 2),
        }
        if trial:
            kwargs["contrast_center"] = rng.uniform(0, 200)
        kwargs = {k: float(v) for k, v in kwargs.items()}
        ours_kw = dict(kwargs, **({"dtype": getattr(types, BC_TYPES[out_type])} if out_type else {}))
        ours = run_ours([image], lambda x, kw=ours_kw: fn.brightness_contrast(x, **kw))[0]
        theirs = run_dali(
            [image],
            lambda dfn, dtypes, x, kw=kwargs: dfn.brightness_contrast(
                x, **kw, **({"dtype": getattr(dtypes, BC_TYPES[out_type])} if out_type else {})
            ),
        )[0]
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()


def test_twist_matrix_identity_and_grey_pixels():
    assert np.abs(color.hsv_matrix() - np.eye(3)).max() < 1e-6
    grey = np.full((4, 4, 3), 77, np.uint8)
    assert (color.convert_color_space(grey, "RGB", "YCbCr")[..., 1:] == 128).all()


def test_errors():
    with pytest.raises(ValueError, match="image_type"):
        color.convert_color_space(test_image(1), "HSV", "RGB")
    with pytest.raises(ValueError, match="channel"):
        color.convert_color_space(test_image(1)[..., :1], "RGB", "GRAY")
    with pytest.raises(ValueError, match="both types.RGB"):
        run_ours([test_image(1)], lambda x: fn.color_space_conversion(x, image_type=types.RGB, output_type=types.RGB))
    with pytest.raises(ValueError, match="ANY_DATA is not supported"):
        run_ours(
            [test_image(1)], lambda x: fn.color_space_conversion(x, image_type=types.ANY_DATA, output_type=types.RGB)
        )
    with pytest.raises(TypeError, match="image_type"):
        run_ours([test_image(1)], lambda x: fn.hue(x, image_type="RGB"))
    with pytest.raises(OperatorError, match="3-channel"):
        run_ours([test_image(1)[..., :2]], lambda x: fn.hsv(x, hue=3.0))  # DALI reads such samples as RGB triples
    with pytest.raises(TypeError, match="dtype=int8 is not supported"):
        run_ours([test_image(1)], lambda x: fn.brightness_contrast(x, dtype=types.INT8))
    with pytest.raises(OperatorError, match="layout 'CHW'"):
        run_ours([test_image(1).transpose(2, 0, 1)], lambda x: fn.brightness(x), layout="CHW")
