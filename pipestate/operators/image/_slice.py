"""DALI's slice window (``fn.slice``, ``fn.decoders.image_slice``): which axes, where the window starts and ends.

The window is given by named arguments (``start``/``rel_start`` and one of ``end``/``rel_end``/``shape``/
``rel_shape``) or by two positional inputs, ``anchor`` and ``shape`` (floats are fractions of the extent unless
``normalized_anchor``/``normalized_shape`` is False; integers are pixels). The arguments list the axes of
``axis_names`` (default ``"WH"``: width first) or of ``axes``. Coordinates become integers as in DALI:
``anchor = llround(start)``, ``end = llround(start + shape)`` (halves away from zero), computed in double.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators.schema import Arg

WINDOW_ARGS = (
    Arg(
        "axes",
        sch.Seq(sch.Int(), broadcast=True),
        None,
        "Axes (indices; negative count from the back) the window arguments refer to (instead of axis_names)",
    ),
    Arg("axis_names", sch.Str(), None, "Axes (layout letters) the window arguments refer to; default 'WH'"),
    Arg("start", sch.Seq(sch.Int(), min_length=1, broadcast=True), None, "Window start, in pixels", tensor=True),
    Arg(
        "rel_start",
        sch.Seq(sch.Float(), min_length=1, broadcast=True),
        None,
        "Window start, as fractions of the extent",
        tensor=True,
    ),
    Arg(
        "end", sch.Seq(sch.Int(), min_length=1, broadcast=True), None, "Window end (exclusive), in pixels", tensor=True
    ),
    Arg(
        "rel_end",
        sch.Seq(sch.Float(), min_length=1, broadcast=True),
        None,
        "Window end, as fractions of the extent",
        tensor=True,
    ),
    Arg("shape", sch.Seq(sch.Int(0), min_length=1, broadcast=True), None, "Window extent, in pixels", tensor=True),
    Arg(
        "rel_shape",
        sch.Seq(sch.Float(0.0), min_length=1, broadcast=True),
        None,
        "Window extent, as fractions of the extent",
        tensor=True,
    ),
    Arg("normalized_anchor", sch.Bool(), True, "A float anchor input is a fraction of the extent"),
    Arg("normalized_shape", sch.Bool(), True, "A float shape input is a fraction of the extent"),
)
_STARTS, _ENDS = ("start", "rel_start"), ("end", "rel_end", "shape", "rel_shape")


def check_window_args(op_type: str, args: Mapping[str, Any], positional: bool) -> None:
    """Definition-time rules between the window arguments.

    Raises:
        ValueError: ``axes`` with ``axis_names``; two starts or two ends; named arguments with the positional
            anchor/shape inputs.
    """
    if args["axes"] is not None and args["axis_names"] is not None:
        raise ValueError(f"fn.{op_type}(): axes and axis_names are mutually exclusive; give one")
    starts = [k for k in _STARTS if args[k] is not None]
    ends = [k for k in _ENDS if args[k] is not None]
    if len(starts) > 1 or len(ends) > 1:
        raise ValueError(
            f"fn.{op_type}(): give at most one of start/rel_start and one of end/rel_end/shape/"
            f"rel_shape; got {', '.join(starts + ends)}"
        )
    if positional and (starts or ends):
        raise ValueError(
            f"fn.{op_type}(): the named window arguments ({', '.join(starts + ends)}) are not "
            "compatible with the anchor and shape inputs; give one or the other"
        )
    for name in ("axes", "axis_names"):
        if isinstance(args[name], DataNode):
            raise TypeError(f"fn.{op_type}(): {name} must be a constant")


def window_axes(args: Mapping[str, Any], layout: str, ndim: int) -> list[int]:
    """The axis indices the window arguments refer to, in their order.

    Raises:
        ValueError: an axis name missing from the layout, or an axis index out of range.
    """
    names = args["axis_names"]
    if args["axes"] is not None:
        axes = list(args["axes"])
    elif layout or names is not None:
        names = names if names is not None else "WH"
        missing = [c for c in names if c not in layout]
        if missing:
            raise ValueError(f"axis_names={names!r}: the input's layout {layout!r} has no axis {missing[0]!r}")
        axes = [layout.index(c) for c in names]
    else:
        axes = [1, 0]  # DALI's default for data without a layout: width (axis 1), then height (axis 0)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axes={list(axes)!r}: axis {a} is out of range for {ndim}-dimensional data")
        out.append(a % ndim)
    return out


def _per_axis(values: Sequence[float], count: int, name: str, where: str) -> list[float]:
    values = list(values)
    if len(values) == 1 and count > 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} values for {count} axes{where}")
    return [float(v) for v in values]


def _llround(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def slice_window(
    shape: Sequence[int],
    layout: str,
    args: Mapping[str, Any],
    anchor: np.ndarray | None = None,
    extent: np.ndarray | None = None,
    where: str = "",
) -> tuple[list[int], list[int]]:
    """The window ``(anchor, shape)`` over every axis of a sample of ``shape`` (untouched axes: the whole axis).

    Args:
        shape: The sample's shape.
        layout: The sample's layout (``""``: none).
        args: The resolved window arguments.
        anchor, extent: The positional inputs of this sample, when given.
        where: Appended to error messages (e.g. ``" (sample 3)"``).

    Raises:
        ValueError: mismatched counts, an end before the start.
    """
    ndim = len(shape)
    axes = window_axes(args, layout, ndim)
    lo, size = [0] * ndim, list(shape)
    n = len(axes)
    if anchor is not None:
        anchor, extent = np.asarray(anchor), np.asarray(extent)
        if anchor.size != n or extent.size != n:
            raise ValueError(
                f"the anchor and shape inputs have {anchor.size} and {extent.size} values; the window "
                f"has {n} axes ({'/'.join(map(str, axes))}){where}"
            )
        norm_a = args["normalized_anchor"] and anchor.dtype.kind == "f"
        norm_s = args["normalized_shape"] and extent.dtype.kind == "f"
        for i, d in enumerate(axes):
            a, s = float(anchor.flat[i]), float(extent.flat[i])
            if norm_a and norm_s:
                end = _llround((a + s) * shape[d])
                a *= shape[d]
            else:
                a = a * shape[d] if norm_a else a
                s = s * shape[d] if norm_s else s
                end = _llround(a + s)
            lo[d] = _llround(a)
            size[d] = end - lo[d]
        return lo, size
    get = {k: _per_axis(args[k], n, k, where) for k in (*_STARTS, *_ENDS) if args[k] is not None}
    for i, d in enumerate(axes):
        ext = shape[d]
        if "start" in get:
            a = get["start"][i]
        elif "rel_start" in get:
            a = get["rel_start"][i] * ext
        else:
            a = 0.0
        if "end" in get:
            e = get["end"][i]
        elif "rel_end" in get:
            e = get["rel_end"][i] * ext
        elif "shape" in get:
            e = a + get["shape"][i]
        elif "rel_shape" in get:
            e = (
                (get["rel_start"][i] + get["rel_shape"][i]) * ext
                if "rel_start" in get
                else a + get["rel_shape"][i] * ext
            )
        else:
            e = float(ext)
        start, end = _llround(a), _llround(e)
        if end < start:
            raise ValueError(f"the window ends before it starts on axis {d} (start {start}, end {end}){where}")
        lo[d], size[d] = start, end - start
    return lo, size
