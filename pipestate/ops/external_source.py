"""``fn.external_source``: data from user Python code, checkpointed by position.

A source is one of:
- a callable: called with the iteration index, a ``types.BatchInfo`` (``batch_info=True``) or, with
  ``batch=False``, a ``types.SampleInfo`` per sample (or with no arguments if it takes none). Restored
  exactly: it is called with the same indices again.
- a sequence (list, tuple): item ``iteration`` of the epoch; restored exactly.
- an object with ``state() -> bytes`` and ``restore(bytes)`` (callable, or an iterator): its bytes are
  stored in the checkpoint and handed back to ``restore``.
- an iterable or a generator function: read with ``next()``. Its position cannot be stored; pipestate
  warns at build time, and on restore re-creates it and skips the consumed items (an O(position) replay),
  or refuses (``CheckpointError``) when it is a one-shot iterator that cannot be re-created.

A source raising ``StopIteration`` ends the epoch: ``Pipeline.run()`` raises ``StopIteration`` and
``Pipeline.reset()`` starts the next one.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipestate.batch import Batch
from pipestate.checkpoint import ExternalSourceState
from pipestate.errors import CheckpointError
from pipestate.ops.base import BuildEnv, Operator, RunContext, register
from pipestate.types import BatchInfo, SampleInfo, to_numpy_dtype


def _arity(func: Any) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return 1 if positional else 0


@register
class ExternalSource(Operator):
    """Feed data produced by Python code into the pipeline.

    Args:
        source: The data source (see the module documentation for the accepted kinds).
        num_outputs: If set, the source returns a tuple of this many batches, and the operator has as
            many outputs.
        batch: ``True`` (default): the source returns a whole batch (a list of arrays, or an array whose
            first axis is the batch). ``False``: it is called once per sample with a ``SampleInfo``.
        batch_info: Give a callable a ``BatchInfo`` instead of the iteration index.
        dtype: If set, every output must have this type (checked, not converted).
    """

    type = "external_source"
    ARGS = {"source": None, "num_outputs": None, "batch": True, "batch_info": False, "dtype": None}
    stateful = True

    def validate(self) -> None:
        source = self.args["source"]
        if source is None:
            raise TypeError("fn.external_source() needs source= (a callable, a sequence or an iterable)")
        if self.inputs:
            raise TypeError("fn.external_source() takes no DataNode inputs")
        n = self.args["num_outputs"]
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ValueError(f"fn.external_source(): num_outputs={n!r} must be a positive int")
        self.num_outputs = n or 1
        self.dtype = to_numpy_dtype(self.args["dtype"]) if self.args["dtype"] is not None else None
        self.stateful_source = callable(getattr(source, "state", None)) and callable(getattr(source, "restore", None))
        self.generator_function = inspect.isgeneratorfunction(source)
        if self.stateful_source:
            self.kind = "call" if callable(source) else "iterate"
        elif self.generator_function or not (callable(source) or isinstance(source, Sequence)):
            if not hasattr(source, "__iter__") and not self.generator_function:
                raise TypeError(
                    f"fn.external_source(): source of type {type(source).__name__} is not callable, "
                    "a sequence or an iterable"
                )
            self.kind = "iterate"
        elif isinstance(source, Sequence) and not callable(source):
            self.kind = "index"
        else:
            self.kind = "call"
        if not self.args["batch"] and self.kind != "call":
            raise TypeError("fn.external_source(batch=False) needs a callable source taking a SampleInfo")
        self.arity = _arity(source) if self.kind == "call" else 0

    @property
    def restorable(self) -> bool:
        """Whether the source's position can be restored without replaying it."""
        return self.kind in ("call", "index") or self.stateful_source

    def setup(self, env: BuildEnv) -> None:
        self.epoch = 0
        self.iteration = 0
        self.iterator = None
        self.batch_size = env.batch_size
        if env.enable_checkpointing and not self.restorable:
            warnings.warn(
                f"external source {self.name!r}: an iterator or generator source cannot be checkpointed by "
                "position; restoring re-creates it and skips the items already read (slow), or fails for a "
                "one-shot iterator. Use a callable taking BatchInfo/SampleInfo, a sequence, or an object "
                "with state() -> bytes and restore(bytes).",
                stacklevel=2,
            )

    def _iterator(self) -> Any:
        if self.iterator is None:
            source = self.args["source"]
            if self.stateful_source:
                self.iterator = source
            else:
                self.iterator = iter(source() if self.generator_function else source)
        return self.iterator

    def _fetch(self) -> Any:
        source = self.args["source"]
        if self.kind == "index":
            if self.iteration >= len(source):
                raise StopIteration
            return source[self.iteration]
        if self.kind == "iterate":
            return next(self._iterator())
        if self.arity == 0:
            return source()
        if self.args["batch_info"]:
            return source(BatchInfo(self.iteration, self.epoch))
        return source(self.iteration)

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        if self.args["batch"]:
            data = self._fetch()
            parts = tuple(data) if self.args["num_outputs"] else (data,)
            if len(parts) != self.num_outputs:
                raise ValueError(
                    f"external source {self.name!r} returned {len(parts)} outputs; num_outputs={self.num_outputs}"
                )
            outputs = tuple(self._to_batch(part, ctx.batch_size) for part in parts)
        else:
            base = self.iteration * ctx.batch_size
            samples = [
                self.args["source"](SampleInfo(base + i, i, self.iteration, self.epoch))
                for i in range(ctx.batch_size)
            ]
            if self.args["num_outputs"]:
                columns = list(zip(*samples))
                outputs = tuple(self._to_batch(list(col), ctx.batch_size) for col in columns)
            else:
                outputs = (self._to_batch(samples, ctx.batch_size),)
        self.iteration += 1
        return outputs

    def _to_batch(self, data: Any, batch_size: int) -> Batch:
        if isinstance(data, np.ndarray) or (hasattr(data, "__array__") and not isinstance(data, (list, tuple))):
            array = np.asarray(data)
            if array.ndim == 0 or len(array) != batch_size:
                raise ValueError(
                    f"external source {self.name!r} returned an array of shape {array.shape}; a batch needs "
                    f"{batch_size} samples along the first axis"
                )
            batch = Batch(array)
        elif isinstance(data, (list, tuple)):
            if len(data) != batch_size:
                raise ValueError(
                    f"external source {self.name!r} returned {len(data)} samples; batch_size is {batch_size}"
                )
            batch = Batch.from_samples(data)
        else:
            raise TypeError(
                f"external source {self.name!r} returned {type(data).__name__}; return a list of arrays or an "
                "array whose first axis is the batch"
            )
        if self.dtype is not None and batch.dtype != self.dtype:
            raise TypeError(
                f"external source {self.name!r} returned {batch.dtype} data; dtype={self.dtype} was declared"
            )
        return batch

    def state(self) -> ExternalSourceState:
        source_state = self.args["source"].state() if self.stateful_source else None
        if source_state is not None and not isinstance(source_state, (bytes, bytearray)):
            raise TypeError(f"external source {self.name!r}: source.state() must return bytes")
        return ExternalSourceState(self.epoch, self.iteration, None if source_state is None else bytes(source_state))

    def restore(self, state: ExternalSourceState) -> None:
        if not isinstance(state, ExternalSourceState):
            raise CheckpointError(f"external source {self.name!r}: the checkpoint holds no external-source state")
        self.epoch, self.iteration = state.epoch, state.iteration
        self.iterator = None
        if self.stateful_source:
            if state.source_state is None:
                raise CheckpointError(f"external source {self.name!r}: the checkpoint holds no source state")
            self.args["source"].restore(state.source_state)
        elif self.kind == "iterate" and self.iteration:
            source = self.args["source"]
            if not self.generator_function and iter(source) is source:
                raise CheckpointError(
                    f"external source {self.name!r} is a one-shot iterator: it cannot be moved back to batch "
                    f"{self.iteration}. Use a callable, a sequence, or an object with state()/restore()."
                )
            iterator = self._iterator()
            for _ in range(self.iteration):
                next(iterator)

    def next_epoch(self) -> None:
        self.epoch += 1
        self.iteration = 0
        self.iterator = None
