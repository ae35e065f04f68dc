"""``fn.python_function``: stateless per-sample (or per-batch) Python code inside the pipeline."""

from __future__ import annotations

import numpy as np

from pipestate.batch import Batch
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.external_source import check_numeric
from pipestate.operators.schema import Arg


def _example_function(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x * 2, x.sum(axis=0)


@register
class PythonFunction(Operator):
    """Apply ``function`` to every sample (or, with ``batch_processing=True``, to the whole batch).

    The function must be stateless and deterministic: pipestate runs samples on its worker pool and does
    not checkpoint anything the function keeps. Randomness belongs in ``fn.random.*`` operators passed in
    as inputs.

    ``function(*samples) -> array`` (a tuple of arrays with ``num_outputs > 1``); with
    ``batch_processing=True``, ``function(*batches) -> list of arrays``, each batch a list of arrays.
    """

    type = "python_function"
    EXAMPLE = Example(
        inputs=(Tensor("float32", (2, 3), ragged=(0,), low=-1, high=1),),
        args={"function": _example_function, "num_outputs": 2},
        dali_options={"exec_async": False, "exec_pipelined": False},
        fixed=("num_outputs", "batch_processing"),
    )
    ARGS = (
        Arg("function", sch.Function(), sch.REQUIRED, "The function"),
        Arg("num_outputs", sch.Int(1), 1, "Number of outputs the function returns"),
        Arg("batch_processing", sch.Bool(), False, "Call the function once per batch instead of once per sample"),
    )

    def validate(self) -> None:
        self.num_outputs = self.args["num_outputs"]

    def _split(self, result: object, where: str) -> tuple:
        if self.num_outputs == 1:
            return (result,)
        if not isinstance(result, (tuple, list)) or len(result) != self.num_outputs:
            raise ValueError(f"{where} must return {self.num_outputs} values (num_outputs={self.num_outputs})")
        return tuple(result)

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        func = self.args["function"]
        where = f"python_function {self.name!r}"
        if self.args["batch_processing"]:
            columns = self._split(func(*[b.samples for b in inputs]), where)
            return tuple(Batch.from_samples([check_numeric(np.asarray(s), where) for s in col]) for col in columns)
        rows = ctx.map(lambda i: self._split(func(*[b[i] for b in inputs]), where), range(ctx.batch_size))
        return tuple(
            Batch.from_samples([check_numeric(np.asarray(r[k]), where) for r in rows]) for k in range(self.num_outputs)
        )
