"""Conformance helpers: every operator's checkpoint test calls these.

``assert_equal_output_after_checkpoint(make_pipeline)`` runs a pipeline uninterrupted, taking a
checkpoint after every step, then restores from each of those checkpoints and checks that the
continuation is bit-identical: same outputs, same epoch ends, and byte-identical later checkpoints (so
the state's structure never changes). A step is one ``run()``; when it raises ``StopIteration`` the step
is an epoch end and the helper calls ``reset()``, so runs cross epoch boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from pipestate import checkpoint as ckpt
from pipestate.pipeline import Pipeline

END_OF_EPOCH = "end-of-epoch"

Event = Any  # a tuple of outputs (each a list of arrays), or END_OF_EPOCH


def record(pipe: Pipeline, steps: int) -> tuple[list[Event], list[bytes]]:
    """Run ``steps`` steps; return the events and the checkpoint taken after each step."""
    events, checkpoints = [], []
    for _ in range(steps):
        try:
            outputs = pipe.run()
        except StopIteration:
            pipe.reset()
            events.append(END_OF_EPOCH)
        else:
            events.append(tuple([np.array(s, copy=True) for s in out] for out in outputs))
        checkpoints.append(pipe.checkpoint())
    return events, checkpoints


def assert_events_equal(expected: Sequence[Event], actual: Sequence[Event], where: str = "") -> None:
    """Assert two event sequences are bit-identical (same dtypes, shapes and bytes)."""
    if len(expected) != len(actual):
        raise AssertionError(f"{where}: {len(actual)} steps, expected {len(expected)}")
    for step, (e, a) in enumerate(zip(expected, actual)):
        if isinstance(e, str) or isinstance(a, str):
            if e != a:
                raise AssertionError(f"{where}: step {step}: got {_brief(a)}, expected {_brief(e)}")
            continue
        for k, (eo, ao) in enumerate(zip(e, a)):
            for i, (es, as_) in enumerate(zip(eo, ao)):
                if es.dtype != as_.dtype or es.shape != as_.shape or es.tobytes() != as_.tobytes():
                    raise AssertionError(
                        f"{where}: step {step}, output {k}, sample {i} differs: expected {es!r}, got {as_!r}"
                    )


def _brief(event: Event) -> str:
    return event if isinstance(event, str) else "a batch"


def state_structure(blob: bytes) -> list[tuple[str, str, str]]:
    """Return (name, type, state kind) for every operator in a checkpoint."""
    data = ckpt.decode(blob)
    return [(op.name, op.type, type(op.state).__name__) for op in data.operators]


def assert_equal_output_after_checkpoint(
    make_pipeline: Callable[..., Pipeline],
    steps: int = 12,
    restore_at: Iterable[int] | None = None,
) -> None:
    """Check that restoring at every step continues exactly like the uninterrupted run.

    Args:
        make_pipeline: Builds the pipeline; called with no arguments for the reference run and with
            ``checkpoint=`` to restore (a ``@pipeline_def`` factory, or a ``functools.partial`` of one).
            The pipeline must have ``enable_checkpointing=True``.
        steps: Steps of the reference run (epoch ends count as steps).
        restore_at: The steps to restore at (0 = before the first run); default every step.

    Raises:
        AssertionError: naming the restore position, step, output and sample that differ.
    """
    reference = make_pipeline()
    initial = reference.checkpoint()
    events, checkpoints = record(reference, steps)
    reference.close()
    structure = state_structure(initial)
    for blob in checkpoints:
        if state_structure(blob) != structure:
            raise AssertionError("the checkpoint's structure (operators, state kinds) changed between steps")
    positions = range(steps) if restore_at is None else restore_at
    for position in positions:
        blob = initial if position == 0 else checkpoints[position - 1]
        restored = make_pipeline(checkpoint=blob)
        if not restored.is_restored_from_checkpoint:
            raise AssertionError("make_pipeline ignored checkpoint=")
        got_events, got_checkpoints = record(restored, steps - position)
        restored.close()
        where = f"restored at step {position}"
        assert_events_equal(events[position:], got_events, where)
        if got_checkpoints != checkpoints[position:]:
            first = next(i for i, (a, b) in enumerate(zip(got_checkpoints, checkpoints[position:])) if a != b)
            raise AssertionError(f"{where}: the checkpoint after step {position + first} differs")


def assert_restore_chain(make_pipeline: Callable[..., Pipeline], hops: Sequence[int]) -> None:
    """Restore, run ``hops[0]`` steps, checkpoint, restore again, ... and compare with one long run."""
    reference = make_pipeline()
    events, _ = record(reference, sum(hops))
    reference.close()
    got: list[Event] = []
    blob = None
    for hop in hops:
        pipe = make_pipeline() if blob is None else make_pipeline(checkpoint=blob)
        hop_events, hop_checkpoints = record(pipe, hop)
        pipe.close()
        got += hop_events
        blob = hop_checkpoints[-1] if hop_checkpoints else pipe.checkpoint()
    assert_events_equal(events, got, f"restore chain {list(hops)}")


def assert_same_output(make_pipeline: Callable[..., Pipeline], variants: Sequence[dict], steps: int = 6) -> None:
    """Check that pipelines built with each of ``variants`` (e.g. thread counts) give identical outputs."""
    results = []
    for options in variants:
        pipe = make_pipeline(**options)
        results.append(record(pipe, steps))
        pipe.close()
    for options, (events, checkpoints) in zip(variants[1:], results[1:]):
        assert_events_equal(results[0][0], events, f"options {options}")
        if checkpoints != results[0][1]:
            raise AssertionError(f"options {options}: checkpoints differ from options {variants[0]}")
