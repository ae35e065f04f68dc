"""``fn.reductions.*``: ``min``, ``max``, ``sum``, ``mean``, ``mean_square``, ``rms``, ``std_dev``, ``variance``.

As DALI: the axes come from ``axes`` (negative counts from the back) or ``axis_names`` (letters of the
input's layout), all axes by default, none for an empty list; ``keep_dims`` keeps reduced axes with
extent 1. Inputs are integers or float32. ``sum`` gives 64-bit integers of the input's signedness
(float32 stays), ``min``/``max`` the input's type, the others float32; ``dtype`` picks another
accumulation and output type where DALI allows one. ``std_dev``/``variance`` take the mean as a second
input (a number, or one value per output element per sample) and ``ddof``.

Floating-point results are DALI's bits: sums run in DALI's order (:mod:`pipestate.operators._reduce`),
means multiply by the float32 reciprocal of the count, and integer accumulators wrap and truncate as
DALI's C++ does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators._reduce import extreme, int_sum, tree_sum
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32")
_F32 = np.dtype(np.float32)
# C's type of x * x (integers narrower than int promote to int; 32-bit squares widen, as DALI's).
_SQUARE = {"uint8": "int32", "int8": "int32", "uint16": "int32", "int16": "int32", "int32": "int64"}
_SQUARE.update({"uint32": "uint64", "int64": "int64", "uint64": "uint64", "float32": "float32"})


def _wide(dtype: np.dtype) -> np.dtype:
    return np.dtype("float32" if dtype.kind == "f" else ("uint64" if dtype.kind == "u" else "int64"))


def _allowed(kind: str, dtype: np.dtype) -> tuple[np.dtype, ...]:
    """The output types DALI allows for ``kind`` of ``dtype`` input, the default first."""
    if dtype == _F32 or kind in ("min", "max"):
        return (dtype,)
    if kind == "sum":
        return (_wide(dtype),) if dtype.itemsize == 8 else (_wide(dtype), dtype, _F32)
    if kind == "mean_square":
        return (_F32, _wide(dtype))
    return (_F32, dtype)


_AXES_ARGS = (
    Arg("axes", sch.Seq(sch.Int(), broadcast=True), None, "Axes to reduce (negative: from the back); default all"),
    Arg("axis_names", sch.Str(), None, "Layout letters of the axes to reduce (instead of axes)"),
    Arg("keep_dims", sch.Bool(), False, "Keep the reduced axes, with extent 1"),
)
_DTYPE = Arg("dtype", sch.DType(), None, "Output (and accumulation) type; default as DALI's")
_DDOF = Arg("ddof", sch.Int(), 0, "Delta degrees of freedom: the divisor is the count minus ddof")


_PARTS = 4  # a dense batch is reduced in this many slices of samples, on the worker threads


def _exact_total(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray | None:
    """DALI's float32 sum of unsigned integers when no partial sum can exceed 2**24 (then every addition is
    exact, in any order): the integer sum, converted. ``None`` otherwise (or for other input types)."""
    if x.dtype.kind != "u" or not axes:
        return None
    total = int_sum(x, axes, np.dtype(np.uint64))
    if total.size and int(total.max()) > 2**24:
        return None
    return total.astype(_F32)


def _rows(mean: np.ndarray | None, part: np.ndarray) -> np.ndarray | None:
    return None if mean is None else mean[part[0] : part[-1] + 1]


class _Reduction(SampleOperator):
    """Common work of the reductions (``KIND`` names the one)."""

    KIND: ClassVar[str]
    INPUTS = (sch.Input("data", "The tensors to reduce", dtypes=_TYPES),)

    def validate(self) -> None:
        super().validate()
        axes, names = self.args["axes"], self.args["axis_names"]
        if axes is not None and names is not None:
            raise ValueError(f"fn.{self.type}(): axes= and axis_names= are mutually exclusive; give one")
        if axes is not None and len(set(axes)) != len(axes):
            twice = next(a for a in axes if axes.count(a) > 1)
            raise ValueError(f"fn.{self.type}(): axes={list(axes)} lists axis {twice} twice")

    def reduced_axes(self, ndim: int, layout: str) -> tuple[int, ...]:
        """The sample axes reduced for samples of ``ndim`` dimensions with ``layout``.

        Raises:
            ValueError: an axis out of range, listed twice, or a name not in the layout (naming it).
        """
        axes, names = self.args["axes"], self.args["axis_names"]
        if names is not None:
            missing = [c for c in names if c not in layout]
            if missing:
                raise ValueError(f"axis_names={names!r}: axis {missing[0]!r} is not in the input's layout {layout!r}")
            return tuple(sorted(layout.index(c) for c in names))
        if axes is None:
            return tuple(range(ndim))
        for axis in axes:
            if not -ndim <= axis < ndim:
                raise ValueError(
                    f"axes={list(axes)}: axis {axis} is out of range for {ndim}-dimensional samples "
                    f"(valid: {-ndim}..{ndim - 1})"
                )
        result = [a % ndim for a in axes]
        if len(set(result)) != len(result):
            raise ValueError(f"axes={list(axes)} names one axis twice for {ndim}-dimensional samples")
        return tuple(sorted(result))

    def out_dtype(self, dtype: np.dtype) -> np.dtype:
        """The output type for input of ``dtype``.

        Raises:
            TypeError: ``dtype=`` is not one DALI allows for this input type.
        """
        allowed = _allowed(self.KIND, dtype)
        wanted = self.args.get("dtype")
        if wanted is None:
            return allowed[0]
        if wanted not in allowed:
            names = ", ".join(str(d) for d in allowed)
            raise TypeError(f"dtype={wanted}: for {dtype} input, fn.{self.type}() outputs {names}")
        return wanted

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        layout = layouts[0]
        if not layout or self.args["keep_dims"]:
            return layout if len(layout) == ndim else ""
        axes = self.reduced_axes(len(layout), layout)
        return "".join(c for i, c in enumerate(layout) if i not in axes)

    # ---- computation (``first`` sample axis: 0 per sample, 1 for a batch with the batch first) ---------
    def compute(self, x: np.ndarray, axes: tuple[int, ...], first: int, mean: np.ndarray | None) -> np.ndarray:
        """Reduce ``x`` over ``axes`` (sample axes) as DALI; ``mean`` is shaped like the output with kept dims."""
        kind = self.KIND
        dtype = self.out_dtype(x.dtype)
        shifted = tuple(a + first for a in axes)
        if kind in ("min", "max"):
            out = extreme(x, shifted, kind == "max") if axes else x
        elif kind in ("std_dev", "variance") and not axes:
            out = np.zeros(x.shape, _F32)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                if kind in ("sum", "mean"):  # narrow integers convert exactly as they are added
                    values = x if x.dtype.itemsize <= 2 or dtype.kind != "f" else x.astype(dtype, copy=False)
                elif kind in ("mean_square", "rms"):
                    wide = x.astype(_SQUARE[str(x.dtype)], copy=False)
                    values = (wide * wide).astype(dtype, copy=False)
                else:
                    d = x.astype(_F32, copy=False) - mean
                    values = d * d
            with np.errstate(over="ignore", invalid="ignore"):
                if not axes:
                    total = values.astype(dtype, copy=False) if kind in ("sum", "mean") else values
                elif dtype.kind == "f" or kind in ("std_dev", "variance"):
                    exact = _exact_total(x, shifted) if kind in ("sum", "mean") and x.dtype.kind == "u" else None
                    if exact is not None:
                        total = exact
                    else:
                        total = tree_sum(values, shifted, values.dtype if kind in ("std_dev", "variance") else dtype)
                else:
                    total = int_sum(values, shifted, dtype if kind in ("sum", "mean") else values.dtype)
            return self._finish(total, x, axes, first, dtype)
        return self._keep(out, axes, first)

    def _finish(self, total: np.ndarray, x: np.ndarray, axes: tuple[int, ...], first: int, dtype: np.dtype):
        count = int(np.prod([x.shape[a + first] for a in axes], dtype=np.int64))
        return self._keep(self._postprocess(total, count, dtype), axes, first)

    def _keep(self, out: np.ndarray, axes: tuple[int, ...], first: int) -> np.ndarray:
        if self.args["keep_dims"] and axes:
            out = np.expand_dims(out, tuple(a + first for a in axes))
        return np.asarray(out)

    def _postprocess(self, total: np.ndarray, count: int, dtype: np.dtype) -> np.ndarray:
        kind = self.KIND
        if kind == "sum":
            return total
        divisor = count - self.args.get("ddof", 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            norm = np.float32(1.0 / divisor) if divisor else np.float32(np.inf)
            scaled = total.astype(_F32, copy=False) * norm
            if kind in ("rms", "std_dev"):
                scaled = np.sqrt(scaled)
            return scaled if dtype == _F32 else scaled.astype(dtype)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        axes = self.reduced_axes(x.ndim, s.layouts[0])
        mean = self._mean(inputs[1], x.shape, axes, 0) if len(inputs) > 1 else None
        return self.compute(x, axes, 0, mean)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        axes = self.reduced_axes(x.ndim - 1, layouts[0])
        dtype = self.out_dtype(x.dtype)
        if self.KIND not in ("min", "max") and (x.dtype.kind == "f" or dtype.kind == "f"):
            exact = _exact_total(x, tuple(a + 1 for a in axes)) if self.KIND in ("sum", "mean") else None
            if exact is None or not axes:
                return None  # floating-point sums: per sample, on the worker threads (DALI's order, 1-D gathers)
            return (self._finish(exact, x, axes, 1, dtype),)
        mean = self._mean(inputs[1], x.shape, axes, 1) if len(inputs) > 1 else None
        if len(x) < 2:
            return (self.compute(x, axes, 1, mean),)
        parts = np.array_split(np.arange(len(x)), min(len(x), _PARTS))  # whole samples per worker thread
        outs = ctx.map(lambda p: self.compute(x[p[0] : p[-1] + 1], axes, 1, _rows(mean, p)), parts)
        return (outs[0] if len(outs) == 1 else np.concatenate(outs),)

    def _mean(self, mean: np.ndarray, shape: Sequence[int], axes: tuple[int, ...], first: int) -> np.ndarray:
        """The ``mean`` input shaped to broadcast against the data (reduced axes kept with extent 1)."""
        kept = [1 if i - first in axes else n for i, n in enumerate(shape)]
        if mean.dtype != _F32:
            raise TypeError(f"input 'mean' has type {mean.dtype}; it must be float32 (e.g. a float constant)")
        per_sample = int(np.prod(mean.shape[first:], dtype=np.int64))
        want = int(np.prod(kept[first:], dtype=np.int64))
        if per_sample == 1:
            return mean.reshape(mean.shape[:first] + (1,) * (len(shape) - first))
        if per_sample != want:
            out = [n for i, n in enumerate(shape[first:]) if i not in axes]
            raise ValueError(
                f"input 'mean' has samples of shape {tuple(mean.shape[first:])}; it must hold one value, or one per "
                f"output element (output shape {tuple(out)})"
            )
        return mean.reshape(mean.shape[:first] + tuple(kept[first:]))


def _reduction(kind: str, doc: str, example: Example, extra: tuple[Arg, ...] = (), mean_input: bool = False):
    inputs = _Reduction.INPUTS
    if mean_input:
        inputs = (*inputs, sch.Input("mean", "The mean: a float, or one value per output element", ("float32",)))
    name = "".join(part.title() for part in kind.split("_"))
    return register(
        type(
            name,
            (_Reduction,),
            {
                "__doc__": doc,
                "__module__": __name__,
                "type": f"reductions.{kind}",
                "KIND": kind,
                "INPUTS": inputs,
                "ARGS": _AXES_ARGS + extra,
                "EXAMPLE": example,
            },
        )
    )


_IMAGES = Tensor("uint8", (6, 5, 3), layout="HWC", ragged=(0, 1))
Min = _reduction(
    "min", "The smallest element over the reduced axes.", Example(inputs=(_IMAGES,), args={"axis_names": "HW"})
)
Max = _reduction(
    "max",
    "The largest element over the reduced axes.",
    Example(inputs=(Tensor("int16", (4, 7), ragged=(1,), low=-900, high=900),), args={"axes": [-1], "keep_dims": True}),
)
Sum = _reduction(
    "sum",
    "The sum over the reduced axes (integers: 64-bit by default).",
    Example(inputs=(Tensor("float32", (40, 33, 3), layout="HWC", ragged=(0, 1), low=-100, high=100),)),
    (_DTYPE,),
)
Mean = _reduction(
    "mean",
    "The mean over the reduced axes (float32 by default).",
    Example(inputs=(Tensor("uint8", (30, 20, 3), layout="HWC", ragged=(0, 1)),), args={"axes": [0, 2]}),
    (_DTYPE,),
)
MeanSquare = _reduction(
    "mean_square",
    "The mean of the squares over the reduced axes (float32 by default).",
    Example(inputs=(Tensor("int32", (50,), ragged=(0,), low=-3000, high=3000),), args={"keep_dims": True}),
    (_DTYPE,),
)
Rms = _reduction(
    "rms",
    "The square root of the mean of the squares over the reduced axes (float32 by default).",
    Example(inputs=(Tensor("float32", (9, 70), ragged=(1,), low=-2, high=2),), args={"axes": [1]}),
    (_DTYPE,),
)
StdDev = _reduction(
    "std_dev",
    "The standard deviation over the reduced axes around the given mean (float32).",
    Example(
        inputs=(
            Tensor("float32", (12, 40, 3), layout="HWC", ragged=(0, 1), low=0, high=9),
            Tensor("float32", (3,), low=3, high=6),
        ),
        args={"axes": [0, 1]},
    ),
    (_DDOF,),
    mean_input=True,
)
Variance = _reduction(
    "variance",
    "The variance over the reduced axes around the given mean (float32).",
    Example(
        inputs=(Tensor("float32", (64,), ragged=(0,), low=-1, high=1), Tensor("float32", (), low=-0.2, high=0.2)),
        args={"ddof": 1},
    ),
    (_DDOF,),
    mean_input=True,
)
