"""``fn.noise.gaussian``, ``fn.noise.salt_and_pepper`` and ``fn.noise.shot``.

Each sample's noise comes from its own generator (``s.rng``: the operator's stream and the sample's identity),
so outputs never depend on threads, prefetching or restores. The noise is applied with DALI's arithmetic:
``saturate_cast(in + n)`` in ``float32`` (``float64`` for 4- and 8-byte integers) for the Gaussian noise,
replacement by the salt or pepper value where a uniform draw falls below ``prob`` (one draw per pixel unless
``per_channel=True``), and ``saturate_cast(poisson(max(0, in / factor)) * factor)`` for the shot noise. The
draws themselves (numpy's generators) differ from DALI's (``std::`` distributions on its own Philox); the
tests compare the arithmetic with DALI given the same draws, and the distributions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.operators import Example, Sample, SampleOperator, Tensor, register, saturate_cast
from pipestate.operators import schema as sch
from pipestate.operators.schema import Arg

_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32")
_F = np.float32


def float_type(dtype: np.dtype) -> type:
    """The type DALI computes Gaussian noise in: float64 for 4- and 8-byte integers, else float32."""
    return np.float64 if dtype.kind in "iu" and dtype.itemsize >= 4 else np.float32


def add_gaussian(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``saturate_cast(image + noise)`` with ``noise`` in :func:`float_type` (DALI's ``GaussianNoiseImpl``)."""
    ftype = noise.dtype.type
    return saturate_cast(image.astype(ftype) + noise, image.dtype)


def salt_and_pepper(
    image: np.ndarray, draws: np.ndarray, prob: float, salt_vs_pepper: float, salt: Any, pepper: Any
) -> np.ndarray:
    """Where ``draws < prob`` the value becomes ``salt`` (``draws < prob * salt_vs_pepper``) or ``pepper``;
    ``draws`` broadcasts against the image (one draw per pixel shares it across channels)."""
    p = _F(prob)
    noisy = draws < p
    salted = draws < p * _F(salt_vs_pepper)
    out = np.where(noisy, np.where(salted, image.dtype.type(salt), image.dtype.type(pepper)), image)
    return out.astype(image.dtype, copy=False)


def shot(image: np.ndarray, counts: np.ndarray, factor: float) -> np.ndarray:
    """``saturate_cast(counts * factor)`` (DALI's ``ShotNoiseImpl``); the counts are Poisson draws of
    :func:`shot_rates`."""
    return saturate_cast(counts.astype(_F) * _F(factor), image.dtype)


def shot_rates(image: np.ndarray, factor: float) -> np.ndarray:
    """The Poisson rates ``max(0, in * (1 / factor))`` in float32, as DALI computes them."""
    return np.maximum(_F(0), image.astype(_F) * (_F(1) / _F(factor)))


def _value_of_type(value: float, dtype: np.dtype) -> Any:
    """A float argument converted to the input's type as C++ does: truncated toward zero; out of the type's range
    it wraps as on x86 (beyond 64 bits it saturates; C++ leaves both undefined)."""
    if dtype.kind == "f":
        return dtype.type(value)
    whole = float(np.trunc(_F(value)))
    if -(2.0**63) <= whole < 2.0**63:
        return np.array(int(whole), dtype=np.int64).astype(dtype)[()]
    return saturate_cast(np.array([whole]), dtype)[0]


@register
class GaussianNoise(SampleOperator):
    """Adds Gaussian noise ``N(mean, stddev)`` to every element, saturating to the input's type."""

    type = "noise.gaussian"
    INPUTS = (sch.Input("input", "Any tensor", dtypes=_TYPES),)
    ARGS = (
        Arg("mean", sch.Float(), 0.0, "Mean of the distribution", tensor=True),
        Arg("stddev", sch.Float(0.0), 1.0, "Standard deviation of the distribution", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1)),),
        args={"mean": 3.0},
        arg_inputs={"stddev": Tensor("float32", (), low=0, high=40)},
        dali="test:tests/operators/test_noise.py",
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        ftype = float_type(image.dtype)
        noise = s.rng.standard_normal(image.shape, dtype=ftype)
        noise *= ftype(args["stddev"])
        noise += ftype(args["mean"])
        return add_gaussian(image, noise)


@register
class SaltAndPepperNoise(SampleOperator):
    """Replaces a fraction ``prob`` of the values (of the pixels, unless ``per_channel=True``) with the salt value
    (a fraction ``salt_vs_pepper`` of them) or the pepper value."""

    type = "noise.salt_and_pepper"
    INPUTS = (sch.Input("input", "Any tensor (channels first or last)", dtypes=_TYPES),)
    ARGS = (
        Arg("prob", sch.Float(0.0, 1.0), 0.05, "Probability of a value being replaced", tensor=True),
        Arg(
            "salt_vs_pepper", sch.Float(0.0, 1.0), 0.5, "Fraction of the replaced values that become salt", tensor=True
        ),
        Arg("salt_val", sch.Float(), None, "Salt (default: 1 for floats, the type's maximum)", tensor=True),
        Arg("pepper_val", sch.Float(), None, "Pepper (default: -1 for floats, the type's minimum)", tensor=True),
        Arg("per_channel", sch.Bool(), False, "Draw for every channel (True) or once per pixel (False)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1)),),
        args={"pepper_val": 7.0},
        arg_inputs={"prob": Tensor("float32", (), low=0, high=0.6)},
        dali="test:tests/operators/test_noise.py",
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        dtype = image.dtype
        draw_shape = list(image.shape)
        if not args["per_channel"] and image.ndim:
            layout = s.layouts[0]
            channel = layout.find("C") if layout else image.ndim - 1
            if channel not in (0, image.ndim - 1):
                raise ValueError(
                    f"per_channel=False needs the channels (C) first or last in the layout (or no layout); "
                    f"got {layout!r}"
                )
            draw_shape[channel] = 1
        draws = s.rng.random(draw_shape, dtype=_F)
        floating = dtype.kind == "f"
        salt, pepper = args["salt_val"], args["pepper_val"]
        salt = (dtype.type(1) if floating else np.iinfo(dtype).max) if salt is None else _value_of_type(salt, dtype)
        pepper = (
            (dtype.type(-1) if floating else np.iinfo(dtype).min) if pepper is None else _value_of_type(pepper, dtype)
        )
        return salt_and_pepper(image, draws, args["prob"], args["salt_vs_pepper"], salt, pepper)


@register
class ShotNoise(SampleOperator):
    """Shot (Poisson) noise: each value becomes ``poisson(max(0, in / factor)) * factor``, saturated to the input's
    type; ``factor=0`` leaves the input unchanged (as DALI documents)."""

    type = "noise.shot"
    INPUTS = (sch.Input("input", "Any tensor", dtypes=_TYPES),)
    ARGS = (Arg("factor", sch.Float(), 20.0, "Output value of one event (0: no noise)", tensor=True),)
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1)),),
        arg_inputs={"factor": Tensor("float32", (), low=0.5, high=30)},
        dali="test:tests/operators/test_noise.py",
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (image,) = inputs
        factor = args["factor"]
        if factor == 0:
            return image.copy()
        rates = shot_rates(image, factor)
        if not np.isfinite(rates).all() or rates.max(initial=0) > 1e12:
            raise ValueError(f"factor={factor} gives Poisson rates beyond 1e12 (input / factor); use a larger factor")
        counts = s.rng.poisson(rates.astype(np.float64))
        return shot(image, counts, factor)
