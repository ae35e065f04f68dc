"""The graph interpreter: runs a pipeline's operators for one batch, and gathers and restores their state.

The graph is compiled once into a plan of flat result slots, so a batch costs one list and a few index
look-ups per operator on top of the operators' own work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipestate.batch import Batch
from pipestate.errors import CheckpointError, OperatorError
from pipestate.graph import Graph
from pipestate.ops.base import BuildEnv, Operator, Position, RunContext


class EndOfData(Exception):
    """Raised by a batch computation when a source ended the epoch."""


class Runtime:
    """Runs the operators of ``graph`` in order on one batch at a time."""

    def __init__(self, graph: Graph) -> None:
        self.ops = list(graph.ops)
        slots: dict[int, int] = {}
        self._plan = []
        total = 0
        for op in self.ops:
            inputs = [slots[id(n.op)] + n.index for n in op.inputs]
            arg_inputs = [(k, slots[id(n.op)] + n.index) for k, n in op.arg_inputs.items()]
            slots[id(op)] = total
            self._plan.append((op, op.run, inputs, arg_inputs, total, op.num_outputs))
            total += op.num_outputs
        self._size = total
        self._outputs = [slots[id(n.op)] + n.index for n in graph.outputs]
        self.stateful = [op for op in self.ops if op.stateful]

    def bind(self, env: BuildEnv) -> None:
        """Set every operator up for ``env`` (releasing what an earlier setup acquired)."""
        for op in self.ops:
            op.close()
            op.bind(env)

    def run(self, ctx: RunContext) -> tuple[Batch, ...]:
        """Compute one batch of every pipeline output.

        Raises:
            EndOfData: a source (an operator with ``ends_epoch``) raised ``StopIteration``.
            OperatorError: an operator failed or produced a wrong batch (naming it).
        """
        results: list[Any] = [None] * self._size
        for op, run, inputs, arg_inputs, base, count in self._plan:
            try:
                outputs = run(ctx, [results[i] for i in inputs], {k: results[i] for k, i in arg_inputs})
            except StopIteration as exc:
                if getattr(op, "ends_epoch", False):
                    raise EndOfData from exc
                raise self._error(op, ctx, exc) from exc
            except Exception as exc:
                raise self._error(op, ctx, exc) from exc
            if len(outputs) != count:
                raise OperatorError(
                    f"operator {op.name!r} ({op.type}) returned {len(outputs)} outputs, not {count}", op.name
                )
            for out in outputs:
                if type(out) is not Batch or len(out) != ctx.batch_size:
                    got = f"{len(out)} samples" if isinstance(out, Batch) else type(out).__name__
                    raise OperatorError(
                        f"operator {op.name!r} ({op.type}) produced {got}; a batch of {ctx.batch_size} is expected",
                        op.name,
                    )
            results[base : base + count] = outputs
        return tuple(results[i] for i in self._outputs)

    @staticmethod
    def _error(op: Operator, ctx: RunContext, exc: BaseException) -> OperatorError:
        if isinstance(exc, OperatorError):
            return exc
        return OperatorError(
            f"operator {op.name!r} ({op.type}) failed in epoch {ctx.epoch}, iteration {ctx.iteration_in_epoch}: "
            f"{type(exc).__name__}: {exc}",
            op.name,
        )

    def states(self) -> tuple:
        """The states of the stateful operators (in graph order)."""
        return tuple(op.state() for op in self.stateful)

    def restore(self, states: Sequence[Any], at: Position, previous: Position) -> None:
        """Move every stateful operator to its state at ``at``; all or nothing (back to ``previous``).

        Raises:
            CheckpointError: an operator refused its state (naming it); every operator is back where it was.
        """
        before = self.states()
        done = 0
        try:
            for op, state in zip(self.stateful, states):
                op.restore(state, at)
                done += 1
        except Exception as exc:
            failed = self.stateful[done]
            for op, state in zip(self.stateful[: done + 1], before):
                op.restore(state, previous)
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(
                f"operator {failed.name!r} ({failed.type}) cannot continue from the checkpoint's state: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
