"""Partial restore: restore the operators whose identity is unchanged, start the changed stateless ones fresh.

A pipeline constructed with ``partial_restore=True`` (or ``restore(..., partial_restore=True)``) accepts a
checkpoint of an earlier version of its definition, operator by operator, matched by name:

- an operator whose identity (type, non-default arguments, inputs) is unchanged gets its state back;
- an operator that stores no state (an augmentation, a decoder, a random operator) may have changed, been
  added or been removed: it starts fresh, as it would have anyway (random operators draw by sample
  identity, which the checkpoint's counters keep);
- an operator that stores state (a reader, an external source) and changed, or is new, is never started
  fresh silently: that is a :class:`~pipestate.errors.CheckpointMismatchError` naming it and its changed
  arguments; one that was removed is dropped (listed in the report).

The batch size and the seed must be the checkpoint's. What happened is returned as a :class:`RestoreReport`
and, when anything differed, said in a :class:`~pipestate.errors.PartialRestoreWarning`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pipestate.checkpoint.records import CheckpointData, OperatorRecord, mismatch
from pipestate.graph import DataNode, fingerprint, is_elastic


@dataclasses.dataclass(frozen=True)
class RestoreReport:
    """What a restore did, operator by operator (returned by ``Pipeline.restore()``, kept in
    ``Pipeline.restore_report``).

    Attributes:
        restored: The stateful operators moved to their state in the checkpoint.
        reset: Operators whose identity changed (arguments or inputs), started fresh (stateless ones only).
        added: Operators the checkpoint does not have, started fresh (stateless ones only).
        removed: Operators of the checkpoint this pipeline does not have (their state, if any, is dropped).
        changed_arguments: For each operator of ``reset``, the names of the arguments that differ (empty:
            only its inputs are wired differently).
        outputs_changed: The pipeline's outputs are not the checkpoint's.
    """

    restored: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed_arguments: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    outputs_changed: bool = False

    @property
    def partial(self) -> bool:
        """True when the pipeline differs from the checkpoint's (something was started fresh or dropped)."""
        return bool(self.reset or self.added or self.removed or self.outputs_changed)

    def __str__(self) -> str:
        if not self.partial:
            return f"restored every operator ({len(self.restored)} with state)"
        lines = ["partial restore: the pipeline differs from the checkpoint's"]
        lines.append(f"  restored: {', '.join(self.restored) or 'no operator with state'}")
        for name in self.reset:
            changed = self.changed_arguments.get(name, ())
            why = f"changed arguments: {', '.join(changed)}" if changed else "inputs wired differently"
            lines.append(f"  started fresh: {name} ({why})")
        if self.added:
            lines.append(f"  started fresh (not in the checkpoint): {', '.join(self.added)}")
        if self.removed:
            lines.append(f"  dropped (not in this pipeline): {', '.join(self.removed)}")
        if self.outputs_changed:
            lines.append("  the pipeline's outputs differ")
        return "\n".join(lines)


def full_report(ops: Sequence[Any]) -> RestoreReport:
    """The report of a restore of a checkpoint of exactly this pipeline."""
    return RestoreReport(restored=tuple(op.name for op in ops if op.stateful))


def plan(
    expected: CheckpointData, found: CheckpointData, ops: Sequence[Any], outputs: Sequence[DataNode]
) -> tuple[RestoreReport, tuple]:
    """Match a format-2 checkpoint ``found`` to the pipeline ``expected`` (its identity with the seed it
    will run with), operator by operator.

    Args:
        expected: The pipeline's identity record.
        found: The decoded checkpoint.
        ops: The pipeline's operators (graph order; ``expected.operators`` describes them).
        outputs: The pipeline's outputs.

    Returns:
        The report, and the state of each of the pipeline's stateful operators (graph order).

    Raises:
        CheckpointMismatchError: a stateful operator changed or is new, or the batch size or seed differs
            (one line per problem, each naming the operator and its arguments).
    """
    problems = []
    elastic = is_elastic(ops)
    if expected.batch_size != found.batch_size and not elastic:
        problems.append(f"batch_size is {expected.batch_size}, the checkpoint has {found.batch_size}")
    if expected.seed != found.seed:
        problems.append(f"seed is {expected.seed}, the checkpoint has {found.seed}")
    theirs = {r.name: r for r in found.operators}
    ours = {r.name for r in expected.operators}
    restored, reset, added, states = [], [], [], []
    changed_arguments = {}
    for op, mine in zip(ops, expected.operators):
        other = theirs.get(op.name)
        where = f"operator {op.name!r} ({op.type})"
        if other is None:
            if op.stateful:
                problems.append(f"{where} keeps state and is not in the checkpoint: it cannot start fresh")
            added.append(op.name)
            continue
        same = other.type == mine.type and other.digest == mine.digest
        if same and other.has_state == op.stateful:
            if op.stateful:
                restored.append(op.name)
                states.append(other.state)
            continue
        what = _changes(mine, other)
        if op.stateful or other.has_state:
            problems.append(f"{where} keeps state and {what}: a changed reader or source is never restored")
            continue
        reset.append(op.name)
        changed_arguments[op.name] = _changed_arguments(mine, other)
    if problems:
        raise mismatch(
            [*problems, "(partial_restore=True restores unchanged operators and starts stateless ones fresh)"]
        )
    removed = tuple(r.name for r in found.operators if r.name not in ours)
    digests = [(r.name, r.digest) for r in found.operators]
    same_outputs = fingerprint(None if elastic else found.batch_size, found.seed, digests, outputs) == found.fingerprint
    report = RestoreReport(
        tuple(restored), tuple(reset), tuple(added), removed, changed_arguments, outputs_changed=not same_outputs
    )
    return report, tuple(states)


def _changed_arguments(mine: OperatorRecord, other: OperatorRecord) -> tuple[str, ...]:
    if mine.type != other.type:
        return ()
    a, b = dict(mine.arg_digests), dict(other.arg_digests)
    return tuple(sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)))


def _changes(mine: OperatorRecord, other: OperatorRecord) -> str:
    if mine.type != other.type:
        return f"is {mine.type}, the checkpoint's is {other.type}"
    changed = _changed_arguments(mine, other)
    if changed:
        return f"changed arguments: {', '.join(changed)}"
    if mine.digest != other.digest:
        return "its inputs are wired differently"
    return "the checkpoint's entry does not fit it (a state where it keeps none, or none where it keeps one)"
