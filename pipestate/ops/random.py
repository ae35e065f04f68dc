"""``fn.random.*``: uniform, normal, coin_flip, choice.

Each operator owns a Philox stream keyed by (pipeline seed, operator name), or by its own ``seed=``,
and indexed by the global sample index; its checkpoint state is that index. Samples have the shape given
by ``shape=`` (a scalar when omitted, as in DALI) or, with a positional input, the input's sample shapes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.checkpoint import RngState
from pipestate.errors import CheckpointMismatchError
from pipestate.graph import DataNode
from pipestate.ops.base import BuildEnv, Operator, RunContext, register
from pipestate.rng import Stream, derive_key
from pipestate.types import to_numpy_dtype


class RandomOperator(Operator):
    """Shared machinery: seeding, the sample counter (the checkpointed state), output shapes."""

    stateful = True
    COMMON_ARGS: dict[str, Any] = {"shape": None, "seed": -1}

    def validate(self) -> None:
        if len(self.inputs) > 1:
            raise TypeError(f"fn.{self.type}() takes at most one input (its samples' shapes are used)")
        shape = self.args["shape"]
        if shape is not None:
            shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
            if any(not isinstance(d, (int, np.integer)) or d < 0 for d in shape):
                raise ValueError(f"fn.{self.type}(): shape={self.args['shape']!r} must be non-negative integers")
            if self.inputs:
                raise TypeError(f"fn.{self.type}(): give either shape= or an input whose shape is used, not both")
            self.args["shape"] = tuple(int(d) for d in shape)
        if not isinstance(self.args["seed"], (int, np.integer)):
            raise TypeError(f"fn.{self.type}(): seed={self.args['seed']!r} must be an integer (-1: derive it)")

    def setup(self, env: BuildEnv) -> None:
        seed = int(self.args["seed"])
        self.key = derive_key("op-seed", seed) if seed >= 0 else derive_key("pipeline", env.seed, self.name)
        self.counter = 0

    def state(self) -> RngState:
        return RngState(self.key, self.counter)

    def restore(self, state: RngState) -> None:
        if not isinstance(state, RngState) or state.key != self.key:
            raise CheckpointMismatchError(
                f"operator {self.name!r} ({self.type}): the checkpoint's random stream has another key; "
                "it was written with a different seed or pipestate version"
            )
        self.counter = state.counter

    def _shapes(self, ctx: RunContext, inputs: list[Batch]) -> list[tuple[int, ...]]:
        if inputs:
            return inputs[0].shape()
        return [self.args["shape"] or ()] * ctx.batch_size

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        shapes = self._shapes(ctx, inputs)
        first, self.counter = self.counter, self.counter + ctx.batch_size
        if len(set(shapes)) == 1:
            shape = shapes[0]
            n = math.prod(shape)
            params = {k: np.stack([np.asarray(s) for s in b]) for k, b in arg_inputs.items()}
            values = self.generate(Stream(self.key, first, ctx.batch_size), n, params)
            return (Batch(values.reshape((ctx.batch_size, *shape))),)
        samples = []
        for i, shape in enumerate(shapes):
            params = {k: np.asarray(b[i])[None] for k, b in arg_inputs.items()}
            values = self.generate(Stream(self.key, first + i, 1), math.prod(shape), params)
            samples.append(values.reshape(shape))
        return (Batch(samples),)

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        """Return (stream.n_samples, n) values; ``params`` holds per-sample argument arrays (axis 0)."""
        raise NotImplementedError

    def param(self, params: dict[str, np.ndarray], key: str, dtype: type = np.float64) -> np.ndarray:
        """The argument ``key`` as an array broadcastable against (samples, n) values."""
        if key in params:
            value = params[key]
            if value.size != len(value):
                raise ValueError(
                    f"argument {key!r} must be a scalar per sample; got samples of shape {value.shape[1:]}"
                )
            return value.astype(dtype).reshape(len(value), 1)
        return np.asarray(self.args[key], dtype=dtype)


@register
class Uniform(RandomOperator):
    """Uniformly distributed values in ``[range[0], range[1])``, or drawn from the discrete ``values``.

    Args:
        range: ``[low, high)``; may be a DataNode with a 2-element sample per sample. Default ``[-1, 1]``.
        values: Discrete values to choose from with equal probability (instead of ``range``).
        shape: Shape of each sample; a scalar when omitted. A positional input gives the shapes instead.
        dtype: Output type (``types.FLOAT`` default; an integer type draws integers in ``[low, high)``).
        seed: Per-operator seed; by default derived from the pipeline seed and the operator name.
    """

    type = "random.uniform"
    ARGS = {"range": (-1.0, 1.0), "values": None, "dtype": None, **RandomOperator.COMMON_ARGS}
    TENSOR_ARGS = frozenset({"range"})

    def validate(self) -> None:
        super().validate()
        values, rng = self.args["values"], self.args["range"]
        if values is not None:
            if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
                raise ValueError("fn.random.uniform(): values= must be a non-empty list of numbers")
        elif not isinstance(rng, DataNode):
            if len(rng) != 2 or not rng[0] <= rng[1]:
                raise ValueError(f"fn.random.uniform(): range={rng!r} must be [low, high] with low <= high")
        dtype = self.args["dtype"]
        self.dtype = to_numpy_dtype(dtype) if dtype is not None else np.dtype(np.float32)

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        values = self.args["values"]
        if values is not None:
            table = np.asarray(values, dtype=self.dtype if self.args["dtype"] is not None else np.float32)
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
    """Normally distributed values.

    Args:
        mean: Mean (a DataNode gives one per sample). Default 0.
        stddev: Standard deviation (a DataNode gives one per sample). Default 1.
        shape: Shape of each sample; a scalar when omitted. A positional input gives the shapes instead.
        dtype: Output floating-point type (``types.FLOAT`` default).
        seed: Per-operator seed; by default derived from the pipeline seed and the operator name.
    """

    type = "random.normal"
    ARGS = {"mean": 0.0, "stddev": 1.0, "dtype": None, **RandomOperator.COMMON_ARGS}
    TENSOR_ARGS = frozenset({"mean", "stddev"})

    def validate(self) -> None:
        super().validate()
        stddev = self.args["stddev"]
        if not isinstance(stddev, DataNode) and stddev < 0:
            raise ValueError(f"fn.random.normal(): stddev={stddev!r} must be >= 0")
        dtype = self.args["dtype"]
        self.dtype = to_numpy_dtype(dtype) if dtype is not None else np.dtype(np.float32)
        if self.dtype.kind != "f":
            raise TypeError(f"fn.random.normal(): dtype={dtype!r} must be a floating-point type")

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        z = stream.normal(n)
        return (self.param(params, "mean") + self.param(params, "stddev") * z).astype(self.dtype)


@register
class CoinFlip(RandomOperator):
    """Bernoulli samples: 1 with ``probability``, else 0 (int32 by default, as in DALI).

    Args:
        probability: Probability of 1; a DataNode gives one per sample. Default 0.5.
        shape: Shape of each sample; a scalar when omitted. A positional input gives the shapes instead.
        dtype: Output type (``types.INT32`` default).
        seed: Per-operator seed; by default derived from the pipeline seed and the operator name.
    """

    type = "random.coin_flip"
    ARGS = {"probability": 0.5, "dtype": None, **RandomOperator.COMMON_ARGS}
    TENSOR_ARGS = frozenset({"probability"})

    def validate(self) -> None:
        super().validate()
        p = self.args["probability"]
        if not isinstance(p, DataNode) and not 0.0 <= p <= 1.0:
            raise ValueError(f"fn.random.coin_flip(): probability={p!r} must be in [0, 1]")
        dtype = self.args["dtype"]
        self.dtype = to_numpy_dtype(dtype) if dtype is not None else np.dtype(np.int32)

    def generate(self, stream: Stream, n: int, params: dict[str, np.ndarray]) -> np.ndarray:
        u = stream.uniform(n, np.dtype(np.float64))
        return (u < self.param(params, "probability")).astype(self.dtype)


@register
class Choice(RandomOperator):
    """Random choice from ``range(a)`` (``a`` an int) or from the list ``a``, optionally weighted by ``p``.

    Args:
        a: An int ``n`` (choose from ``0..n-1``, int32) or a list of values (given positionally).
        p: Probabilities, one per choice, summing to 1. Default: uniform.
        shape: Shape of each sample; a scalar when omitted.
        seed: Per-operator seed; by default derived from the pipeline seed and the operator name.
    """

    type = "random.choice"
    ARGS = {"a": None, "p": None, **RandomOperator.COMMON_ARGS}
    POSITIONAL_ARGS = ("a",)

    def validate(self) -> None:
        super().validate()
        a, p = self.args["a"], self.args["p"]
        if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
            if a < 1:
                raise ValueError(f"fn.random.choice(): a={a!r} must be >= 1")
            self.table = np.arange(int(a), dtype=np.int32)
        elif isinstance(a, (list, tuple, np.ndarray)) and len(a) > 0:
            table = np.asarray(a)
            if table.dtype == np.float64 and not isinstance(a, np.ndarray):
                table = table.astype(np.float32)
            elif table.dtype == np.int64 and not isinstance(a, np.ndarray):
                table = table.astype(np.int32)
            self.table = table
        else:
            raise ValueError(f"fn.random.choice(): a={a!r} must be a positive int or a non-empty list")
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
