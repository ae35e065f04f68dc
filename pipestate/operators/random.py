"""``fn.random.*``: uniform, normal, coin_flip, choice, beta.

Each operator draws from the run context's Philox stream keyed by (pipeline seed, operator name), or by
its own ``seed=``, indexed by the global sample index: it has no state to checkpoint. Samples have the
shape given by ``shape=`` (a scalar when omitted, as in DALI) or, with a positional input, the input's
sample shapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg
from pipestate.rng import Stream

_SHAPE = Arg(
    "shape",
    sch.Seq(sch.Int(0), broadcast=True),
    None,
    "Shape of each sample; a scalar when omitted (a positional input gives the shapes instead).",
)


def _dtype_arg(default_text: str) -> Arg:
    return Arg("dtype", sch.DType(), None, f"Output type ({default_text} when omitted).")


class RandomOperator(SampleOperator):
    """Shared machinery of ``fn.random.*``: output shapes and per-sample draws from the context's stream.

    Stateless: sample ``s`` of the pipeline always gets the words of its identity in the operator's stream
    (keyed by the pipeline seed and the operator name, or by ``seed=``). Batches whose samples share a
    shape draw in one call (:meth:`dense`); others draw per sample, with the same values.
    """

    INPUTS = (sch.Input("shape_like", "Its samples' shapes are the output shapes", optional=True),)

    def validate(self) -> None:
        super().validate()
        if self.args["shape"] is not None and self.inputs:
            raise TypeError(f"fn.{self.type}(): give either shape= or an input whose shape is used, not both")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return ""

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict, layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...]:
        shape = inputs[0].shape[1:] if inputs else tuple(self.args["shape"] or ())
        params = {k: np.asarray(args[k]) for k in self.arg_inputs}
        values = self.generate(ctx.stream(self.rng_key), math.prod(shape), params)
        return (values.reshape((ctx.batch_size, *shape)),)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        shape = inputs[0].shape if inputs else tuple(self.args["shape"] or ())
        params = {k: np.asarray(args[k])[None] for k in self.arg_inputs}
        return self.generate(Stream(self.rng_key, s.id, 1), math.prod(shape), params).reshape(shape)

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        """Return (stream.n_samples, n) values; ``params`` holds per-sample argument arrays (axis 0)."""
        raise NotImplementedError

    def param(self, params: dict[str, np.ndarray], key: str, dtype: type = np.float64) -> np.ndarray:
        """The argument ``key`` as an array broadcastable against (samples, n) values."""
        if key in params:  # checked by the runtime: one scalar per sample
            value = params[key]
            return value.astype(dtype).reshape(len(value), 1)
        return np.asarray(self.args[key], dtype=dtype)


@register
class Uniform(RandomOperator):
    """Uniformly distributed values in ``[range[0], range[1])``, or drawn from the discrete ``values``."""

    type = "random.uniform"
    EXAMPLE = Example(
        args={"shape": [4]},
        arg_inputs={"range": Tensor("float32", (2,), values=lambda i: [i % 3 - 1.0, i % 3 + 2.0])},
        dali="test:tests/operators/test_random.py",
    )
    ARGS = (
        Arg("range", sch.Seq(sch.Float(), length=2), (-1.0, 1.0), "[low, high) of the values", tensor=True),
        Arg("values", sch.Seq(sch.Float(), min_length=1), None, "Discrete values to choose from (instead of range)"),
        _dtype_arg("types.FLOAT; an integer type draws integers in [low, high)"),
        _SHAPE,
    )

    def validate(self) -> None:
        super().validate()
        values, rng = self.args["values"], self.args["range"]
        dtype = self.args["dtype"]
        self.dtype = dtype if dtype is not None else np.dtype(np.float32)
        if self.dtype.kind not in "fiu":
            raise TypeError(f"fn.random.uniform(): dtype={dtype!r} must be a floating-point or integer type")
        if values is None:
            if rng is None:
                raise TypeError("fn.random.uniform(): range= must be [low, high] (or give values=)")
            if not isinstance(rng, DataNode):
                if not rng[0] <= rng[1]:
                    raise ValueError(f"fn.random.uniform(): range={list(rng)!r} must be [low, high] with low <= high")
                self._check_fits(rng, "range")
        else:
            self._check_fits(values, "values")

    def _check_fits(self, numbers: tuple, name: str) -> None:
        if self.dtype.kind in "iu":
            info = np.iinfo(self.dtype)
            if min(numbers) < info.min or max(numbers) > info.max + (name == "range"):
                raise ValueError(
                    f"fn.random.uniform(): {name}={list(numbers)!r} does not fit dtype {self.dtype} "
                    f"([{info.min}, {info.max}]); choose a wider dtype or a narrower {name}"
                )

    def prepare(self, ctx: RunContext, inputs: list, arg_inputs: dict, layouts: tuple[str, ...]) -> None:
        if "range" in arg_inputs:
            for i, (low, high) in enumerate(np.asarray(s, dtype=np.float64).reshape(2) for s in arg_inputs["range"]):
                if low > high:
                    raise ValueError(
                        f"argument 'range' (sample {i}) = {[low, high]}: it must be [low, high], low <= high"
                    )

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        values = self.args["values"]
        if values is not None:
            table = np.asarray(values, dtype=self.dtype)
            idx = (stream.words(n).astype(np.uint64) * np.uint64(len(table))) >> np.uint64(32)
            return table[idx]
        if "range" in params:
            rng = params["range"].astype(np.float64).reshape(stream.n_samples, 2)
            low, high = rng[:, :1], rng[:, 1:]
        else:
            low, high = (np.float64(v) for v in self.args["range"])
        u = stream.uniform(n, np.dtype(np.float64))
        out = low + u * (high - low)
        if self.dtype.kind in "iu":
            return np.floor(out).astype(self.dtype)
        out = out.astype(self.dtype)
        # Rounding to float32 can reach `high`; keep the interval half-open.
        top = np.asarray(high, dtype=self.dtype)
        return np.where(out >= top, np.nextafter(top, np.asarray(-np.inf, self.dtype)), out)


@register
class Normal(RandomOperator):
    """Normally distributed values."""

    type = "random.normal"
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (3, 2), ragged=(0,)),),
        arg_inputs={"stddev": Tensor("float32", (), low=0.5, high=2.0)},
        dali="test:tests/operators/test_random.py",
    )
    ARGS = (
        Arg("mean", sch.Float(), 0.0, "Mean", tensor=True),
        Arg("stddev", sch.Float(0.0), 1.0, "Standard deviation", tensor=True),
        _dtype_arg("types.FLOAT"),
        _SHAPE,
    )

    def validate(self) -> None:
        super().validate()
        dtype = self.args["dtype"]
        self.dtype = dtype if dtype is not None else np.dtype(np.float32)
        if self.dtype.kind != "f":
            raise TypeError(f"fn.random.normal(): dtype={dtype!r} must be a floating-point type")

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        z = stream.normal(n)
        return (self.param(params, "mean") + self.param(params, "stddev") * z).astype(self.dtype)


@register
class CoinFlip(RandomOperator):
    """Bernoulli samples: 1 with ``probability``, else 0 (int32 by default, as in DALI)."""

    type = "random.coin_flip"
    EXAMPLE = Example(
        args={"shape": [5], "dtype": np.dtype(np.uint8)},
        arg_inputs={"probability": Tensor("float32", (), low=0.0, high=1.0)},
        dali="test:tests/operators/test_random.py",
    )
    ARGS = (
        Arg("probability", sch.Float(0.0, 1.0), 0.5, "Probability of 1", tensor=True),
        _dtype_arg("types.INT32"),
        _SHAPE,
    )

    def validate(self) -> None:
        super().validate()
        dtype = self.args["dtype"]
        self.dtype = dtype if dtype is not None else np.dtype(np.int32)

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        u = stream.uniform(n, np.dtype(np.float64))
        return (u < self.param(params, "probability")).astype(self.dtype)


@register
class Choice(RandomOperator):
    """Random choice from ``range(a)`` (``a`` an int) or from the list ``a``, optionally weighted by ``p``."""

    type = "random.choice"
    EXAMPLE = Example(
        args={"a": [3, 5, 7], "p": [0.2, 0.3, 0.5], "shape": [2, 3]}, dali="test:tests/operators/test_random.py"
    )
    ARGS = (
        Arg(
            "a",
            sch.Anything("a positive int or a non-empty list of values"),
            sch.REQUIRED,
            "An int n (choose from 0..n-1) or the values to choose from",
            positional=True,
        ),
        Arg("p", sch.Seq(sch.Float(0.0, 1.0), min_length=1), None, "Probabilities, one per choice, summing to 1"),
        _SHAPE,
    )

    def validate(self) -> None:
        super().validate()
        a, p = self.args["a"], self.args["p"]
        if isinstance(a, np.ndarray) and a.ndim == 0:
            a = a[()]
        if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
            if a < 1:
                raise ValueError(f"fn.random.choice(): a={a!r} must be >= 1")
            self.table = np.arange(int(a), dtype=np.int32)
        elif isinstance(a, (list, tuple, np.ndarray)) and len(a) > 0 and np.asarray(a).dtype.kind in "biuf":
            table = np.asarray(a)
            if table.dtype == np.float64 and not isinstance(a, np.ndarray):
                table = table.astype(np.float32)
            elif table.dtype == np.int64 and not isinstance(a, np.ndarray):
                table = table.astype(np.int32)
            self.table = table
        else:
            raise TypeError(f"fn.random.choice(): a={a!r} must be a positive int or a non-empty list of numbers")
        self.cdf = None
        if p is not None:
            probs = np.asarray(p, dtype=np.float64)
            if probs.shape != (len(self.table),):
                raise ValueError(f"fn.random.choice(): p has {probs.size} entries; a has {len(self.table)} choices")
            if (probs < 0).any() or abs(probs.sum() - 1.0) > 1e-6:
                raise ValueError(f"fn.random.choice(): p={list(p)!r} must be non-negative and sum to 1")
            self.cdf = np.cumsum(probs)

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        if self.cdf is None:
            idx = (stream.words(n).astype(np.uint64) * np.uint64(len(self.table))) >> np.uint64(32)
        else:
            u = stream.uniform(n, np.dtype(np.float64))
            idx = np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.table) - 1)
        return self.table[idx]


@register
class Beta(RandomOperator):
    """Beta-distributed values in [0, 1] with parameters ``alpha`` and ``beta`` (DALI's ``fn.random.beta``)."""

    type = "random.beta"
    EXAMPLE = Example(
        args={"shape": [3]},
        arg_inputs={"alpha": Tensor("float32", (), low=0.5, high=3.0)},
        dali="test:tests/operators/test_random.py",
    )
    ARGS = (
        Arg("alpha", sch.Float(), 1.0, "The alpha parameter, > 0", tensor=True),
        Arg("beta", sch.Float(), 1.0, "The beta parameter, > 0", tensor=True),
        _dtype_arg("types.FLOAT"),
        _SHAPE,
    )

    def validate(self) -> None:
        super().validate()
        for key in ("alpha", "beta"):
            value = self.args[key]
            if not isinstance(value, DataNode) and value <= 0:
                raise ValueError(f"fn.random.beta(): {key}={value!r} must be > 0")
        dtype = self.args["dtype"]
        self.dtype = dtype if dtype is not None else np.dtype(np.float32)
        if self.dtype.kind != "f":
            raise TypeError(f"fn.random.beta(): dtype={dtype!r} must be a floating-point type")

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        alpha = np.broadcast_to(self.param(params, "alpha"), (stream.n_samples, 1))
        beta = np.broadcast_to(self.param(params, "beta"), (stream.n_samples, 1))
        if (alpha <= 0).any() or (beta <= 0).any():
            raise ValueError("fn.random.beta(): alpha and beta must be > 0 for every sample")
        out = np.empty((stream.n_samples, n), dtype=np.float64)
        for i in range(stream.n_samples):
            out[i] = stream.generator(i).beta(alpha[i, 0], beta[i, 0], size=n)
        return out.astype(self.dtype)
