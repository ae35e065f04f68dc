"""``fn.python_function``: stateless per-sample (or per-batch) Python code inside the pipeline."""

from __future__ import annotations

import numpy as np

from pipestate.batch import Batch
from pipestate.ops.base import Operator, RunContext, register


@register
class PythonFunction(Operator):
    """Apply ``function`` to every sample (or, with ``batch_processing=True``, to the whole batch).

    The function must be stateless and deterministic: pipestate runs samples on its worker pool and does
    not checkpoint anything the function keeps. Randomness belongs in ``fn.random.*`` operators passed in
    as inputs.

    Args:
        function: ``f(*samples) -> array`` (or a tuple of arrays with ``num_outputs > 1``). With
            ``batch_processing=True``: ``f(*batches) -> list of arrays``, each batch a list of arrays.
        num_outputs: Number of outputs the function returns. Default 1.
        batch_processing: Call the function once per batch instead of once per sample.
    """

    type = "python_function"
    ARGS = {"function": None, "num_outputs": 1, "batch_processing": False}

    def validate(self) -> None:
        if not callable(self.args["function"]):
            raise TypeError("fn.python_function() needs function=, a callable")
        n = self.args["num_outputs"]
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"fn.python_function(): num_outputs={n!r} must be a positive int")
        self.num_outputs = n

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
            return tuple(Batch.from_samples([np.asarray(s) for s in col]) for col in columns)
        rows = ctx.map(lambda i: self._split(func(*[b[i] for b in inputs]), where), range(ctx.batch_size))
        return tuple(Batch.from_samples([np.asarray(r[k]) for r in rows]) for k in range(self.num_outputs))
