"""Image decoders: ``fn.decoders.image``, ``image_crop``, ``image_slice``, ``image_random_crop``,
``fn.peek_image_shape``, and their ``fn.experimental.*`` aliases (DALI's names, arguments and defaults).

Decoding is the OpenCV kernel (:mod:`pipestate.operators.image._kernels.decode`): JPEG pixels equal DALI's
CPU decoder; PNG, BMP, TIFF and WebP are read too. A sample that does not decode raises an error naming its
source (the file name from ``fn.readers.file``). The cropping decoders decode the whole image and cut the
window, which gives DALI's pixels (DALI's region-of-interest decoding gives the same). Arguments that apply
only to DALI's ``mixed`` (GPU) backend are accepted and have no effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.image import _args, _slice
from pipestate.operators.image._kernels import crop as crop_kernels
from pipestate.operators.image._kernels.decode import decode, peek_shape
from pipestate.operators.image._kernels.random_crop import random_crop_window
from pipestate.operators.schema import Arg
from pipestate.types import DALIImageType

ENCODED = sch.Input(
    "data", "Encoded images (JPEG, PNG, BMP, TIFF, WebP): one 1-D uint8 array per sample", ("uint8",), (1,)
)
# Output types of the decoders and DALI's conversion from 8 bits: integers v * max / 255 rounded, floats v / 255.
DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32))
_MIXED = "Applies only to DALI's mixed (GPU) backend: accepted, no effect"
MIXED_ONLY = (
    Arg("affine", sch.Bool(), True, _MIXED),
    Arg("device_memory_padding", sch.Int(0), 16777216, _MIXED),
    Arg("device_memory_padding_jpeg2k", sch.Int(0), 0, _MIXED),
    Arg("host_memory_padding", sch.Int(0), 8388608, _MIXED),
    Arg("host_memory_padding_jpeg2k", sch.Int(0), 0, _MIXED),
    Arg("hw_decoder_load", sch.Float(0.0, 1.0), 0.65, _MIXED),
    Arg("hybrid_huffman_threshold", sch.Int(0), 1000000, _MIXED),
    Arg("jpeg_fancy_upsampling", sch.Bool(), False, _MIXED + " (the CPU decoder always upsamples as libjpeg-turbo)"),
    Arg("preallocate_height_hint", sch.Int(0), 0, _MIXED),
    Arg("preallocate_width_hint", sch.Int(0), 0, _MIXED),
    Arg("memory_stats", sch.Bool(), False, "Deprecated in DALI: accepted, no effect"),
    Arg("split_stages", sch.Bool(), False, "Deprecated in DALI: accepted, no effect"),
    Arg("use_chunk_allocator", sch.Bool(), False, "Deprecated in DALI: accepted, no effect"),
)
CACHE_ARGS = (
    Arg("cache_batch_copy", sch.Bool(), True, _MIXED),
    Arg("cache_debug", sch.Bool(), False, _MIXED),
    Arg("cache_size", sch.Int(0), 0, _MIXED),
    Arg("cache_threshold", sch.Int(0), 0, _MIXED),
    Arg("cache_type", sch.Str(("", "threshold", "largest")), "", _MIXED),
)
DECODE_ARGS = (
    Arg(
        "output_type",
        _args.Enum(DALIImageType),
        DALIImageType.RGB,
        "Colour space: types.RGB, BGR, GRAY, YCbCr or ANY_DATA (the image's own channels)",
    ),
    Arg(
        "dtype",
        sch.DType(),
        np.dtype(np.uint8),
        "Output type: types.UINT8, INT8, UINT16, INT16 or FLOAT (values scaled to the type's range; FLOAT: 0..1)",
    ),
    Arg("adjust_orientation", sch.Bool(), True, "Apply the EXIF orientation"),
    Arg(
        "use_fast_idct",
        sch.Bool(),
        False,
        "Accepted; pipestate always uses the accurate integer IDCT (DALI's default), see docs/images.md",
    ),
    *MIXED_ONLY,
)


def convert(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An 8-bit image in another output type, as DALI's decoder converts it (``v * max / 255`` rounded to
    nearest for integers, ``v * (1 / 255)`` in float32 for FLOAT)."""
    if dtype == np.uint8:
        return image
    if dtype.kind == "f":
        return image.astype(np.float32) * np.float32(1 / 255)
    top = np.iinfo(dtype).max
    if top == 65535:
        return image.astype(np.uint16) * np.uint16(257)
    return np.rint(image.astype(np.float64) * (top / 255)).astype(dtype)


