"""Displacement filters: ``fn.sphere``, ``fn.water`` and ``fn.jitter`` (DALI's ``DisplacementFilter``).

Each output pixel ``(y, x)`` reads the input at a displaced position ``p`` (continuous coordinates, pixel
centres at ``i + 0.5``) with DALI's sampler: nearest neighbour takes pixel ``floor(p)``, linear interpolates
the four pixels around ``p - 0.5``; outside the image, ``fill_value``. The sampling is OpenCV's ``remap``
(nearest neighbour exact; linear within 1 level: OpenCV's weights are 1/32-pixel fixed point). ``mask=0``
leaves a sample unchanged. DALI runs ``jitter`` on the GPU only; here it runs on the CPU, drawing the
displacements from the sample's own random stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.image import _args
from pipestate.operators.schema import Arg
from pipestate.types import DALIInterpType

_F = np.float32
IMAGES = sch.Input("images", "uint8 or float32 HWC images", ("uint8", "float32"), layouts=("HWC",))
COMMON = (
    Arg("fill_value", sch.Float(), 0.0, "Value of pixels read from outside the image"),
    Arg("mask", _args.Flag(), 1, "0 leaves the sample unchanged", tensor=True),
)


def remap(image: np.ndarray, px: np.ndarray, py: np.ndarray, interp: DALIInterpType, fill: float) -> np.ndarray:
    """Sample ``image`` at the continuous positions ``(px, py)`` (one per output pixel) as DALI's sampler."""
    import cv2

    if interp == DALIInterpType.INTERP_NN:
        map_x, map_y = np.floor(px).astype(_F), np.floor(py).astype(_F)
        flags = cv2.INTER_NEAREST
    else:
        map_x, map_y = (px - _F(0.5)).astype(_F), (py - _F(0.5)).astype(_F)
        flags = cv2.INTER_LINEAR
    value = fill if image.dtype.kind == "f" else float(np.clip(np.rint(fill), 0, 255))
    out = cv2.remap(image, map_x, map_y, flags, borderMode=cv2.BORDER_CONSTANT, borderValue=(value,) * 4)
    return out.reshape(image.shape[:2] + image.shape[2:]) if out.ndim == 2 else out


class Displacement(SampleOperator):
    """Shared part: the mask, the interpolation, OpenCV's limits."""

    INPUTS = (IMAGES,)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        if not args["mask"] or x.size == 0:
            return x
        if max(x.shape[:2]) > 32767 or x.shape[2] > 4:
            raise ValueError(f"images up to 32767 pixels and 4 channels are supported; got {x.shape}")
        px, py = self.positions(s, x.shape[0], x.shape[1], args)
        return remap(np.ascontiguousarray(x), px, py, args["interp_type"], args["fill_value"])

    def positions(self, s: Sample, h: int, w: int, args: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Where each output pixel reads: ``(px, py)`` arrays of shape ``(h, w)``."""
        raise NotImplementedError


@register
class Sphere(Displacement):
    """A "sphere" (fish-eye) effect (DALI's ``fn.sphere``): pixels are read at ``centre + r * d / d_max``
    where ``d`` is the pixel's offset from the centre."""

    type = "sphere"
    ARGS = (
        *COMMON,
        Arg(
            "interp_type",
            _args.WARP_INTERP,
            DALIInterpType.INTERP_NN,
            "Interpolation: types.INTERP_NN or INTERP_LINEAR",
        ),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (9, 12, 3), layout="HWC", ragged=(0, 1)),),
        args={"fill_value": 20.0},
        arg_inputs={"mask": Tensor("int32", (), low=0, high=1.99)},
    )

    def positions(self, s: Sample, h: int, w: int, args: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        mid_x, mid_y = _F(w * 0.5), _F(h * 0.5)
        d = _F(int(max(mid_x, mid_y)))
        true_y = (np.arange(h, dtype=_F) + _F(0.5) - mid_y)[:, None]
        true_x = (np.arange(w, dtype=_F) + _F(0.5) - mid_x)[None, :]
        rad = (np.sqrt(true_x * true_x + true_y * true_y) / d).astype(_F)
        return (mid_x + rad * true_x).astype(_F), (mid_y + rad * true_y).astype(_F)


@register
class Water(Displacement):
    """A water-ripple effect (DALI's ``fn.water``): pixel ``(y, x)`` is read at
    ``(x + ampl_x * sin(freq_x * y + phase_x), y + ampl_y * cos(freq_y * x + phase_y))``."""

    type = "water"
    ARGS = (
        *COMMON,
        Arg(
            "interp_type",
            _args.WARP_INTERP,
            DALIInterpType.INTERP_NN,
            "Interpolation: types.INTERP_NN or INTERP_LINEAR",
        ),
        Arg("ampl_x", sch.Float(), 10.0, "Amplitude of the wave along x"),
        Arg("ampl_y", sch.Float(), 10.0, "Amplitude of the wave along y"),
        Arg("freq_x", sch.Float(), 0.049087, "Frequency of the wave along x"),
        Arg("freq_y", sch.Float(), 0.049087, "Frequency of the wave along y"),
        Arg("phase_x", sch.Float(), 0.0, "Phase of the wave along x"),
        Arg("phase_y", sch.Float(), 0.0, "Phase of the wave along y"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (9, 12, 3), layout="HWC", ragged=(0, 1)),),
        args={"ampl_x": 2.5, "ampl_y": 1.5, "freq_x": 0.5},
        arg_inputs={"mask": Tensor("int32", (), low=0, high=1.99)},
    )

    def positions(self, s: Sample, h: int, w: int, args: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        ys = np.arange(h, dtype=_F)[:, None]
        xs = np.arange(w, dtype=_F)[None, :]
        dx = _F(args["ampl_x"]) * np.sin(_F(args["freq_x"]) * ys + _F(args["phase_x"]), dtype=_F)
        dy = _F(args["ampl_y"]) * np.cos(_F(args["freq_y"]) * xs + _F(args["phase_y"]), dtype=_F)
        return np.broadcast_to(xs + dx, (h, w)).astype(_F), np.broadcast_to(ys + dy, (h, w)).astype(_F)


@register
class Jitter(Displacement):
    """Move every pixel by a random offset in ``[-nDegree/2, nDegree/2)`` along each axis (DALI's
    ``fn.jitter``; DALI has it on the GPU only). Offsets come from the sample's own random stream; a pixel
    moved past the last row or column reads ``fill_value``."""

    type = "jitter"
    ARGS = (
        *COMMON,
        Arg(
            "interp_type",
            _args.WARP_INTERP,
            DALIInterpType.INTERP_NN,
            "Accepted: the offsets are whole pixels, so every interpolation reads the pixel",
        ),
        Arg("nDegree", sch.Int(1, 1024), 2, "Offsets are drawn from [-nDegree/2, nDegree/2)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (9, 12, 3), layout="HWC", ragged=(0, 1)),),
        args={"nDegree": 3},
        arg_inputs={"mask": Tensor("int32", (), low=0, high=1.99)},
        dali="test:tests/operators/image/test_random_crops.py",
    )

    def positions(self, s: Sample, h: int, w: int, args: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        n = args["nDegree"]
        offsets = s.rng.integers(0, n, size=(2, h, w)) - n // 2
        xs = np.clip(np.arange(w)[None, :] + offsets[0], 0, w)
        ys = np.clip(np.arange(h)[:, None] + offsets[1], 0, h)
        # whole-pixel positions: the pixel's centre, so nearest neighbour and linear both read it
        return (xs + 0.5).astype(_F), (ys + 0.5).astype(_F)
