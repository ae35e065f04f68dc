"""Sequences (the outermost axis is frames, layout ``F...``) and the batch's own order: ``fn.element_extract``,
``fn.sequence_rearrange``, ``fn.per_frame``, ``fn.permute_batch``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg


def _check_sequence(layout: str, ndim: int, what: str) -> None:
    if layout and not layout.startswith("F"):
        raise ValueError(f"{what} takes sequences: the input's layout must start with 'F', not {layout!r}")
    if ndim < 2:
        raise ValueError(f"{what} takes sequences of at least 1-D elements; the input has {ndim} dimension(s)")


@register
class ElementExtract(SampleOperator):
    """Frames of each sequence, one output per index of ``element_map``."""

    type = "element_extract"
    INPUTS = (sch.Input("sequences", "Sequences (layout F...)"),)
    ARGS = (Arg("element_map", sch.Seq(sch.Int(0), min_length=1, broadcast=True), sch.REQUIRED, "Frame indices"),)
    EXAMPLE = Example(inputs=(Tensor("uint8", (4, 3, 2), layout="FHW", ragged=(1,)),), args={"element_map": [2, 0]})

    def validate(self) -> None:
        super().validate()
        self.num_outputs = len(self.args["element_map"])

    def _frames(self, layout: str, ndim: int, frames: int, index: int | None) -> list[int]:
        _check_sequence(layout, ndim, "fn.element_extract()")
        for e in self.args["element_map"]:
            if e >= frames:
                where = f"sample {index} has" if index is not None else "the sequences have"
                raise ValueError(f"element_map: frame {e} is out of range; {where} {frames} frame(s)")
        return list(self.args["element_map"])

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        x = inputs[0]
        return tuple(x[e] for e in self._frames(s.layouts[0], x.ndim, len(x) if x.ndim else 0, s.index))

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        x = inputs[0]
        frames = x.shape[1] if x.ndim > 1 else 0
        return tuple(x[:, e] for e in self._frames(layouts[0], x.ndim - 1, frames, None))

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return layouts[0][1:] if layouts[0] else ""


@register
class SequenceRearrange(SampleOperator):
    """Reorder the frames of each sequence: ``out[i] = in[new_order[i]]`` (repeats and drops allowed)."""

    type = "sequence_rearrange"
    INPUTS = (sch.Input("sequences", "Sequences (layout F...)"),)
    ARGS = (
        Arg(
            "new_order",
            sch.Seq(sch.Int(), min_length=1, broadcast=True),
            sch.REQUIRED,
            "Input frame of each output frame",
            tensor=True,
        ),
    )
    EXAMPLE = Example(
        inputs=(Tensor("int16", (5, 3, 2), layout="FHW", ragged=(1,)),),
        arg_inputs={"new_order": Tensor("int32", (3,), low=0, high=4)},
    )

    def _order(self, order: Any, layout: str, ndim: int, frames: int, index: int | None) -> np.ndarray:
        _check_sequence(layout, ndim, "fn.sequence_rearrange()")
        if isinstance(order, tuple) and any(not 0 <= v < frames for v in order):
            where = f"sample {index}" if index is not None else "the sequences"
            bad = next(v for v in order if not 0 <= v < frames)
            raise ValueError(f"new_order: frame {bad} is out of range for {where} ({frames} frames)")
        order = np.asarray(order, dtype=np.int64).reshape(-1)
        bad = order[(order < 0) | (order >= frames)]
        if len(bad):
            where = f"sample {index}" if index is not None else "the sequences"
            raise ValueError(f"new_order: frame {int(bad[0])} is out of range for {where} ({frames} frames)")
        return order

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        x = inputs[0]
        order = self._order(args["new_order"], s.layouts[0], x.ndim, len(x) if x.ndim else 0, s.index)
        return x[order]

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if "new_order" in self.arg_inputs:
            return None
        x = inputs[0]
        order = self._order(args["new_order"], layouts[0], x.ndim - 1, x.shape[1] if x.ndim > 1 else 0, None)
        return (x[:, order],)


@register
class PerFrame(SampleOperator):
    """Mark the input as a sequence: its layout starts with ``F`` (the data is unchanged)."""

    type = "per_frame"
    INPUTS = (sch.Input("data", "Tensors whose outermost axis is frames"),)
    ARGS = (Arg("replace", sch.Bool(), False, "Replace the layout's first letter with F (else it must be F)"),)
    EXAMPLE = Example(inputs=(Tensor("float32", (3, 2), ragged=(0,)),))

    def _check(self, layout: str, ndim: int) -> None:
        if ndim == 0:
            raise ValueError("fn.per_frame() cannot mark 0-dimensional samples as sequences")
        if layout and layout[0] != "F" and not self.args["replace"]:
            raise ValueError(f"the input's layout {layout!r} does not start with 'F'; pass replace=True to replace it")

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        self._check(s.layouts[0], inputs[0].ndim)
        return inputs[0]

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        self._check(layouts[0], inputs[0].ndim - 1)
        return (inputs[0],)

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        layout = layouts[0]
        return "F" + (layout[1:] if layout else "*" * (ndim - 1))


@register
class PermuteBatch(Operator):
    """A batch made of the input's samples in another order: ``out[i] = in[indices[i]]``."""

    type = "permute_batch"
    ARGS = (
        Arg(
            "indices",
            sch.Seq(sch.Int(0), broadcast=True),
            sch.REQUIRED,
            "The input sample of each output sample (one per sample; a DataNode: one scalar per sample)",
            tensor=True,
        ),
    )
    EXAMPLE = Example(
        inputs=(Tensor("uint8", (4, 3), layout="HW", ragged=(0, 1)),),
        arg_inputs={"indices": Tensor("int32", (), low=0, high=2.99)},
    )

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError(f"fn.permute_batch() takes one input; got {len(self.inputs)}")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        batch = inputs[0]
        if "indices" in arg_inputs:
            values = [np.asarray(v) for v in arg_inputs["indices"]]
            wide = next((i for i, v in enumerate(values) if v.size != 1), None)
            if wide is not None:
                raise ValueError(f"indices= (sample {wide}) has {values[wide].size} values; give one per sample")
            indices = [int(v.reshape(-1)[0]) for v in values]
        else:
            indices = list(self.args["indices"])
        n = len(batch)
        if len(indices) != n:
            raise ValueError(f"indices= has {len(indices)} values; the batch has {n} samples")
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise ValueError(f"indices=: {bad[0]} is not a sample of the batch of {n}")
        sources = batch.sources()
        samples = [batch[i] for i in indices]
        return (Batch(samples).with_meta(batch.layout(), [sources[i] for i in indices] if sources else None),)