def _example_image(index: int) -> np.ndarray:
    """A small JPEG (ragged sizes) for the decoders' examples, encoded deterministically with OpenCV."""
    import cv2

    h, w = 18 + 5 * (index % 3), 24 + 3 * (index % 4)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 9 + index * 7) % 256, (y * 11 + x * 3) % 256, (x * y + index * 31) % 256], -1)
    ok, buf = cv2.imencode(".jpg", rgb.astype(np.uint8)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return np.frombuffer(buf.tobytes(), np.uint8)


class Decoder(SampleOperator):
    """Shared part of the decoders: argument checks, decoding one sample, the output type."""

    INPUTS = (ENCODED,)

    def validate(self) -> None:
        super().validate()
        dtype = self.args["dtype"]
        if dtype not in DTYPES:
            raise TypeError(
                f"fn.{self.type}(): dtype={dtype} is not supported; use types.UINT8, INT8, UINT16, INT16 or FLOAT"
            )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return "HWC"

    def decode(self, s: Sample, data: np.ndarray) -> np.ndarray:
        """Decode one sample in the requested colour space (8 bits)."""
        return decode(
            data,
            self.args["output_type"].name,
            adjust_orientation=self.args["adjust_orientation"],
            source=s.source or None,
        )

    def finish(self, image: np.ndarray) -> np.ndarray:
        """The (cropped) 8-bit image in the requested type."""
        return convert(image, self.args["dtype"])


@register
class ImageDecoder(Decoder):
    """Decode images (DALI's ``fn.decoders.image``): HWC, in the colour space of ``output_type``.

    Raises:
        OperatorError: a sample that is not a decodable image (naming its source, e.g. the file).
    """

    type = "decoders.image"
    ARGS = (*DECODE_ARGS, *CACHE_ARGS)
    EXAMPLE = Example(inputs=(Tensor("uint8", (0,), values=_example_image),))

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return self.finish(self.decode(s, inputs[0]))


@register
class ImageCropDecoder(Decoder):
    """Decode images and cut a window (DALI's ``fn.decoders.image_crop``: ``crop`` or ``crop_h``/``crop_w``
    at ``crop_pos_x``/``crop_pos_y``). A window outside the image is an error."""

    type = "decoders.image_crop"
    ARGS = (*DECODE_ARGS, *_args.CROP_ARGS)
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (0,), values=_example_image),),
        args={"crop": (12, 15)},
        arg_inputs={"crop_pos_x": Tensor("float32", (), low=0.0, high=1.0)},
    )

    def validate(self) -> None:
        super().validate()
        _args.check_crop_args(self.type, self.args)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        image = self.decode(s, inputs[0])
        anchor, shape = _args.crop_window_of(image.shape[:2], args)
        return self.finish(crop_kernels.crop_image(image, anchor, shape))


@register
class ImageSliceDecoder(Decoder):
    """Decode images and cut a slice (DALI's ``fn.decoders.image_slice``): the window is given by
    ``start``/``rel_start`` and ``end``/``rel_end``/``shape``/``rel_shape``, or by the ``anchor`` and ``shape``
    inputs, over ``axis_names`` (default ``"WH"``) or ``axes``. A window outside the image is an error."""

    type = "decoders.image_slice"
    INPUTS = (
        ENCODED,
        sch.Input(
            "anchor", "Window start per axis (floats: fractions of the extent)", sch.NUMBERS, (0, 1), optional=True
        ),
        sch.Input(
            "shape", "Window extent per axis (floats: fractions of the extent)", sch.NUMBERS, (0, 1), optional=True
        ),
    )
    ARGS = (*DECODE_ARGS, *_slice.WINDOW_ARGS)
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (0,), values=_example_image),),
        args={"start": (3, 2)},
        arg_inputs={"rel_end": Tensor("float32", (2,), low=0.6, high=1.0)},
    )

    def validate(self) -> None:
        super().validate()
        if len(self.inputs) == 2:
            raise TypeError(f"fn.{self.type}(): give both the anchor and the shape inputs, or neither")
        _slice.check_window_args(self.type, self.args, len(self.inputs) == 3)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        image = self.decode(s, inputs[0])
        anchor, extent = (inputs[1], inputs[2]) if len(inputs) == 3 else (None, None)
        lo, size = _slice.slice_window(image.shape, "HWC", args, anchor, extent, f" (sample {s.index})")
        return self.finish(crop_kernels.slice_nd(image, lo, size))


