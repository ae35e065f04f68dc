"""Joining inputs sample by sample: ``fn.cat`` (along an existing axis) and ``fn.stack`` (along a new one).

As DALI's: every input has the same element type and number of dimensions; ``cat`` samples may differ
only along the joined axis, ``stack`` samples not at all. ``axis`` counts from the back when negative
(``stack`` accepts ``ndim``: the new axis last); ``axis_name`` names the axis by its layout letter
(``cat``) or gives the new axis its letter (``stack``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg


class _Join(SampleOperator):
    """Common checks of ``cat`` and ``stack`` (any number of inputs, one type and rank)."""

    INPUTS = (sch.Input("inputs", "The tensors to join (one or more inputs)"),)
    NEW_AXIS = False

    def validate(self) -> None:
        if not self.inputs:
            raise TypeError(f"fn.{self.type}() needs at least one input")
        if not self.NEW_AXIS and self.args["axis_name"] is not None and "axis" in self.raw_args:
            raise ValueError(f"fn.{self.type}(): axis= and axis_name= cannot be used together")
        name = self.args["axis_name"]
        if self.NEW_AXIS and name is not None and len(name) != 1:
            raise ValueError(f"fn.stack(): axis_name={name!r} must be a single letter")

    def check_inputs(self, inputs: Sequence[Batch]) -> tuple[str, ...]:
        first = inputs[0].dtypes_and_ndims()
        for k, batch in enumerate(inputs[1:], 1):
            if batch.dtypes_and_ndims() != first:
                dtypes, ndims = batch.dtypes_and_ndims()
                raise TypeError(
                    f"every input of fn.{self.type}() must have one type and number of dimensions: input 0 is "
                    f"{'/'.join(map(str, first[0]))} with {'/'.join(map(str, first[1]))} dims, input {k} is "
                    f"{'/'.join(map(str, dtypes))} with {'/'.join(map(str, ndims))} dims"
                )
        return tuple(b.layout() for b in inputs)

    def layout(self, layouts: tuple[str, ...], ndim: int) -> str:
        """The input layout the axis name refers to (the first non-empty one)."""
        found = [lo for lo in layouts if lo]
        if self.args["axis_name"] is not None and not self.NEW_AXIS and any(lo != found[0] for lo in found):
            raise ValueError(f"axis_name= needs the inputs' layouts to agree; got {sorted(set(found))}")
        return found[0] if found else ""

    def axis(self, ndim: int, layouts: tuple[str, ...]) -> int:
        """The joined axis for samples of ``ndim`` dimensions.

        Raises:
            ValueError: the axis is out of range or its name is not in the layout.
        """
        name = self.args["axis_name"]
        if name is not None and not self.NEW_AXIS:
            layout = self.layout(layouts, ndim)
            if name not in layout:
                raise ValueError(f"axis_name={name!r} is not an axis of the layout {layout!r}")
            return layout.index(name)
        axis, top = self.args["axis"], ndim + (1 if self.NEW_AXIS else 0)
        if not -top <= axis < top:
            raise ValueError(f"axis={axis} is out of range for {ndim}-dimensional inputs (valid: {-top}..{top - 1})")
        return axis % top

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return self.join(list(inputs), self.axis(inputs[0].ndim, s.layouts), 0, s.index)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        return (self.join(inputs, self.axis(inputs[0].ndim - 1, layouts), 1, None),)

    def join(self, arrays: list[np.ndarray], axis: int, first: int, index: int | None) -> np.ndarray:
        """Join ``arrays`` along sample axis ``axis`` (``first``: 1 when the batch axis leads)."""
        ref = arrays[0].shape
        for k, a in enumerate(arrays[1:], 1):
            diff = [d for d in range(first, len(ref)) if a.shape[d] != ref[d] and (self.NEW_AXIS or d != axis + first)]
            if diff:
                where = f" in sample {index}" if index is not None else ""
                verb = "stacked tensors must have one shape" if self.NEW_AXIS else f"may differ only along axis {axis}"
                raise ValueError(
                    f"fn.{self.type}(): {verb}; input {k}{where} has shape {a.shape[first:]}, input 0 "
                    f"{ref[first:]} (axis {diff[0] - first} differs)"
                )
        return (np.stack if self.NEW_AXIS else np.concatenate)(arrays, axis=axis + first)


@register
class Cat(_Join):
    """Join the inputs along an existing axis."""

    type = "cat"
    ARGS = (
        Arg("axis", sch.Int(), 0, "The axis to join along (negative: from the back)"),
        Arg("axis_name", sch.Str(), None, "The layout letter of the axis to join along (instead of axis)"),
    )
    EXAMPLE = Example(
        inputs=(
            Tensor("float32", (3, 4), layout="HW", ragged=(1,), low=-9, high=9),
            Tensor("float32", (3, 2), layout="HW", ragged=(1,), low=-9, high=9),
        ),
        args={"axis_name": "W"},
    )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        layout = self.layout(layouts, ndim)
        return layout if len(layout) == ndim else ""


@register
class Stack(_Join):
    """Join the inputs along a new axis."""

    type = "stack"
    NEW_AXIS = True
    ARGS = (
        Arg("axis", sch.Int(), 0, "Position of the new axis in the output (negative: from the back)"),
        Arg("axis_name", sch.Str(), None, "Layout letter of the new axis"),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int16", (4, 3), layout="HW"), Tensor("int16", (4, 3), layout="HW", low=-9, high=9)),
        args={"axis": 1, "axis_name": "C"},
    )

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        self._check_name(s.layouts, inputs[0].ndim)
        return super().sample(s, inputs, args)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        self._check_name(layouts, inputs[0].ndim - 1)
        return super().dense(ctx, inputs, args, layouts)

    def _check_name(self, layouts: tuple[str, ...], ndim: int) -> None:
        if self.args["axis_name"] is not None and ndim and not self.layout(layouts, ndim):
            raise ValueError("axis_name= with non-scalar inputs needs an input layout to insert the new axis into")

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        name = self.args["axis_name"]
        if name is None:
            return ""
        layout = self.layout(layouts, ndim - 1)
        axis = self.axis(ndim - 1, layouts)
        return layout[:axis] + name + layout[axis:]
