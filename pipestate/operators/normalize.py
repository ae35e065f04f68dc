"""``fn.normalize``: ``out = scale * (in - mean) / stddev + shift``, with the mean and standard deviation given
(scalars or per-sample tensors) or computed over ``axes`` of each sample, or of the whole batch (``batch=True``).

The arithmetic follows DALI's CPU operator: statistics in ``float32`` (the mean is the sum times
``float32(1 / n)``, the variance the sum of squared ``float32`` differences times ``float32(1 / (n - ddof))``),
a zero variance (plus ``epsilon``) gives a zero scale, and the output is
``saturate_cast(float32((in - mean) * inv_stddev + shift))``. Sums are accumulated in double precision, where
DALI accumulates in ``float32``, and the inverse square root is exact, where DALI uses the processor's
approximate ``rsqrtss`` refined by one Newton step: computed statistics agree with DALI's to a few ``float32``
ulps, given ones exactly (without ``epsilon``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import Example, Sample, SampleOperator, Tensor, register, saturate_cast
from pipestate.operators import schema as sch
from pipestate.operators.base import RunContext
from pipestate.operators.schema import Arg

_F = np.float32
_IN_TYPES = ("uint8", "int8", "uint16", "int16", "int32", "uint32", "float32")
_OUT_TYPES = ("float32", "uint8", "int8", "uint16", "int16", "int32")


class FloatTensor(sch.Kind):
    """A finite number (as a constant), or per sample a tensor of finite numbers of any shape."""

    text = "a finite number (or, as a DataNode, a tensor of them per sample)"

    def check(self, value: Any, where: str) -> float:
        return sch.Float().check(value, where)

    def check_samples(self, samples: Any, where: str) -> None:
        for i, sample in enumerate(samples):
            array = np.asarray(sample)
            if array.dtype.kind not in "iuf":
                raise TypeError(f"{where} (sample {i}) has type {array.dtype}; it must be {self.text}")
            if not np.isfinite(array).all():
                raise ValueError(f"{where} (sample {i}) has a value that is not finite; it must be {self.text}")

    def sample_value(self, sample: np.ndarray) -> np.ndarray:
        return np.asarray(sample, dtype=_F)


@register
class Normalize(SampleOperator):
    """Normalizes the input: ``out = scale * (in - mean) / stddev + shift``; the mean and standard deviation are
    given or computed over ``axes`` (all by default), per sample or across the batch (``batch=True``)."""

    type = "normalize"
    INPUTS = (sch.Input("input", "Any tensor", dtypes=_IN_TYPES),)
    ARGS = (
        Arg("mean", FloatTensor(), None, "Mean to subtract (computed from the input when not given)", tensor=True),
        Arg("stddev", FloatTensor(), None, "Standard deviation (computed from the input when not given)", tensor=True),
        Arg("axes", sch.Seq(sch.Int(), broadcast=True), None, "Axes reduced by the statistics (default: all)"),
        Arg("axis_names", sch.Str(), None, "The reduced axes by their layout letters (instead of axes)"),
        Arg("batch", sch.Bool(), False, "Compute the statistics across the whole batch"),
        Arg("scale", sch.Float(), 1.0, "Multiplies the output (useful for integer outputs)"),
        Arg("shift", sch.Float(), 0.0, "The value the mean maps to"),
        Arg("epsilon", sch.Float(0.0), 0.0, "Added to the variance"),
        Arg("ddof", sch.Int(0), 0, "Delta degrees of freedom of the computed variance: sum / (n - ddof)"),
        Arg("dtype", sch.DType(), np.dtype(np.float32), f"Output type, one of {'/'.join(_OUT_TYPES)}"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1)),),
        args={"axis_names": "HW", "scale": 64.0, "shift": 128.0, "dtype": np.dtype(np.uint8), "epsilon": 1.0},
        dali="test:tests/operators/test_normalize.py",
    )

    def validate(self) -> None:
        super().validate()
        args = self.args
        if args["dtype"].name not in _OUT_TYPES:
            raise TypeError(f"fn.normalize(): dtype={args['dtype'].name} is not supported; use one of {_OUT_TYPES}")
        if args["axes"] is not None and args["axis_names"] is not None:
            raise TypeError("fn.normalize(): give axes= or axis_names=, not both")
        if args["axes"] is not None and len(set(args["axes"])) != len(args["axes"]):
            raise ValueError(f"fn.normalize(): axes={list(args['axes'])} lists an axis twice")
        if args["batch"]:
            for name in ("mean", "stddev"):
                if isinstance(args[name], DataNode):
                    raise TypeError(
                        f"fn.normalize(): {name}= cannot be a per-sample tensor with batch=True; give a scalar"
                    )

    # ---- which axes ------------------------------------------------------------------------------------
    def _axes(self, ndim: int, layout: str, params: Sequence[np.ndarray]) -> tuple[int, ...]:
        names = self.args["axis_names"]
        if names is not None:
            missing = [c for c in names if c not in layout]
            if missing or len(set(names)) != len(names):
                raise ValueError(f"axis_names={names!r} does not name distinct axes of the input's layout {layout!r}")
            return tuple(sorted(layout.index(c) for c in names))
        axes = self.args["axes"]
        if axes is not None:
            bad = [a for a in axes if not -ndim <= a < ndim]
            if bad:
                raise ValueError(f"axes={list(axes)}: axis {bad[0]} is out of range for {ndim}-dimensional samples")
            return tuple(sorted(a % ndim for a in axes))
        tensors = [p for p in params if p.ndim]
        if tensors:  # inferred from the shape of a given mean/stddev: its axes of extent 1
            return tuple(a for a in range(ndim) if tensors[0].shape[a] == 1)
        return tuple(range(ndim))

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        samples = [np.asarray(s) for s in inputs[0]]
        params = {k: [np.asarray(v, dtype=_F) for v in arg_inputs[k]] for k in ("mean", "stddev") if k in arg_inputs}
        axes_list = []
        for i, x in enumerate(samples):
            given = [p[i] for p in params.values()]
            for name, values in params.items():
                p = values[i]
                if p.ndim and (p.ndim != x.ndim or any(e not in (1, n) for e, n in zip(p.shape, x.shape))):
                    raise ValueError(
                        f"argument {name!r} (sample {i}) has shape {p.shape}; it must be a scalar or have the "
                        f"input's {x.ndim} dimensions, each of extent 1 or the input's ({x.shape})"
                    )
            axes_list.append(self._axes(x.ndim, layouts[0], given))
        if len(set(axes_list)) > 1:
            raise ValueError("the reduced axes differ between samples; give axes= or axis_names=")
        axes = axes_list[0] if axes_list else ()
        extra: dict[str, Sequence] = {"_axes": [axes] * len(samples)}
        if self.args["batch"] and samples:
            extra.update(self._batch_stats(samples, axes))
        return extra

    # ---- statistics ------------------------------------------------------------------------------------
    def _batch_stats(self, samples: list[np.ndarray], axes: tuple[int, ...]) -> dict[str, Sequence]:
        kept = [tuple(n for a, n in enumerate(x.shape) if a not in axes) for x in samples]
        if len(set(kept)) > 1:
            raise ValueError(f"batch=True needs the samples' non-reduced extents to match; got {sorted(set(kept))}")
        volume = sum(int(np.prod([x.shape[a] for a in axes])) for x in samples)
        mean = self.args["mean"]
        if mean is None:
            total = sum(np.sum(x, axis=axes, keepdims=True, dtype=np.float64) for x in samples)
            mean = _mean(total, volume)
        else:
            mean = _F(mean)
        stddev = self.args["stddev"]
        if stddev is None:
            total = sum(_sum_squares(x, mean, axes) for x in samples)
            inv = _inv_from_sum_squares(total, volume, self.args)
        else:
            inv = _inv_stddev(_F(stddev), self.args)
        return {"_mean": [mean] * len(samples), "_inv": [inv] * len(samples)}

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (x,) = inputs
        axes = args["_axes"]
        if "_mean" in args:
            mean, inv = args["_mean"], args["_inv"]
        else:
            volume = int(np.prod([x.shape[a] for a in axes]))
            mean = args["mean"]
            if mean is None:
                mean = _mean(np.sum(x, axis=axes, keepdims=True, dtype=np.float64), volume)
            else:
                mean = np.asarray(mean, dtype=_F)
            stddev = args["stddev"]
            if stddev is None:
                inv = _inv_from_sum_squares(_sum_squares(x, mean, axes), volume, args)
            else:
                inv = _inv_stddev(np.asarray(stddev, dtype=_F), args)
        out = x.astype(_F)
        out -= mean
        out *= inv
        out += _F(args["shift"])
        return saturate_cast(out, args["dtype"])


def _mean(total: np.ndarray, volume: int) -> np.ndarray:
    """DALI's mean: the sum (as float32) times float32(1 / n); 0 for an empty reduction."""
    if volume == 0:
        return np.zeros_like(total, dtype=_F)
    return total.astype(_F) * _F(1.0 / volume)


