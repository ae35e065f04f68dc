"""Colour operators: ``fn.brightness_contrast``, ``fn.brightness``, ``fn.contrast``, ``fn.hsv``, ``fn.hue``,
``fn.saturation``, ``fn.color_twist`` and ``fn.color_space_conversion``.

The arithmetic is DALI 2.4's, bit for bit (``_kernels/color.py``). The per-sample arguments (DataNodes) are
resolved by the kit; every operator keeps the input's layout.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate import types
from pipestate.operators import Example, Sample, SampleOperator, Tensor, register
from pipestate.operators import schema as sch
from pipestate.operators.image._kernels import color
from pipestate.operators.schema import Arg

CHANNEL_LAST = ("HWC", "FHWC", "DHWC")


class ImageType(sch.Kind):
    """A colour space: a ``types.DALIImageType`` member (``types.RGB``, ``types.YCbCr``...) or its value."""

    text = "a colour space (types.RGB, types.BGR, types.GRAY, types.YCbCr or types.ANY_DATA)"

    def check(self, value: Any, where: str) -> types.DALIImageType:
        if isinstance(value, types.DALIImageType):
            return value
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            try:
                return types.DALIImageType(int(value))
            except ValueError:
                raise ValueError(f"{where}={value!r} must be {self.text}") from None
        raise TypeError(f"{where}={value!r} must be {self.text}")


def _dtype_arg(allowed: tuple[str, ...], default: Any, default_text: str) -> Arg:
    return Arg("dtype", sch.DType(), default, f"Output type, one of {'/'.join(allowed)} ({default_text})")


def _check_dtype(op: SampleOperator, allowed: tuple[str, ...]) -> None:
    dtype = op.args["dtype"]
    if dtype is not None and dtype.name not in allowed:
        raise TypeError(f"fn.{op.type}(): dtype={dtype.name} is not supported; use one of {', '.join(allowed)}")


def _three_channels(image: np.ndarray, op_type: str) -> None:
    if image.shape[-1] != 3:
        raise ValueError(
            f"fn.{op_type}() works on 3-channel (RGB) images; this sample has {image.shape[-1]} channel(s) "
            f"(shape {image.shape})"
        )


# ---- brightness / contrast -------------------------------------------------------------------------------
_BC_TYPES = ("uint8", "int16", "int32", "float32")
_BRIGHTNESS = Arg("brightness", sch.Float(), 1.0, "Brightness multiplier", tensor=True)
_SHIFT = Arg(
    "brightness_shift",
    sch.Float(),
    0.0,
    "Brightness shift, in units of the output type's range (1.0 is the type's maximum; 1.0 for floats)",
    tensor=True,
)
_CONTRAST = Arg("contrast", sch.Float(), 1.0, "Contrast multiplier (0 gives a uniform grey)", tensor=True)
_CENTER = Arg(
    "contrast_center",
    sch.Float(),
    None,
    "The level contrast leaves unchanged (default: half the input type's positive range, 0.5 for floats)",
    tensor=True,
)


class _BrightnessContrastBase(SampleOperator):
    INPUTS = (sch.Input("images", "Channel-last images", dtypes=_BC_TYPES, layouts=CHANNEL_LAST),)

    def validate(self) -> None:
        super().validate()
        _check_dtype(self, _BC_TYPES)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        dtype = args["dtype"] if args["dtype"] is not None else image.dtype
        return color.brightness_contrast(
            image,
            args.get("brightness", 1.0),
            args.get("brightness_shift", 0.0),
            args.get("contrast", 1.0),
            args.get("contrast_center"),
            dtype,
        )


@register
class BrightnessContrast(_BrightnessContrastBase):
    """Adjusts brightness and contrast:
    ``out = brightness_shift * range + brightness * (contrast_center + contrast * (in - contrast_center))``
    (``range``: 1 for float outputs, the type's maximum for integers); the output type may differ from the
    input's."""

    type = "brightness_contrast"
    ARGS = (_BRIGHTNESS, _SHIFT, _CONTRAST, _CENTER, _dtype_arg(_BC_TYPES, None, "default: the input's"))
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1)),),
        args={"brightness_shift": 0.05, "contrast_center": 100.0},
        arg_inputs={
            "brightness": Tensor("float32", (), low=0.5, high=1.5),
            "contrast": Tensor("float32", (), low=0, high=2),
        },
        dali="exact",
    )


@register
class Brightness(_BrightnessContrastBase):
    """Adjusts brightness: ``out = brightness_shift * range + brightness * in`` (``range``: 1 for float outputs,
    the type's maximum for integers)."""

    type = "brightness"
    ARGS = (_BRIGHTNESS, _SHIFT, _dtype_arg(_BC_TYPES, None, "default: the input's"))
    EXAMPLE = Example(
        inputs=(Tensor("int16", (4, 6, 3), layout="HWC", ragged=(1,), low=-300, high=3000),),
        args={"dtype": np.dtype(np.uint8)},
        arg_inputs={"brightness_shift": Tensor("float32", (), low=-0.1, high=0.1)},
        dali="exact",
    )


@register
class Contrast(_BrightnessContrastBase):
    """Adjusts contrast: ``out = contrast_center + contrast * (in - contrast_center)``."""

    type = "contrast"
    ARGS = (_CONTRAST, _CENTER, _dtype_arg(_BC_TYPES, None, "default: the input's"))
    EXAMPLE = Example(
        inputs=(Tensor("float32", (2, 4, 5, 3), layout="FHWC", ragged=(0,), low=0, high=1),),
        arg_inputs={"contrast": Tensor("float32", (), low=0, high=3)},
        dali="exact",
    )


