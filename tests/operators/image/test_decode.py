"""decode / peek_shape against DALI's CPU fn.decoders.image on images encoded in the test.

Tolerances: RGB, BGR and ANY_DATA of JPEG, PNG, BMP, TIFF and WebP (lossless) and GRAY of JPEG are exact;
YCbCr (under 0.03 % of pixels), GRAY of non-JPEG colour images and YCbCr of 16-bit images within 1 level
(DALI's per-format conversions differ slightly).
"""

import numpy as np
import pytest

from pipestate.operators.image._kernels.decode import ImageDecodeError, decode, image_format, peek_shape
from tests.operators.image._dali import dali, encode, pil_encode, run_dali, test_image

pytest.importorskip("cv2")
IMAGE = test_image(2, 60, 84)
OUTPUT_TYPES = ["RGB", "BGR", "GRAY", "YCbCr", "ANY_DATA"]


def dali_decode(data: bytes, output_type: str) -> np.ndarray:
    return run_dali(
        [np.frombuffer(data, np.uint8)],
        lambda fn, types, x: fn.decoders.image(x, device="cpu", output_type=getattr(types, output_type)),
        layout=None,
    )[0]


def check(data: bytes, output_type: str, tolerance: int = 0):
    expected = dali_decode(data, output_type)
    got = decode(data, output_type)
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= tolerance


@pytest.mark.parametrize("output_type", OUTPUT_TYPES)
@pytest.mark.parametrize("subsampling", [0x111111, 0x221111, 0x411111])  # 4:4:4, 4:2:0, 4:1:1
def test_jpeg_equals_dali(output_type, subsampling):
    dali()
    data = encode(IMAGE, ".jpg", IMWRITE_JPEG_QUALITY=90, IMWRITE_JPEG_SAMPLING_FACTOR=subsampling)
    check(data, output_type, tolerance=1 if output_type == "YCbCr" else 0)


@pytest.mark.parametrize("output_type", ["RGB", "GRAY", "BGR"])
def test_grey_jpeg_equals_dali(output_type):
    # (DALI 2.4 crashes decoding a grey JPEG with ANY_DATA, so that pair is checked without it)
    dali()
    data = encode(IMAGE[:, :, 1], ".jpg")
    check(data, output_type)
    assert decode(data, "ANY_DATA").shape == IMAGE.shape[:2] + (1,)


def test_exif_orientation_as_dali():
    dali()
    exif = __import__("PIL.Image", fromlist=["Exif"]).Exif()
    exif[0x0112] = 6
    data = pil_encode(IMAGE, "JPEG", quality=90, exif=exif.tobytes())
    check(data, "RGB")
    assert decode(data).shape == (84, 60, 3)
    assert decode(data, adjust_orientation=False).shape == (60, 84, 3)
    assert peek_shape(data) == (84, 60, 3)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tiff"])
@pytest.mark.parametrize("output_type", OUTPUT_TYPES)
def test_lossless_formats(ext, output_type):
    dali()
    params = {"IMWRITE_WEBP_QUALITY": 101} if ext == ".webp" else {}
    check(encode(IMAGE, ext, **params), output_type, tolerance=1 if output_type == "GRAY" else 0)


@pytest.mark.parametrize("output_type", OUTPUT_TYPES)
def test_png_alpha_grey_and_16_bit(output_type):
    dali()
    rgba = np.dstack([IMAGE, np.arange(IMAGE[:, :, 0].size, dtype=np.uint8).reshape(IMAGE.shape[:2])])
    check(encode(rgba, ".png"), output_type, tolerance=1 if output_type == "GRAY" else 0)
    check(encode(IMAGE[:, :, 0], ".png"), output_type)
    wide = IMAGE.astype(np.uint16) * 257 + np.uint16(100)
    check(encode(wide, ".png"), output_type, tolerance=1 if output_type in ("GRAY", "YCbCr") else 0)


def test_peek_shape_without_decoding():
    dali()
    for data in (encode(IMAGE, ".jpg"), encode(IMAGE, ".png"), encode(IMAGE, ".bmp")):
        expected = run_dali([np.frombuffer(data, np.uint8)], lambda fn, types, x: fn.peek_image_shape(x), layout=None)[
            0
        ]
        assert peek_shape(data) == tuple(int(v) for v in expected)
    assert peek_shape(encode(IMAGE[:, :, 0], ".png"), "ANY_DATA") == (60, 84, 1)
    assert peek_shape(encode(IMAGE, ".png"), "GRAY") == (60, 84, 1)


def test_formats_are_recognized():
    assert [image_format(encode(IMAGE, e)) for e in (".jpg", ".png", ".bmp", ".tiff", ".webp")] == [
        "jpeg",
        "png",
        "bmp",
        "tiff",
        "webp",
    ]
    assert image_format(b"GIF89a....") is None


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello world", "not a JPEG"),
        (b"\xff\xd8\xff\xe0garbage", "damaged"),
    ],
)
def test_bad_bytes_name_the_source(data, message):
    with pytest.raises(ImageDecodeError, match=message) as info:
        decode(data, source="train/cat/001.jpg")
    assert "train/cat/001.jpg" in str(info.value)


def test_truncated_png_names_the_source():
    data = encode(IMAGE, ".png")
    with pytest.raises(ImageDecodeError, match="img_7.png"):
        decode(data[: len(data) // 2], source="img_7.png")


def test_unknown_output_type():
    with pytest.raises(ValueError, match="output_type"):
        decode(encode(IMAGE, ".png"), "HSV")
