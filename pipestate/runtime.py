"""The graph interpreter: runs a pipeline's operators for one batch, and gathers and restores their state.

The graph is compiled once into a plan of flat result slots, so a batch costs one list and a few index
look-ups per operator on top of the operators' own work. Each intermediate batch is released as soon as
its last consumer has run, so peak memory holds only the batches still needed. Per-sample ``DataNode``
arguments are checked against their declaration before the operator runs, and every output batch is
checked for one element type and one number of dimensions.

Conditionals: a graph with ``fn._conditional.split``/``merge`` operators (``scope_rule``) runs each
operator in its *scope*, the samples of the branch it belongs to. Scopes are found statically when the
plan is made (an operator's inputs must share one; a split makes two child scopes per predicate; a merge
returns to the predicate's); at run time each scope gets a :class:`RunContext` holding its samples'
global indices. Graphs without conditionals keep the plain loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipestate.batch import Batch
from pipestate.errors import CheckpointError, OperatorError
from pipestate.graph import Graph
from pipestate.operators.base import BuildEnv, Operator, Position, RunContext, SampleOrigin
from pipestate.operators.conditional import predicate_mask


def _check_argument(kind: Any, batch: Batch, where: str) -> None:
    """Check every sample of a ``DataNode`` argument against its kind (see ``schema.Kind.check_samples``)."""
    kind.check_samples(batch.as_array() if batch.is_dense_tensor() else list(batch), where)


def _check_output(op: Operator, index: int, out: Any, size: int) -> None:
    """An output must be a Batch of ``size`` samples with one element type and one number of dimensions."""
    if type(out) is not Batch or len(out) != size:
        got = f"{len(out)} samples" if isinstance(out, Batch) else type(out).__name__
        raise OperatorError(
            f"operator {op.name!r} ({op.type}) produced {got} for output {index}; a batch of {size} is expected",
            op.name,
        )
    if out._dense is None and size > 1:
        dtypes, ndims = out.dtypes_and_ndims()
        if len(dtypes) > 1 or len(ndims) > 1:
            raise OperatorError(
                f"operator {op.name!r} ({op.type}) produced output {index} with samples of different types or "
                f"dimensions ({sorted(map(str, dtypes))}, ndim {sorted(ndims)}); a batch has one of each",
                op.name,
            )


class EndOfData(Exception):
    """Raised by a batch computation when a source ended the epoch."""


class Runtime:
    """Runs the operators of ``graph`` in order on one batch at a time."""

    def __init__(self, graph: Graph) -> None:
        self.ops = list(graph.ops)
        slots: dict[int, int] = {}
        plan = []
        total = 0
        for op in self.ops:
            inputs = [slots[id(n.op)] + n.index for n in op.inputs]
            kinds = {a.name: a.kind for a in op.SCHEMA}
            arg_inputs = [(k, slots[id(n.op)] + n.index, kinds[k]) for k, n in op.arg_inputs.items()]
            slots[id(op)] = total
            plan.append((op, op.run, inputs, arg_inputs, total, op.num_outputs))
            total += op.num_outputs
        self._size = total
        self._outputs = [slots[id(n.op)] + n.index for n in graph.outputs]
        # The plan entry after which each slot is no longer needed (pipeline outputs: never).
        last_use = {slot: k for k, (_, _, _, _, base, count) in enumerate(plan) for slot in range(base, base + count)}
        for k, (_, _, inputs, arg_inputs, _, _) in enumerate(plan):
            for slot in [*inputs, *(i for _, i, _ in arg_inputs)]:
                last_use[slot] = k
        keep = set(self._outputs)
        frees: list[list[int]] = [[] for _ in plan]
        for slot, k in last_use.items():
            if slot not in keep:
                frees[k].append(slot)
        self._plan = [(*entry, tuple(free)) for entry, free in zip(plan, frees)]
        self.stateful = [op for op in self.ops if op.stateful]
        elastic = [op for op in self.ops if op.layout_args()]
        if len(elastic) > 1:
            raise ValueError(
                f"operators {', '.join(repr(op.name) for op in elastic)} all read with elastic=True; a pipeline has "
                "at most one elastic reader (it decides the sample identities of the whole pipeline)"
            )
        self._origin_source = elastic[0] if elastic else None
        self._scoped = any(getattr(op, "scope_rule", None) for op in self.ops)
        if self._scoped:
            self._plan_scopes(slots)

    def _plan_scopes(self, slots: dict[int, int]) -> None:
        """Give every operator its scope index and every split the indices of the scopes it creates.

        Scope 0 is the whole batch; a split of scope ``s`` by the predicate in slot ``p`` creates the
        scopes ``(s, p, True)`` and ``(s, p, False)`` (shared by every split with that predicate).

        Raises:
            ValueError: an operator mixes inputs of different scopes, or a merge's inputs are not the two
                parts of a split by its predicate (naming the operator).
        """
        keys: dict[tuple, int] = {}
        slot_scope: dict[int, int] = {}
        self._scopes = []  # per plan entry: (scope index, child scope indices of a split, or None)
        for op, _run, inputs, arg_inputs, base, count, _free in self._plan:
            rule = getattr(op, "scope_rule", None)
            arg_scopes = [slot_scope[i] for _, i, _ in arg_inputs]
            in_scopes = [slot_scope[i] for i in inputs]
            if rule == "merge":
                scope = arg_scopes[0]
                pred = arg_inputs[0][1]
                want = [keys.get((scope, pred, True)), keys.get((scope, pred, False))]
                if in_scopes != want:
                    raise ValueError(
                        f"operator {op.name!r} ({op.type}): its inputs must be the true and false outputs of "
                        "fn._conditional.split with the same predicate"
                    )
            else:
                found = set(arg_scopes + in_scopes)
                if len(found) > 1:
                    raise ValueError(
                        f"operator {op.name!r} ({op.type}) has inputs from different conditional branches; use "
                        "values of one branch, or merge them first"
                    )
                scope = found.pop() if found else 0
            children = None
            if rule == "split":
                pred = arg_inputs[0][1]
                children = tuple(keys.setdefault((scope, pred, branch), len(keys) + 1) for branch in (True, False))
                slot_scope[base], slot_scope[base + 1] = children
            else:
                for k in range(count):
                    slot_scope[base + k] = scope
            self._scopes.append((scope, children))
        self._n_scopes = len(keys) + 1

    def bind(self, env: BuildEnv) -> None:
        """Set every operator up for ``env`` (releasing what an earlier setup acquired)."""
        for op in self.ops:
            op.close()
            op.bind(env)

    def origin(self, count: int) -> SampleOrigin | None:
        """Where the next batch's samples come from in the dataset, when an elastic reader decides the
        sample identities (the run context derives them from it); ``None``: the sample counter does."""
        source = self._origin_source
        return None if source is None else source.sample_origin(count)

    def run(self, ctx: RunContext) -> tuple[Batch, ...]:
        """Compute one batch of every pipeline output.

        Raises:
            EndOfData: a source (an operator with ``ends_epoch``) raised ``StopIteration``.
            OperatorError: an operator failed, was given a bad per-sample argument, or produced a wrong
                batch (naming it).
        """
        results: list[Any] = [None] * self._size
        scoped = self._scoped
        if scoped:
            contexts: list[RunContext | None] = [None] * self._n_scopes
            contexts[0] = ctx
        for k, (op, run, inputs, arg_inputs, base, count, free) in enumerate(self._plan):
            if scoped:
                scope, children = self._scopes[k]
                op_ctx = contexts[scope]
            else:
                op_ctx, children = ctx, None
            try:
                args = {name: results[i] for name, i, _ in arg_inputs}
                for name, i, kind in arg_inputs:
                    _check_argument(kind, results[i], f"argument {name!r}")
                outputs = run(op_ctx, [results[i] for i in inputs], args)
                if children is not None and contexts[children[0]] is None:
                    mask = predicate_mask(args["predicate"])
                    contexts[children[0]], contexts[children[1]] = op_ctx.subset(mask), op_ctx.subset(~mask)
            except StopIteration as exc:
                if getattr(op, "ends_epoch", False):
                    raise EndOfData from exc
                raise self._error(op, ctx, exc) from exc
            except OperatorError:
                raise  # already names the operator (and the sample); its cause is the original error
            except Exception as exc:
                raise self._error(op, ctx, exc) from exc
            if type(outputs) is not tuple or len(outputs) != count:
                got = f"{len(outputs)} outputs" if isinstance(outputs, (tuple, list)) else type(outputs).__name__
                raise OperatorError(f"operator {op.name!r} ({op.type}) returned {got}, not {count} outputs", op.name)
            for j, out in enumerate(outputs):
                size = (contexts[children[j]] if children is not None else op_ctx).batch_size
                _check_output(op, j, out, size)
            results[base : base + count] = outputs
            for slot in free:
                results[slot] = None
        return tuple(results[i] for i in self._outputs)

    @staticmethod
    def _error(op: Operator, ctx: RunContext, exc: BaseException) -> OperatorError:
        return OperatorError(
            f"operator {op.name!r} ({op.type}) failed in epoch {ctx.epoch}, iteration {ctx.iteration_in_epoch}: "
            f"{type(exc).__name__}: {exc}",
            op.name,
        )

    def states(self) -> tuple:
        """The states of the stateful operators (in graph order)."""
        return tuple(op.state() for op in self.stateful)

    def check(self, states: Sequence[Any], at: Position) -> None:
        """Check that every stateful operator can continue from its state at ``at``; changes nothing.

        Safe to call while a batch is being computed (``check_state`` reads only what setup decided).

        Raises:
            CheckpointError: an operator refuses its state (naming it).
        """
        for op, state in zip(self.stateful, states, strict=True):
            try:
                op.check_state(state, at)
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError(
                    f"operator {op.name!r} ({op.type}) cannot continue from the checkpoint's state: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    def restore(self, states: Sequence[Any], at: Position, previous: Position) -> None:
        """Move every stateful operator to its state at ``at``; all or nothing (back to ``previous``).

        Every operator checks its state first (:meth:`check`); only then are they moved, one by one. If
        one still fails (user code, a source ending early), it is unchanged, and those moved before it
        are moved back to their states at ``previous``.

        Raises:
            CheckpointError: an operator refused its state (naming it); every operator is back where it was.
        """
        self.check(states, at)
        before = self.states()
        done = 0
        try:
            for op, state in zip(self.stateful, states):
                op.restore(state, at)
                done += 1
        except Exception as exc:
            failed = self.stateful[done]
            for op, state in zip(self.stateful[: done + 1], before):  # the failed one too: a source object
                op.restore(state, previous)  # may have changed itself before raising
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(
                f"operator {failed.name!r} ({failed.type}) cannot continue from the checkpoint's state: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
