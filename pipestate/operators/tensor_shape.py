"""Shape plumbing: ``fn.reshape``, ``fn.reinterpret``, ``fn.squeeze``, ``fn.expand_dims``, ``fn.transpose``.

As DALI's: ``reshape``/``reinterpret`` take the new shape from ``shape``, ``rel_shape`` (times the input's
extents, rounded half away from zero; ``src_dims`` picks the input axis of each output axis, -1 a new
one) or a second input, one negative extent being inferred from the size; they keep the data (a view)
and the layout when the number of dimensions is unchanged. ``reinterpret`` also changes the element type
(the innermost extent follows the size). ``squeeze`` removes extent-1 axes, ``expand_dims`` inserts them
(``axes`` are output positions), ``transpose`` permutes axes (and, by default, the layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_INTEGRAL = sch.INTEGERS


def _round_half_away(value: np.float32) -> int:
    return int(np.trunc(value + np.copysign(np.float32(0.5), value)))


def _layout_for(layout_arg: str | None, input_layout: str, ndim: int) -> str:
    """DALI's output layout of a reshape: the argument (checked), else the input's when ranks agree."""
    if layout_arg is not None:
        if layout_arg and len(layout_arg) != ndim:
            raise ValueError(f"layout={layout_arg!r} has {len(layout_arg)} letters for {ndim}-dimensional output")
        return layout_arg
    return input_layout if len(input_layout) == ndim else ""


_RESHAPE_ARGS = (
    Arg("shape", sch.Seq(sch.Int()), None, "The output shape; one negative extent is inferred", tensor=True),
    Arg(
        "rel_shape",
        sch.Seq(sch.Float()),
        None,
        "The output shape relative to the input's (or to src_dims' axes); one negative extent is inferred",
        tensor=True,
    ),
    Arg("src_dims", sch.Seq(sch.Int(-1)), None, "The input axis of each output axis (-1: a new axis)", tensor=True),
    Arg("layout", sch.Str(), None, "The output layout ('' clears it); default: the input's when ranks agree"),
)


@register
class Reshape(SampleOperator):
    """Treat the data as having another shape and/or layout (the data is not copied)."""

    type = "reshape"
    INPUTS = (
        sch.Input("data", "The data to reshape"),
        sch.Input(
            "shape_input", "The shape of each sample (1-D integers), instead of shape=", _INTEGRAL, (1,), optional=True
        ),
    )
    ARGS = _RESHAPE_ARGS
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (4, 6, 3), layout="HWC", ragged=(0,)),),
        args={"rel_shape": [1, 0.5, -1]},
    )

    def validate(self) -> None:
        super().validate()
        a = self.args
        sources = (len(self.inputs) == 2) + (a["shape"] is not None) + (a["rel_shape"] is not None)
        if sources > 1:
            raise ValueError(f"fn.{self.type}(): the shape input, shape= and rel_shape= are mutually exclusive")
        for name in ("shape", "rel_shape"):
            value = a[name]
            if value is None or not isinstance(value, tuple):
                continue
            if not value and name == "rel_shape":
                raise ValueError(f"fn.{self.type}(): rel_shape= is empty")
            if sum(v < 0 for v in value) > 1:
                raise ValueError(f"fn.{self.type}(): {name}={list(value)} has more than one negative extent")
            if any(v == 0 for v in value):
                raise ValueError(f"fn.{self.type}(): {name}={list(value)}: an extent of 0 is not allowed")
        if not sources and a["layout"] is None and a["src_dims"] is None and self._dtype() is None:
            what = "new shape, layout nor type" if "dtype" in a else "new shape nor layout"
            raise ValueError(f"fn.{self.type}() does nothing: its arguments give neither a {what}")

    def _dtype(self) -> np.dtype | None:
        return self.args.get("dtype")

    def target_shape(self, shape: tuple[int, ...], itemsize: int, args: Mapping[str, Any], given: Any) -> tuple:
        """The output shape of a sample of ``shape`` (``given``: the shape input's sample, or ``None``).

        Raises:
            ValueError: naming the argument that does not fit the sample.
        """
        out_size = self._dtype().itemsize if self._dtype() is not None else itemsize
        ndim = len(shape)
        src = args["src_dims"]
        if src is not None:
            bad = [d for d in src if not -1 <= d < ndim]
            if bad:
                raise ValueError(f"src_dims={list(src)}: {bad[0]} is not an axis of {ndim}-dimensional samples or -1")
        if given is not None:
            out = [int(v) for v in np.asarray(given).reshape(-1)]
        elif args["shape"] is not None:
            out = list(args["shape"])
        elif args["rel_shape"] is not None:
            out = self._relative(shape, args["rel_shape"], src)
        elif src is not None:
            out = [1 if d == -1 else shape[d] for d in src]
            if int(np.prod(out)) != int(np.prod(shape)):
                raise ValueError(
                    f"src_dims={list(src)} gives shape {tuple(out)}, which does not hold {shape}'s elements"
                )
            return self._retype(tuple(out), itemsize, out_size)
        else:
            return self._retype(shape, itemsize, out_size)
        return self._infer(shape, out, itemsize, out_size)

    def _relative(self, shape: tuple[int, ...], rel: Sequence[float], src: Sequence[int] | None) -> list[int]:
        if src is not None and len(src) != len(rel):
            raise ValueError(f"src_dims= and rel_shape= have different lengths ({len(src)} vs {len(rel)})")
        if src is None and len(rel) > len(shape) and not (len(rel) == len(shape) + 1 and rel[-1] < 0):
            raise ValueError(
                f"rel_shape={list(rel)} has more values than the input has dimensions ({len(shape)}); use src_dims= "
                "to add axes"
            )
        out = []
        for d, r in enumerate(rel):
            if r < 0:
                out.append(-1)
                continue
            axis = src[d] if src is not None else d
            out.append(_round_half_away(np.float32(r) * np.float32(1 if axis == -1 else shape[axis])))
        return out

    @staticmethod
    def _infer(shape: tuple[int, ...], out: list[int], itemsize: int, out_size: int) -> tuple[int, ...]:
        negative = [d for d, e in enumerate(out) if e < 0]
        if len(negative) > 1:
            raise ValueError(f"shape {out}: only one extent may be negative (inferred)")
        size = int(np.prod(shape)) * itemsize
        if negative:
            w = negative[0]
            others = int(np.prod([e for d, e in enumerate(out) if d != w]))
            if others == 0:
                raise ValueError(f"cannot infer extent {w} of {out}: the other extents hold no elements")
            out[w] = size // (others * out_size)
        if int(np.prod(out)) * out_size != size:
            raise ValueError(f"shape {tuple(out)} does not hold the {size} bytes of a sample of shape {shape}")
        return tuple(out)

    @staticmethod
    def _retype(shape: tuple[int, ...], itemsize: int, out_size: int) -> tuple[int, ...]:
        if itemsize == out_size:
            return shape
        if not shape or (shape[-1] * itemsize) % out_size:
            raise ValueError(
                f"dtype: the innermost extent of shape {shape} ({itemsize}-byte elements) is not a whole number of "
                f"{out_size}-byte elements"
            )
        return (*shape[:-1], shape[-1] * itemsize // out_size)

    def _apply(self, x: np.ndarray, shape: tuple[int, ...], batch: bool) -> np.ndarray:
        dtype = self._dtype()
        if dtype is not None and dtype != x.dtype:
            x = np.ascontiguousarray(x)
            x = x.reshape(x.shape[:1] + (-1,) if batch else (-1,)).view(dtype)
        return x.reshape(((len(x),) if batch else ()) + shape)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        shape = self.target_shape(x.shape, x.dtype.itemsize, args, inputs[1] if len(inputs) > 1 else None)
        _layout_for(self.args["layout"], "", len(shape))
        return self._apply(x, shape, batch=False)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if len(inputs) > 1 or self.arg_inputs:
            return None
        x = inputs[0]
        shape = self.target_shape(x.shape[1:], x.dtype.itemsize, args, None)
        _layout_for(self.args["layout"], "", len(shape))
        return (self._apply(x, shape, batch=True),)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return _layout_for(self.args["layout"], layouts[0], ndim)


@register
class Reinterpret(Reshape):
    """Treat the data as having another element type, shape and/or layout (the data is not copied)."""

    type = "reinterpret"
    ARGS = (*_RESHAPE_ARGS, Arg("dtype", sch.DType(), None, "The output type (the size in bytes is kept)"))
    EXAMPLE = Example(inputs=(Tensor("uint8", (3, 8), layout="HW", ragged=(0,)),), args={"dtype": np.dtype(np.int16)})


def _axes_names(layout: str, names: str, what: str) -> list[int]:
    missing = [c for c in names if c not in layout]
    if missing:
        raise ValueError(f"{what}={names!r}: axis {missing[0]!r} is not in the input's layout {layout!r}")
    return sorted({layout.index(c) for c in names})


@register
class Squeeze(SampleOperator):
    """Remove axes of extent 1 (the data is not copied)."""

    type = "squeeze"
    INPUTS = (sch.Input("data", "The data to squeeze"),)
    ARGS = (
        Arg("axes", sch.Seq(sch.Int(), broadcast=True), None, "The axes to remove (each of extent 1)"),
        Arg("axis_names", sch.Str(), None, "The layout letters of the axes to remove"),
    )
    EXAMPLE = Example(inputs=(Tensor("float32", (1, 5, 1, 3), layout="DHWC", ragged=(1,)),), args={"axis_names": "DW"})

    def validate(self) -> None:
        super().validate()
        axes, names = self.args["axes"], self.args["axis_names"]
        if (axes is None) == (names is None):
            raise ValueError("fn.squeeze() needs exactly one of axes= or axis_names=")
        if axes is not None and len(set(axes)) != len(axes):
            raise ValueError(f"fn.squeeze(): axes={list(axes)} lists an axis twice")

    def removed(self, ndim: int, layout: str) -> list[int]:
        """The axes removed from samples of ``ndim`` dimensions with ``layout``."""
        if self.args["axis_names"] is not None:
            return _axes_names(layout, self.args["axis_names"], "axis_names")
        axes = list(self.args["axes"])
        bad = [a for a in axes if not 0 <= a < ndim]
        if bad:
            raise ValueError(f"axes={axes}: {bad[0]} is not an axis of {ndim}-dimensional samples (0..{ndim - 1})")
        return sorted(axes)

    def _apply(self, x: np.ndarray, axes: list[int], first: int) -> np.ndarray:
        bad = [a for a in axes if x.shape[a + first] != 1]
        if bad:
            raise ValueError(
                f"axis {bad[0]} has extent {x.shape[bad[0] + first]}; only axes of extent 1 can be removed"
            )
        return x.reshape([n for i, n in enumerate(x.shape) if i - first not in axes])

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        return self._apply(x, self.removed(x.ndim, s.layouts[0]), 0)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        return (self._apply(x, self.removed(x.ndim - 1, layouts[0]), 1),)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        layout = layouts[0]
        if not layout:
            return ""
        axes = self.removed(len(layout), layout)
        return "".join(c for i, c in enumerate(layout) if i not in axes)


@register
class ExpandDims(SampleOperator):
    """Insert axes of extent 1 at the given output positions (the data is not copied)."""

    type = "expand_dims"
    INPUTS = (sch.Input("data", "The data to expand"),)
    ARGS = (
        Arg("axes", sch.Seq(sch.Int(0), broadcast=True), sch.REQUIRED, "Positions of the new axes in the output"),
        Arg("new_axis_names", sch.Str(), "", "Layout letters of the new axes (default: the layout is cleared)"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int16", (4, 3), layout="HW", ragged=(0,)),), args={"axes": [0, 3], "new_axis_names": "FC"}
    )

    def validate(self) -> None:
        super().validate()
        axes, names = self.args["axes"], self.args["new_axis_names"]
        if len(set(axes)) != len(axes):
            raise ValueError(f"fn.expand_dims(): axes={list(axes)} lists a position twice")
        if names and len(names) != len(axes):
            raise ValueError(f"fn.expand_dims(): new_axis_names={names!r} must have one letter per axis ({len(axes)})")

    def _shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        axes = sorted(self.args["axes"])
        ndim = len(shape) + len(axes)
        if axes and axes[-1] >= ndim:
            raise ValueError(
                f"axes={list(self.args['axes'])}: {axes[-1]} is past the last axis of the {ndim}-dimensional output"
            )
        rest = iter(shape)
        return tuple(1 if d in axes else next(rest) for d in range(ndim))

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        if self.args["new_axis_names"] and self.args["axes"] and not s.layouts[0] and inputs[0].ndim:
            raise ValueError("new_axis_names= needs an input with a layout")
        return inputs[0].reshape(self._shape(inputs[0].shape))

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        if self.args["new_axis_names"] and self.args["axes"] and not layouts[0] and x.ndim > 1:
            raise ValueError("new_axis_names= needs an input with a layout")
        return (x.reshape(x.shape[:1] + self._shape(x.shape[1:])),)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        axes, names = self.args["axes"], self.args["new_axis_names"]
        if not axes:
            return layouts[0] if len(layouts[0]) == ndim else ""
        if not names:
            return ""
        letters = dict(zip(axes, names))
        rest = iter(layouts[0])
        return "".join(letters[d] if d in letters else next(rest) for d in range(ndim))


@register
class Transpose(SampleOperator):
    """Permute the axes (and, by default, the layout's letters) of each sample."""

    type = "transpose"
    INPUTS = (sch.Input("data", "The data to transpose"),)
    ARGS = (
        Arg("perm", sch.Seq(sch.Int(0)), None, "Input axis of each output axis; default: reversed"),
        Arg("transpose_layout", sch.Bool(), True, "Permute the layout's letters too (else keep the input's)"),
        Arg("output_layout", sch.Str(), None, "The output layout (overrides transpose_layout)"),
    )
    EXAMPLE = Example(inputs=(Tensor("uint8", (5, 4, 3), layout="HWC", ragged=(0, 1)),), args={"perm": [2, 0, 1]})

    def perm(self, ndim: int) -> list[int]:
        """The permutation for samples of ``ndim`` dimensions.

        Raises:
            ValueError: ``perm`` is not a permutation of the sample's axes.
        """
        perm = self.args["perm"]
        if perm is None:
            return list(range(ndim))[::-1]
        if sorted(perm) != list(range(ndim)):
            raise ValueError(
                f"perm={list(perm)} is not a permutation of the {ndim} axes of the samples (0..{ndim - 1})"
            )
        return list(perm)

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        return np.ascontiguousarray(x.transpose(self.perm(x.ndim)))

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        return (np.ascontiguousarray(x.transpose([0] + [p + 1 for p in self.perm(x.ndim - 1)])),)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        given = self.args["output_layout"]
        if given is not None:
            if given and len(given) != ndim:
                raise ValueError(f"output_layout={given!r} has {len(given)} letters for {ndim}-dimensional output")
            return given
        layout = layouts[0]
        if len(layout) != ndim:
            return ""
        return "".join(layout[p] for p in self.perm(ndim)) if self.args["transpose_layout"] else layout
