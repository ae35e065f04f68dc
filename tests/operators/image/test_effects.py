"""equalize, debayer, grid_mask and jpeg_compression_distortion against DALI's CPU operators (all exact)."""

import numpy as np
import pytest

from pipestate import OperatorError, fn, pipeline_def
from tests.operators.image._both import assert_identical, both
from tests.operators.image._dali import test_image


@pytest.mark.parametrize(
    "layout, shape",
    [
        ("HW", (30, 40)),
        ("HWC", (30, 40, 3)),
        ("CHW", (3, 30, 40)),
        ("FHWC", (2, 30, 40, 3)),
        ("FCHW", (2, 2, 30, 40)),
        ("FHW", (2, 30, 40)),
    ],
)
@pytest.mark.parametrize("name", ["equalize", "experimental.equalize"])
def test_equalize_is_exact(layout, shape, name):
    rng = np.random.default_rng(1)
    samples = [rng.normal(100, 25, shape).clip(0, 255).astype(np.uint8) for _ in range(2)]

    def build(f, t, x):
        return f.equalize(x) if name == "equalize" else f.experimental.equalize(x)

    assert_identical(*both(samples, layout, build))


@pytest.mark.parametrize("algorithm", ["bilinear_ocv", "edgeaware_ocv", "vng_ocv", "gray_ocv"])
@pytest.mark.parametrize("position", [[0, 0], [0, 1], [1, 0], [1, 1]])
def test_debayer_is_exact(algorithm, position):
    rng = np.random.default_rng(2)
    samples = [rng.integers(0, 256, (20, 30), dtype=np.uint8) for _ in range(2)]
    assert_identical(*both(samples, "HW", lambda f, t, x: f.debayer(x, blue_position=position, algorithm=algorithm)))


@pytest.mark.parametrize("layout, shape, dtype", [("HWC", (20, 30, 1), np.uint16), ("FHW", (3, 20, 30), np.uint8)])
def test_debayer_layouts_and_per_sample_positions(layout, shape, dtype):
    rng = np.random.default_rng(3)
    samples = [rng.integers(0, np.iinfo(dtype).max, shape).astype(dtype) for _ in range(3)]
    positions = [np.array(p, np.int32) for p in ([0, 1], [1, 1], [1, 0])]

    def build(f, t, x):
        return f.experimental.debayer(x, blue_position=f.external_source(source=lambda: positions))

    ours, theirs = both(samples, layout, build)
    assert_identical(ours, theirs)


def test_grid_mask_is_exact():
    rng = np.random.default_rng(4)
    samples = [test_image(k, 48, 64).astype(dtype) for k, dtype in enumerate([np.uint8, np.uint8])]
    for _ in range(6):
        kwargs = {
            "tile": int(rng.integers(3, 40)),
            "ratio": float(rng.uniform(0, 1)),
            "angle": float(rng.uniform(-4, 4)),
            "shift_x": float(rng.uniform(-30, 30)),
            "shift_y": float(rng.uniform(-30, 30)),
        }
        assert_identical(*both(samples, "HWC", lambda f, t, x, kw=kwargs: f.grid_mask(x, **kw)))
    floats = [-(test_image(5, 20, 30) / 255.0).astype(np.float32)]  # negative values: masked ones become -0.0
    assert_identical(*both(floats, "HWC", lambda f, t, x: f.grid_mask(x, tile=7, angle=0.3)))


@pytest.mark.parametrize("quality", [1, 20, 50, 95, 100, -3, 140])
def test_jpeg_compression_distortion_is_exact(quality):
    samples = [test_image(6, 37, 53), test_image(7, 64, 48)]
    assert_identical(*both(samples, "HWC", lambda f, t, x: f.jpeg_compression_distortion(x, quality=quality)))
    video = [np.stack([test_image(8, 16, 24), test_image(9, 16, 24)])]
    assert_identical(*both(video, "FHWC", lambda f, t, x: f.jpeg_compression_distortion(x, quality=quality)))


def run_ours(samples, build, layout):
    @pipeline_def(batch_size=len(samples), num_threads=1)
    def pipe():
        return build(fn.external_source(source=lambda: list(samples), layout=layout))

    p = pipe()
    (out,) = p.run()
    p.close()
    return out


def test_errors():
    with pytest.raises(OperatorError, match="must be even"):
        run_ours([np.zeros((5, 6), np.uint8)], lambda x: fn.debayer(x, blue_position=[0, 0]), "HW")
    with pytest.raises(OperatorError, match="single-channel"):
        run_ours([np.zeros((4, 6, 3), np.uint8)], lambda x: fn.debayer(x, blue_position=[0, 0]), "HWC")
    with pytest.raises(ValueError, match="default_npp"):
        run_ours(
            [np.zeros((4, 6), np.uint8)], lambda x: fn.debayer(x, blue_position=[0, 0], algorithm="default_npp"), "HW"
        )
    with pytest.raises(OperatorError, match="vng_ocv"):
        run_ours(
            [np.zeros((4, 6), np.uint16)], lambda x: fn.debayer(x, blue_position=[0, 0], algorithm="vng_ocv"), "HW"
        )
    with pytest.raises(ValueError, match="tile"):
        run_ours([np.zeros((4, 6, 3), np.uint8)], lambda x: fn.grid_mask(x, tile=0), "HWC")
    with pytest.raises(OperatorError, match="3-channel"):
        run_ours([np.zeros((8, 8, 1), np.uint8)], lambda x: fn.jpeg_compression_distortion(x), "HWC")
    with pytest.raises(OperatorError, match="uint8"):
        run_ours([np.zeros((8, 8), np.float32)], lambda x: fn.equalize(x), "HW")