def _sum_squares(x: np.ndarray, mean: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    diff = x.astype(_F) - mean
    return np.sum(diff * diff, axis=axes, keepdims=True, dtype=np.float64)


def _inv_from_sum_squares(total: np.ndarray, volume: int, args: Mapping[str, Any]) -> np.ndarray:
    """``scale / sqrt(sum / (n - ddof) + epsilon)``, 0 where that variance is 0 (DALI's ScaleRSqrtKeepZero)."""
    scale, eps, ddof = _F(args["scale"]), _F(args["epsilon"]), args["ddof"]
    if volume > ddof:
        rdiv = _F(1.0 / (volume - ddof))
    else:
        rdiv = _F(1)
        if eps == 0:
            scale = _F(0)
    variance = total.astype(_F) * rdiv + eps
    with np.errstate(divide="ignore"):
        inv = scale / np.sqrt(variance.astype(np.float64))
    return np.where(variance == 0, _F(0), inv.astype(_F))


def _inv_stddev(stddev: np.ndarray, args: Mapping[str, Any]) -> np.ndarray:
    """A given standard deviation as ``scale / stddev`` (or ``scale / sqrt(stddev**2 + epsilon)``)."""
    scale, eps = _F(args["scale"]), _F(args["epsilon"])
    with np.errstate(divide="ignore", invalid="ignore"):
        if eps:
            variance = stddev * stddev + eps
            return (scale / np.sqrt(variance.astype(np.float64))).astype(_F)
        return (scale / stddev).astype(_F)