RANDOM_CROP_ARGS = (
    Arg(
        "random_area",
        sch.Seq(sch.Float(0.0), min_length=1, broadcast=True),
        (0.08, 1.0),
        "Range of the window's area, as a fraction of the image's",
    ),
    Arg(
        "random_aspect_ratio",
        sch.Seq(sch.Float(0.0), min_length=1, broadcast=True),
        (3 / 4, 4 / 3),
        "Range of the window's aspect ratio (width / height), drawn log-uniformly",
    ),
    Arg("num_attempts", sch.Int(0, 10000), 10, "Draws before falling back to the largest allowed window"),
)


def check_random_crop_args(op_type: str, args: Mapping[str, Any]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (area, aspect ratio) ranges, checked as DALI does.

    Raises:
        ValueError: a range of other than 1 or 2 values, an empty range, or a ratio that is not positive.
    """
    ranges = []
    for name in ("random_area", "random_aspect_ratio"):
        values = args[name]
        if len(values) == 1:
            values = values * 2
        if len(values) != 2 or values[0] > values[1]:
            raise ValueError(f"fn.{op_type}(): {name}={list(args[name])!r} must be [low, high] with low <= high")
        ranges.append((values[0], values[1]))
    if ranges[1][0] <= 0:
        raise ValueError(f"fn.{op_type}(): random_aspect_ratio={list(args['random_aspect_ratio'])!r} must be positive")
    return ranges[0], ranges[1]


@register
class ImageRandomCropDecoder(Decoder):
    """Decode images and cut a random window (DALI's ``fn.decoders.image_random_crop``): area and aspect ratio
    drawn as ``random_resized_crop`` draws them, from the sample's own random stream."""

    type = "decoders.image_random_crop"
    ARGS = (*DECODE_ARGS, *RANDOM_CROP_ARGS)
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (0,), values=_example_image),),
        args={"random_area": (0.2, 0.9)},
        dali="test:tests/operators/image/test_random_crops.py",
    )

    def validate(self) -> None:
        super().validate()
        self.area, self.aspect = check_random_crop_args(self.type, self.args)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        image = self.decode(s, inputs[0])
        anchor, shape = random_crop_window(
            s.rng, image.shape[0], image.shape[1], self.area, self.aspect, args["num_attempts"]
        )
        return self.finish(crop_kernels.crop_image(image, anchor, shape))


@register
class PeekImageShape(SampleOperator):
    """The shape (H, W, C) each encoded image decodes to, without decoding JPEG and PNG (DALI's
    ``fn.peek_image_shape``; C is 3 except for ``image_type=types.GRAY``)."""

    type = "peek_image_shape"
    INPUTS = (ENCODED,)
    ARGS = (
        Arg(
            "dtype",
            sch.DType(),
            np.dtype(np.int64),
            "Type of the sizes: types.INT64 (default), INT32, UINT32, UINT64, FLOAT or FLOAT64",
        ),
        Arg("image_type", _args.Enum(DALIImageType), DALIImageType.RGB, "Colour space the channels count for"),
        Arg("adjust_orientation", sch.Bool(), True, "Apply the EXIF orientation"),
    )
    EXAMPLE = Example(inputs=(Tensor("uint8", (0,), values=_example_image),))
    _DTYPES = tuple(np.dtype(t) for t in (np.int32, np.int64, np.uint32, np.uint64, np.float32, np.float64))

    def validate(self) -> None:
        super().validate()
        if self.args["dtype"] not in self._DTYPES:
            raise TypeError(
                f"fn.{self.type}(): dtype={self.args['dtype']} is not supported; use types.INT64, "
                "INT32, UINT32, UINT64, FLOAT or FLOAT64"
            )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        image_type = "GRAY" if args["image_type"] == DALIImageType.GRAY else "RGB"
        shape = peek_shape(
            inputs[0], image_type, adjust_orientation=args["adjust_orientation"], source=s.source or None
        )
        return np.array(shape, dtype=args["dtype"])


def _alias(cls: type[SampleOperator], type_name: str) -> type[SampleOperator]:
    """Register ``cls`` again as ``type_name`` (DALI's ``experimental`` names of the same operators)."""
    alias = type(
        cls.__name__.replace("Decoder", "") + "Experimental",
        (cls,),
        {
            "__doc__": f"DALI's ``fn.{type_name}``: the same operator as ``fn.{cls.type}``.",
            "type": type_name,
            "__module__": __name__,
        },
    )
    return register(alias)


for _cls, _name in (
    (ImageDecoder, "experimental.decoders.image"),
    (ImageCropDecoder, "experimental.decoders.image_crop"),
    (ImageSliceDecoder, "experimental.decoders.image_slice"),
    (ImageRandomCropDecoder, "experimental.decoders.image_random_crop"),
    (PeekImageShape, "experimental.peek_image_shape"),
):
    _alias(_cls, _name)
