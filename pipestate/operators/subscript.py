"""Indexing DataNodes: ``x[1:3, ::2]``, ``x[..., 0]``, ``x[None]``, with per-sample DataNode indices
(DALI's tensor subscripts). Indices apply to each sample, never to the batch axis."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg
from pipestate.tracing import add_operator


@register
class Subscript(Operator):
    """Index or slice every sample (created by ``DataNode[...]``)."""

    type = "tensor_subscript"
    internal = True
    EXAMPLE = Example(
        inputs=(Tensor("int32", (4, 5), ragged=(1,), low=-9, high=9), Tensor("int32", (), low=0, high=3)),
        build=lambda x, k: (x[1:, ::2], x[k, -1], x[-2:, 0]),
    )
    ARGS = (
        Arg(
            "spec",
            sch.Anything("the index, encoded"),
            sch.REQUIRED,
            "Per axis: ['i', k], ['s', start, stop, step], ['e'] (...), ['n'] (None); ['d', k] is input k",
        ),
    )

    def validate(self) -> None:
        if not self.inputs:
            raise TypeError("tensor_subscript takes the indexed DataNode as its first input")

    def _index(self, inputs: list[Batch], sample: int | None) -> tuple:
        def value(v: Any) -> Any:
            if isinstance(v, list) and v and v[0] == "d":
                if sample is None:
                    raise LookupError
                item = np.asarray(inputs[v[1]][sample])
                if item.size != 1 or item.dtype.kind not in "iu":
                    raise TypeError(f"a DataNode index must hold one integer per sample, not {item.dtype} {item.shape}")
                return int(item.reshape(()))
            return v

        out = []
        for part in self.args["spec"]:
            kind = part[0]
            if kind == "i":
                out.append(value(part[1]))
            elif kind == "s":
                out.append(slice(value(part[1]), value(part[2]), value(part[3])))
            elif kind == "e":
                out.append(Ellipsis)
            else:
                out.append(None)
        return tuple(out)

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        data = inputs[0]
        if data.is_dense_tensor() and len(inputs) == 1:
            return (Batch(np.array(data.as_array()[(slice(None), *self._index(inputs, None))])),)
        return (Batch.from_samples([np.array(s[self._index(inputs, i)]) for i, s in enumerate(data)]),)


def subscript(node: DataNode, index: Any) -> DataNode:
    """Add a :class:`Subscript` of ``node`` for a Python index expression."""
    parts = index if isinstance(index, tuple) else (index,)
    inputs: list[DataNode] = [node]

    def encode(v: Any) -> Any:
        if isinstance(v, DataNode):
            inputs.append(v)
            return ["d", len(inputs) - 1]
        if v is None:
            return None
        v = v.item() if isinstance(v, np.generic) else v
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"DataNode index {v!r}: indices are ints, slices of ints, DataNodes, ... or None")
        return v

    spec = []
    for part in parts:
        if part is Ellipsis:
            spec.append(["e"])
        elif part is None:
            spec.append(["n"])
        elif isinstance(part, slice):
            if part.step == 0:
                raise ValueError("DataNode index: slice step cannot be zero")
            spec.append(["s", encode(part.start), encode(part.stop), encode(part.step)])
        else:
            spec.append(["i", encode(part)])
    if sum(p[0] == "e" for p in spec) > 1:
        raise IndexError("DataNode index: an index can only have a single ellipsis ('...')")
    return add_operator(Subscript, inputs, {"spec": spec})
