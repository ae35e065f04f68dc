"""``fn.coord_transform`` and ``fn.coord_flip``: linear maps and reflections of point coordinates.

Both take points as the rows of the last axis (``(..., n)``: ``n`` coordinates per point) and compute in
float32 in DALI's order of operations, so their outputs are bit-identical to DALI's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import _affine, saturate_cast
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

F32 = np.float32
_DIMS = range(1, 7)
# DALI's flip flags are int32 arguments that its own tests set to True/False: both are accepted
FLAG = sch.Either(sch.Int(), sch.Bool())


class _Shaped(sch.Seq):
    """Floats given as a list (or one value); per sample, a tensor of one of ``ndims`` dimensions, kept as is."""

    def __init__(self, ndims: tuple[int, ...], text: str) -> None:
        super().__init__(sch.Float(), min_length=1, broadcast=True)
        self.ndims = ndims
        self.text = text

    def check_samples(self, samples: Any, where: str) -> None:
        for i, sample in enumerate(samples):
            a = np.asarray(sample)
            if a.dtype.kind not in "iuf" or a.ndim not in self.ndims:
                raise TypeError(f"{where} (sample {i}) has type {a.dtype} and shape {a.shape}; it must be {self.text}")
            if not np.isfinite(a).all():
                raise ValueError(f"{where} (sample {i}) = {a.tolist()!r}; its values must be finite")

    def sample_value(self, sample: np.ndarray) -> np.ndarray:
        return np.asarray(sample, dtype=F32)


def _diagonal(value: float, rows: int, cols: int) -> np.ndarray:
    m = np.zeros((rows, cols), dtype=F32)
    m[np.arange(min(rows, cols)), np.arange(min(rows, cols))] = value
    return m


@register
class CoordTransform(SampleOperator):
    """Apply ``out = M * in + T`` to the points of the last axis (DALI's ``fn.coord_transform``).

    ``M`` is an ``m x n`` matrix (a list, row-major; one value: that value on the diagonal of an ``n x n``
    matrix), ``T`` a vector of ``m`` values (one value: repeated), ``MT`` the block matrix ``[M T]``
    instead of both. The output has ``m`` coordinates per point, as float32 or, with ``dtype`` equal to the
    input's integer type, rounded and clamped to it.
    """

    type = "coord_transform"
    INPUTS = (
        sch.Input(
            "points",
            "Points or vectors: the last axis holds the n coordinates",
            ("uint8", "int16", "uint16", "int32", "float32"),
            (2, 3, 4, 5, 6),
        ),
    )
    ARGS = (
        Arg(
            "M",
            _Shaped((0, 2), "a scalar or an (m, n) matrix"),
            None,
            "The matrix (identity when omitted)",
            tensor=True,
        ),
        Arg("T", _Shaped((0, 1), "a scalar or a vector of m values"), None, "The translation vector", tensor=True),
        Arg("MT", _Shaped((0, 2), "a scalar or an (m, n+1) matrix"), None, "The block matrix [M T]", tensor=True),
        Arg("dtype", sch.DType(), np.dtype(F32), "Output type: float32 or the input's type (rounded, clamped)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (5, 2), ragged=(0,), low=-10, high=10),),
        arg_inputs={"MT": Tensor("float32", (3, 3), low=-2, high=2)},
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        if a["MT"] is not None and (a["M"] is not None or a["T"] is not None):
            raise TypeError("fn.coord_transform(): MT= (the block matrix [M T]) cannot be combined with M= or T=")
        if a["dtype"].kind not in "iuf" or a["dtype"].kind == "f" and a["dtype"] != F32:
            raise TypeError(f"fn.coord_transform(): dtype={a['dtype']} must be float32 or the input's integer type")

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        dtype = self.args["dtype"]
        (points,) = inputs
        in_types, _ = points.dtypes_and_ndims()
        if in_types and dtype != F32 and {dtype} != in_types:
            raise TypeError(
                f"fn.coord_transform(): dtype={dtype} must be float32 or the input's type ({in_types.pop()})"
            )
        dims = {s.shape[-1] for s in points if s.size}
        if len(dims) > 1:
            raise ValueError(
                f"fn.coord_transform(): every sample's points must have the same dimensions; got {sorted(dims)}"
            )
        for name, batch in arg_inputs.items():
            shapes = {np.shape(s) for s in batch}
            if len(shapes) > 1:
                raise ValueError(f"fn.coord_transform(): argument {name!r}: every sample must have the same shape")
        if not dims and ctx.batch_size:
            return {"_degenerate": [True] * ctx.batch_size}  # DALI: a batch without points has 0 outputs
        return None

    def _matrices(self, args: Mapping[str, Any], n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(M as (m, n), T as (m,) or None) for points of ``n`` coordinates."""
        fused = args["MT"] is not None
        name = "MT" if fused else "M"
        value = args[name]
        cols = n + 1 if fused else n
        if value is None:
            m = _diagonal(1.0, n, n)
            t = None
        else:
            flat = np.asarray(value, dtype=F32)
            if flat.size == 1:
                m = _diagonal(flat.reshape(()), n, n)
                t = np.zeros(n, dtype=F32) if fused else None
            else:
                if flat.ndim == 2 and flat.shape[1] != cols:
                    raise ValueError(
                        f"fn.coord_transform(): {name} has {flat.shape[1]} columns; points of {n} coordinates "
                        f"need {cols}"
                    )
                if flat.size % cols:
                    raise ValueError(
                        f"fn.coord_transform(): cannot form a matrix of {cols} columns from the {flat.size} "
                        f"values of {name}"
                    )
                full = flat.reshape(-1, cols)
                m, t = (full[:, :n], full[:, n]) if fused else (full, None)
        rows = m.shape[0]
        if not fused and args["T"] is not None:
            t = np.asarray(args["T"], dtype=F32).reshape(-1)
            if t.size == 1:
                t = np.full(rows, t[0], dtype=F32)
            elif t.size != rows:
                raise ValueError(f"fn.coord_transform(): T has {t.size} values; M has {rows} rows")
        if rows not in _DIMS or n not in _DIMS:
            raise ValueError(f"fn.coord_transform(): points of {n} to {rows} coordinates: both must be in 1..6")
        return m, t

    def _out(self, points: np.ndarray, args: Mapping[str, Any]) -> np.ndarray:
        m, t = self._matrices(args, points.shape[-1])
        out = _affine.apply(points.astype(F32), m, t)
        return saturate_cast(out, self.args["dtype"])

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (points,) = inputs
        if args.get("_degenerate"):
            return np.zeros((*points.shape[:-1], 0), dtype=self.args["dtype"])
        try:
            if points.size == 0:
                rows = self._rows(args, points.shape[-1])
                return np.zeros((*points.shape[:-1], rows), dtype=self.args["dtype"])
            return self._out(points, args)
        except ValueError as exc:  # a per-sample argument's values: name the sample after the argument
            raise ValueError(f"{exc} (sample {s.index})") from None

    def _rows(self, args: Mapping[str, Any], n: int) -> int:
        """Output coordinates for an empty sample (whose ``n`` may differ from the batch's)."""
        value = args["MT"] if args["MT"] is not None else args["M"]
        if value is None or np.size(value) == 1:
            return n
        value = np.asarray(value)
        cols = n + (args["MT"] is not None)
        return value.shape[0] if value.ndim == 2 else value.size // max(cols, 1)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        (points,) = inputs
        if self.arg_inputs or points.size == 0:
            return None
        return (self._out(points, self.args),)


@register
class CoordFlip(SampleOperator):
    """Reflect point coordinates about a center: ``c' = 2 * center - c`` on the flipped axes
    (DALI's ``fn.coord_flip``; points of 1 to 3 coordinates, in the order given by ``layout``)."""

    type = "coord_flip"
    INPUTS = (sch.Input("points", "Points, (N, ndim) with ndim <= 3", ("float32",), (2,)),)
    ARGS = (
        Arg("layout", sch.Str(), "", "Order of the coordinates: a string of x, y, z ('' : x, xy or xyz)"),
        Arg("flip_x", FLAG, 1, "Flip the horizontal (x) coordinate (non-zero: flip)", tensor=True),
        Arg("flip_y", FLAG, 0, "Flip the vertical (y) coordinate", tensor=True),
        Arg("flip_z", FLAG, 0, "Flip the depthwise (z) coordinate", tensor=True),
        Arg("center_x", sch.Float(), 0.5, "Flip center on the horizontal axis", tensor=True),
        Arg("center_y", sch.Float(), 0.5, "Flip center on the vertical axis", tensor=True),
        Arg("center_z", sch.Float(), 0.5, "Flip center on the depthwise axis", tensor=True),
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (4, 3), ragged=(0,), low=0, high=1),),
        arg_inputs={"flip_y": Tensor("int32", (), values=lambda i: i % 2)},
        args={"flip_z": 1, "center_z": 0.25, "layout": "zyx"},
    )

    def validate(self) -> None:
        super().validate()
        layout = self.args["layout"]
        if set(layout) - set("xyz") or len(set(layout)) != len(layout):
            raise ValueError(f"fn.coord_flip(): layout={layout!r} must be a string of distinct letters x, y, z")

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        dims = {s.shape[1] for s in inputs[0]}
        if len(dims) > 1:
            raise ValueError(
                f"fn.coord_flip(): every sample must have points of the same dimensions; got {sorted(dims)}"
            )
        ndim = next(iter(dims), 0)
        if ndim > 3:
            raise ValueError(f"fn.coord_flip(): points have {ndim} coordinates; at most 3 (x, y, z) are supported")
        layout = self.args["layout"] or "xyz"[:ndim]
        axes = []
        for k, letter in enumerate("xyz"):
            if k < ndim and letter not in layout:
                raise ValueError(f"fn.coord_flip(): dimension {letter!r} is not in layout={layout!r}")
            axes.append(layout.index(letter) if letter in layout else k)
        return {"_axes": [tuple(axes)] * ctx.batch_size} if ctx.batch_size else None

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        (points,) = inputs
        ndim = points.shape[1]
        flip = [False] * 3
        origin = [F32(1)] * 3
        for letter, axis in zip("xyz", args["_axes"]):
            flip[axis] = bool(args[f"flip_{letter}"])
            origin[axis] = F32(2) * F32(args[f"center_{letter}"])
        out = points.copy()
        for d in range(ndim):
            if flip[d]:
                out[:, d] = origin[d] - points[:, d]
        return out
