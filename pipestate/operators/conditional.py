"""``fn._conditional.*``: the operators behind conditional execution (``enable_conditionals=True``).

``split`` divides a batch by a per-sample predicate into the samples where it holds and the others (in
order); ``merge`` puts two such parts back in sample order. ``if``/``elif``/``else`` on a DataNode
(see :mod:`pipestate.conditionals`) inserts them; they may also be used directly, as in DALI. ``not_``
and ``validate_logical`` implement ``not``, ``and`` and ``or`` on DataNodes. The messages of their
errors are DALI's.

The runtime gives the operators that consume a part a context holding only its samples, with their
global sample indices (``RunContext.sample_ids``): random operators draw, for each sample, what they
would draw for it outside the conditional.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

_PREDICATE = Arg(
    "predicate",
    sch.Anything("a DataNode"),
    sch.REQUIRED,
    "Per-sample scalar predicate (any type: 0 is false)",
    tensor=True,
)
_SCALAR_HINT = (
    "\n\nThis input restriction allows the logical expressions to always return scalar boolean outputs and to "
    "be used in unambiguous way in conditionals (`if` statements). You can set the `dtype` parameter of some "
    "operators to types.BOOL or use comparison operators which always return booleans."
)


def predicate_mask(predicate: Batch) -> np.ndarray:
    """The boolean mask of a predicate batch (one truth value per sample, Python's truthiness).

    Raises:
        ValueError: a sample is not a scalar (DALI's message).
    """
    if predicate.is_dense_tensor() and len(predicate):
        values = predicate.as_array()
        if values.ndim != 1:
            raise ValueError(_condition_error(values.ndim - 1))
        return values != 0
    mask = np.empty(len(predicate), dtype=bool)
    for i, sample in enumerate(predicate):
        if sample.ndim != 0:
            raise ValueError(_condition_error(sample.ndim))
        mask[i] = sample != 0
    return mask


def _condition_error(ndim: int) -> str:
    return (
        "Conditions inside `if` statements are restricted to scalar (0-d tensors) inputs, that are placed on "
        f"CPU. Got a {ndim}-d input as a condition of the `if` statement." + _SCALAR_HINT
    )


def _take(batch: Batch, mask: np.ndarray) -> Batch:
    if batch.is_dense_tensor() and len(batch):
        return Batch(batch.as_array()[mask], layout=batch.layout())
    return Batch([batch[i] for i in np.flatnonzero(mask)], layout=batch.layout())


@register
class Split(Operator):
    """Split the input by ``predicate`` into the samples where it holds and the others, each in order."""

    type = "_conditional.split"
    EXAMPLE = Example(
        inputs=(Tensor("float32", (3,), ragged=(0,)), Tensor("bool", (), low=0, high=1.99)),
        build=lambda x, p: Merge.roundtrip(x, p),
        dali="test:tests/test_conditionals.py",
    )
    scope_rule: ClassVar[str] = "split"
    ARGS = (_PREDICATE,)

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError("fn._conditional.split() takes one input")
        self.num_outputs = 2

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        mask = predicate_mask(arg_inputs["predicate"])
        return _take(inputs[0], mask), _take(inputs[0], ~mask)


@register
class Merge(Operator):
    """Merge the two parts of a split batch (``predicate`` true, false) back in sample order."""

    type = "_conditional.merge"
    EXAMPLE = Split.EXAMPLE

    @staticmethod
    def roundtrip(x: DataNode, predicate: DataNode) -> tuple[DataNode, ...]:
        """Split ``x`` by ``predicate``, change each part, and merge them back (the operators' example)."""
        from pipestate.tracing import add_operator

        true, false = add_operator(Split, [x], {"predicate": predicate})
        return (add_operator(Merge, [true + 1, false * 2], {"predicate": predicate}),)

    scope_rule: ClassVar[str] = "merge"
    ARGS = (_PREDICATE,)

    def validate(self) -> None:
        if len(self.inputs) != 2:
            raise TypeError("fn._conditional.merge() takes two inputs: the true part and the false part")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        mask = predicate_mask(arg_inputs["predicate"])
        true, false = inputs
        if len(true) != int(mask.sum()) or len(false) != len(mask) - len(true):
            raise ValueError(
                f"the parts have {len(true)} and {len(false)} samples; the predicate selects {int(mask.sum())} "
                f"of {len(mask)}: merge the two outputs of one fn._conditional.split with its predicate"
            )
        if not len(false):
            return (true,)
        if not len(true):
            return (false,)
        layout = true.layout() or false.layout()
        _check_consistent(true[0], false[0])
        if true.is_dense_tensor() and false.is_dense_tensor():
            t, f = true.as_array(), false.as_array()
            if t.shape[1:] == f.shape[1:]:
                out = np.empty((len(mask), *t.shape[1:]), dtype=t.dtype)
                out[mask] = t
                out[~mask] = f
                return (Batch(out, layout=layout),)
        for sample in (*true, *false):
            _check_consistent(true[0], sample)
        samples, ti, fi = [], iter(true), iter(false)
        for m in mask:
            samples.append(next(ti) if m else next(fi))
        return (Batch(samples, layout=layout),)


def _check_consistent(a: np.ndarray, b: np.ndarray) -> None:
    what = None
    if a.dtype != b.dtype:
        what = f"types: {a.dtype} and {b.dtype}"
    elif a.ndim != b.ndim:
        what = f"sample dimensions: {a.ndim} and {b.ndim}"
    if what:
        raise TypeError(
            "Divergent data found in different branches of conditional operation. All paths in conditional "
            "operation are merged into one batch which must have consistent type, number of dimensions, layout "
            f"and other metadata. Found distinct {what}."
        )


@register
class Not(Operator):
    """Logical ``not`` of a per-sample scalar (any type: 0 is false), as a bool."""

    type = "_conditional.not_"
    EXAMPLE = Example(inputs=(Tensor("int32", (), low=-2, high=2),))

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError("fn._conditional.not_() takes one input")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        batch = inputs[0]
        for sample in batch:
            if sample.ndim != 0:
                raise ValueError(
                    "Logical expression `not` is restricted to scalar (0-d tensors) inputs, that are placed on "
                    f"CPU. Got a {sample.ndim}-d input in logical expression." + _SCALAR_HINT
                )
        return (Batch(np.asarray([s == 0 for s in batch], dtype=bool).reshape(len(batch))),)


@register
class ValidateLogical(Operator):
    """Pass a per-sample scalar bool through, or fail: the operands of ``and``/``or`` on DataNodes."""

    type = "_conditional.validate_logical"
    EXAMPLE = Example(
        inputs=(Tensor("bool", (), low=0, high=1.99),), args={"expression_name": "and", "expression_side": "left"}
    )
    ARGS = (
        Arg("expression_name", sch.Str(("and", "or")), sch.REQUIRED, "The logical expression"),
        Arg("expression_side", sch.Str(("left", "right")), sch.REQUIRED, "The operand checked"),
    )

    def validate(self) -> None:
        if len(self.inputs) != 1:
            raise TypeError("fn._conditional.validate_logical() takes one input")

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        name, side = self.args["expression_name"], self.args["expression_side"]
        for sample in inputs[0]:
            problem = None
            if sample.dtype != np.bool_:
                problem = f"an input of type `{sample.dtype}`"
            elif sample.ndim != 0:
                problem = f"a {sample.ndim}-d input"
            if problem:
                raise TypeError(
                    f"Logical expression `{name}` is restricted to scalar (0-d tensors) inputs of `bool` type, "
                    f"that are placed on CPU. Got {problem} as the {side} argument in logical expression."
                    + _SCALAR_HINT
                )
        return (inputs[0],)