# ---- the colour twist family -----------------------------------------------------------------------------
_TWIST_TYPES = ("uint8", "int16", "int32", "float16", "float32")
_HUE = Arg("hue", sch.Float(), 0.0, "Hue change, in degrees", tensor=True)
_SATURATION = Arg("saturation", sch.Float(), 1.0, "Saturation multiplier (0: grey)", tensor=True)
_IMAGE_TYPE = Arg(
    "image_type", ImageType(), types.RGB, "The images' colour space (accepted and ignored, as in DALI: RGB is assumed)"
)


class _TwistBase(SampleOperator):
    INPUTS = (sch.Input("images", "Channel-last RGB images", dtypes=_TWIST_TYPES, layouts=CHANNEL_LAST),)

    def validate(self) -> None:
        super().validate()
        _check_dtype(self, _TWIST_TYPES)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        _three_channels(image, self.type)
        dtype = args["dtype"] if args["dtype"] is not None else image.dtype
        half = 0.5 if image.dtype.kind == "f" else 128.0
        matrix, offset = color.color_twist_matrix(
            args.get("brightness", 1.0),
            args.get("contrast", 1.0),
            args.get("hue", 0.0),
            args.get("saturation", 1.0),
            args.get("value", 1.0),
            half_range=half,
        )
        return color.apply_linear(image, matrix, offset, dtype)


@register
class Hsv(_TwistBase):
    """Adjusts hue (additive, degrees), saturation and value (multiplicative) of RGB images, as DALI: a linear
    transform in the YIQ space. The output is ``uint8`` unless ``dtype`` says otherwise (DALI's default)."""

    type = "hsv"
    ARGS = (
        _HUE,
        _SATURATION,
        Arg("value", sch.Float(), 1.0, "Value (brightness) multiplier", tensor=True),
        _dtype_arg(_TWIST_TYPES, np.dtype(np.uint8), "default: uint8, as DALI"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (5, 6, 3), layout="HWC", ragged=(0, 1)),),
        args={"value": 1.1},
        arg_inputs={
            "hue": Tensor("float32", (), low=-180, high=180),
            "saturation": Tensor("float32", (), low=0, high=2),
        },
        dali="exact",
    )


@register
class Hue(_TwistBase):
    """Rotates the hue of RGB images by ``hue`` degrees (DALI's YIQ rotation)."""

    type = "hue"
    ARGS = (_HUE, _IMAGE_TYPE, _dtype_arg(_TWIST_TYPES, None, "default: the input's"))
    EXAMPLE = Example(
        inputs=(Tensor("float32", (4, 5, 3), layout="HWC", ragged=(0,), low=0, high=1),),
        arg_inputs={"hue": Tensor("float32", (), low=-90, high=90)},
        dali="exact",
    )


@register
class Saturation(_TwistBase):
    """Scales the saturation of RGB images (0: grey, 1: unchanged)."""

    type = "saturation"
    ARGS = (_SATURATION, _IMAGE_TYPE, _dtype_arg(_TWIST_TYPES, None, "default: the input's"))
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (2, 4, 4, 3), layout="FHWC", ragged=(1,)),),
        arg_inputs={"saturation": Tensor("float32", (), low=0, high=2)},
        dali="exact",
    )


@register
class ColorTwist(_TwistBase):
    """Adjusts hue, saturation, brightness and contrast of RGB images in one linear transform."""

    type = "color_twist"
    ARGS = (
        _BRIGHTNESS,
        _CONTRAST,
        _HUE,
        _SATURATION,
        _IMAGE_TYPE,
        _dtype_arg(_TWIST_TYPES, None, "default: the input's"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (5, 4, 3), layout="HWC", ragged=(0, 1)),),
        args={"saturation": 1.3, "dtype": np.dtype(np.float32)},
        arg_inputs={
            "hue": Tensor("float32", (), low=-45, high=45),
            "contrast": Tensor("float32", (), low=0.5, high=1.5),
        },
        dali="exact",
    )


# ---- colour space conversion ------------------------------------------------------------------------------
_SPACES = {types.RGB: "RGB", types.BGR: "BGR", types.GRAY: "GRAY", types.YCbCr: "YCbCr"}


@register
class ColorSpaceConversion(SampleOperator):
    """Converts ``uint8`` images between RGB, BGR, GRAY and YCbCr (ITU-R BT.601 studio range), as DALI's CPU
    operator."""

    type = "color_space_conversion"
    INPUTS = (sch.Input("images", "Channel-last uint8 images", dtypes=("uint8",), layouts=CHANNEL_LAST),)
    ARGS = (
        Arg("image_type", ImageType(), sch.REQUIRED, "The input's colour space"),
        Arg("output_type", ImageType(), sch.REQUIRED, "The output's colour space"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1)),),
        args={"image_type": types.RGB, "output_type": types.YCbCr},
        dali="exact",
    )

    def validate(self) -> None:
        super().validate()
        names = []
        for key in ("image_type", "output_type"):
            value = self.args[key]
            if value not in _SPACES:
                raise ValueError(
                    f"fn.color_space_conversion(): {key}=types.{value.name} is not supported; "
                    "use types.RGB, types.BGR, types.GRAY or types.YCbCr"
                )
            names.append(_SPACES[value])
        if names[0] == names[1]:
            raise ValueError(
                f"fn.color_space_conversion(): image_type and output_type are both types.{names[0]}; "
                "DALI supports no such conversion (leave the operator out)"
            )
        self.spaces = tuple(names)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        source, target = self.spaces
        expected = 1 if source == "GRAY" else 3
        if image.shape[-1] != expected:
            raise ValueError(
                f"image_type=types.{source} images have {expected} channel(s); this sample has shape {image.shape}"
            )
        return color.convert_color_space(image, source, target)
