"""Conformance helpers: every operator's checkpoint test calls these, and the registry-wide suite.

``assert_equal_output_after_checkpoint(make_pipeline)`` runs a pipeline uninterrupted, taking a
checkpoint after every step, then restores from each of those checkpoints and checks that the
continuation is bit-identical: same outputs, same epoch ends, and byte-identical later checkpoints (so
the state's structure never changes). A step is one ``run()``; when it raises ``StopIteration`` the step
is an epoch end and the helper calls ``reset()``, so runs cross epoch boundaries.

``example_pipeline(op_type)`` builds the pipeline of an operator's declared
:class:`~pipestate.operators.example.Example` (synthetic inputs, deterministic per sample, plus an epoch
clock so runs cross epoch ends); ``check_operator(op_type)`` runs the conformance checks on it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from pipestate import checkpoint as ckpt
from pipestate.operators.example import Example, Tensor
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
    """Assert two event sequences are bit-identical: as many steps, outputs per step and samples per
    output, with the same dtypes, shapes and bytes."""
    if len(expected) != len(actual):
        raise AssertionError(f"{where}: {len(actual)} steps, expected {len(expected)}")
    for step, (e, a) in enumerate(zip(expected, actual)):
        if isinstance(e, str) or isinstance(a, str):
            if e != a:
                raise AssertionError(f"{where}: step {step}: got {_brief(a)}, expected {_brief(e)}")
            continue
        if len(e) != len(a):
            raise AssertionError(f"{where}: step {step}: {len(a)} outputs, expected {len(e)}")
        for k, (eo, ao) in enumerate(zip(e, a)):
            if len(eo) != len(ao):
                raise AssertionError(f"{where}: step {step}, output {k}: {len(ao)} samples, expected {len(eo)}")
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


def refused_checkpoints(blob: bytes, other: bytes) -> list[tuple[str, bool, bytes]]:
    """Checkpoints crafted from ``blob`` (valid checksums, wrong content) that a pipeline must or may refuse.

    Args:
        blob: A checkpoint of the pipeline.
        other: A checkpoint of another pipeline (refused as a mismatch).

    Returns:
        ``(what, must_refuse, bytes)`` for: ``other``; ``blob`` moved to a position past the end (the
        pipeline's counters only, and far beyond the counter limit: to refuse), or later in the epoch with
        every counter moved, in the operators' states too (each integer of a state dict equal to the
        batch counters: the position may be one the pipeline reaches); and, for each stateful operator,
        ``blob`` with its state replaced by one of another structure (another kind of value; for a dict,
        a key dropped or one added: a state's structure never changes, so these must be refused) or with
        one value changed (-1, 2**64 - 1, a string: refused or not, as the operator decides).
    """
    data = ckpt.decode(blob)
    cases = [("another pipeline's checkpoint", True, other)]
    for what, ahead in (("a position past the end", 1000), ("a position past the counter limit", 2**62)):
        moved = {"iteration": data.iteration + ahead, "iteration_in_epoch": data.iteration_in_epoch + ahead}
        cases.append((what, True, ckpt.encode(dataclasses.replace(data, **moved))))
    for ahead in (3, 1000):
        counters = {data.iteration, data.iteration_in_epoch}
        ops = tuple(
            dataclasses.replace(
                op, state={k: v + ahead if isinstance(v, int) and v in counters else v for k, v in op.state.items()}
            )
            if isinstance(op.state, dict)
            else op
            for op in data.operators
        )
        moved = {"iteration": data.iteration + ahead, "iteration_in_epoch": data.iteration_in_epoch + ahead}
        later = dataclasses.replace(data, operators=ops, **moved)
        cases.append((f"every counter {ahead} batches later", False, ckpt.encode(later)))
    for i, op in enumerate(data.operators):
        if not op.has_state:
            continue
        for what, must, state in _altered_states(op.state):
            ops = list(data.operators)
            ops[i] = dataclasses.replace(op, state=state)
            altered = ckpt.encode(dataclasses.replace(data, operators=tuple(ops)))
            cases.append((f"operator {op.name!r} with {what}", must, altered))
    return cases


def _altered_states(state: Any) -> list[tuple[str, bool, Any]]:
    other_kind = [{"state": state}] if isinstance(state, dict) else {"state": state}
    out: list[tuple[str, bool, Any]] = [("a state of another kind", True, other_kind)]
    if isinstance(state, dict):
        out += [(f"key {k!r} dropped", True, {j: v for j, v in state.items() if j != k}) for k in state]
        out.append(("a key added", True, {**state, "unexpected": 0}))
        for key in state:
            for value in (-1, 2**64 - 1, "x"):
                out.append((f"{key}={value!r}", False, {**state, key: value}))
    return out


def assert_refused_restores_change_nothing(
    make_pipeline: Callable[..., Pipeline], steps: int = 12, positions: Iterable[int] | None = None
) -> dict[str, int]:
    """Check that a refused restore leaves a pipeline exactly as it was, wherever it is.

    The pipeline is run to each position (a number of steps; at an epoch end, before its ``reset()``), and
    every checkpoint of :func:`refused_checkpoints` (crafted from the reference run's checkpoints at steps
    1 and ``steps - 1``) is restored into it: each one refused raises a :class:`~pipestate.CheckpointError`,
    and leaves ``checkpoint()`` unchanged; after all of them, the pipeline continues exactly as the
    reference run (batches, epoch ends and checkpoints). Each must-refuse checkpoint is also refused by
    ``make_pipeline(checkpoint=...)``. An accepted one (a value an operator may accept) is undone with
    ``restore()`` of the checkpoint taken before it.

    Args:
        make_pipeline: As for :func:`assert_equal_output_after_checkpoint`; also called with
            ``batch_size=`` (another pipeline).
        steps: Steps of the reference run (epoch ends count as steps).
        positions: Where to restore (steps run before); default 0, 1, each epoch end and the step after it.

    Returns:
        How many crafted checkpoints were refused, by what they are (``what`` of :func:`refused_checkpoints`
        without the operator's name), summed over the positions.

    Raises:
        AssertionError: naming the position and the checkpoint.
    """
    from pipestate.errors import CheckpointError, PipestateError

    reference = make_pipeline()
    events, checkpoints = record(reference, steps)
    other = make_pipeline(batch_size=reference.batch_size + 1)
    cases = [case for k in (1, steps - 1) for case in refused_checkpoints(checkpoints[k - 1], other.checkpoint())]
    other.close()
    reference.close()
    for what, must, blob in cases:
        if must:
            try:
                make_pipeline(checkpoint=blob).close()
            except CheckpointError:
                continue
            raise AssertionError(f"constructing with {what} (a checkpoint to refuse) succeeded")
    ends = [k for k, event in enumerate(events) if event == END_OF_EPOCH]
    if positions is None:
        positions = {0, 1, *ends, *(k + 1 for k in ends)} - {steps}
    refused: dict[str, int] = {}
    # At an epoch end, restore both before the run() that raises StopIteration and after it (before reset()).
    for position, ended in sorted({(p, False) for p in positions} | {(p, True) for p in positions if p in ends}):
        pipe = make_pipeline()
        record(pipe, position)
        if ended and not _ends_epoch(pipe):
            raise AssertionError(f"step {position + 1} of the reference run was an epoch end; this run continued")
        before = pipe.checkpoint()
        for what, must, blob in cases:
            where = f"after {position} steps{' and the epoch end' if ended else ''}, restoring {what}"
            try:
                pipe.restore(blob)
            except CheckpointError:
                if pipe.checkpoint() != before:
                    raise AssertionError(f"{where}: refused, but the pipeline's checkpoint changed") from None
                key = what.split(" with ")[-1]
                refused[key] = refused.get(key, 0) + 1
                continue
            if must:
                raise AssertionError(f"{where}: accepted a checkpoint to refuse")
            pipe.restore(before)
        where = f"continuing after refused restores after {position} steps{' and the epoch end' if ended else ''}"
        try:
            if ended:
                if not _ends_epoch(pipe):
                    raise AssertionError(f"{where}: the epoch end was lost")
                pipe.reset()
            got, got_checkpoints = record(pipe, steps - position - ended)
        except PipestateError as exc:
            raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc
        finally:
            pipe.close()
        assert_events_equal(events[position + ended :], got, where)
        if got_checkpoints != checkpoints[position + ended :]:
            raise AssertionError(f"{where}: the checkpoints differ from the reference run's")
    return refused


def _ends_epoch(pipe: Pipeline) -> bool:
    try:
        pipe.run()
    except StopIteration:
        return True
    return False


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


# ---- operator examples ----------------------------------------------------------------------------------
def synthetic_sample(spec: Tensor, index: int, salt: int = 0) -> np.ndarray:
    """Sample ``index`` of a synthetic input: a pure function of (spec, index, salt), stable across numpy
    releases (raw PCG64 words, never a numpy distribution)."""
    if spec.values is not None:
        return np.asarray(spec.values(index), dtype=spec.dtype)
    bits = np.random.PCG64([salt, index])
    shape = list(spec.shape)
    if spec.ragged:
        sizes = bits.random_raw(len(spec.ragged))
        for axis, word in zip(spec.ragged, sizes.tolist()):
            shape[axis] = 1 + int(word % (2 * max(spec.shape[axis], 1)))
    n = int(np.prod(shape))
    u = (bits.random_raw(n) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    values = spec.low + u * (spec.high - spec.low)
    dtype = np.dtype(spec.dtype)
    if dtype.kind in "iub":
        values = np.floor(values)
    return values.astype(dtype).reshape(shape)


class SyntheticSource:
    """An external source (``batch=False``) of synthetic samples; an epoch holds ``limit`` samples."""

    def __init__(self, spec: Tensor, salt: int, limit: int) -> None:
        self.spec, self.salt, self.limit = spec, salt, limit

    def __call__(self, info: Any) -> np.ndarray:
        if info.idx_in_epoch >= self.limit:
            raise StopIteration
        return synthetic_sample(self.spec, info.idx_in_epoch, self.salt)


def example_setup(example: Example, directory: str = "data") -> dict[str, Any] | None:
    """Run an example's ``setup`` (a function, or ``"module:function"``) in ``directory``; its arguments."""
    setup = example.setup
    if setup is None:
        return None
    if isinstance(setup, str):
        import importlib

        module, _, name = setup.partition(":")
        setup = getattr(importlib.import_module(module), name)
    os.makedirs(directory, exist_ok=True)
    return setup(directory)


def example_of(op: str | type) -> tuple[type, Example]:
    """The operator class registered as ``op`` (or ``op`` itself) and its declared example.

    Raises:
        LookupError: the operator declares no ``EXAMPLE``.
    """
    from pipestate.operators import REGISTRY

    cls = REGISTRY[op] if isinstance(op, str) else op
    example = getattr(cls, "EXAMPLE", None)
    if example is None:
        raise LookupError(f"operator {cls.type!r} ({cls.__qualname__}) declares no EXAMPLE")
    return cls, example


def example_pipeline(
    op: str | type,
    example: Example | None = None,
    setup_args: dict[str, Any] | None = None,
    **options: Any,
) -> Pipeline:
    """The pipeline of an operator's example: synthetic inputs (external sources ending the epoch every
    ``example.epoch_batches`` batches), the operator, and the epoch clock as the last output.

    Args:
        op: The operator type (``"random.uniform"``) or class.
        example: Another example than the declared one (e.g. with a bad argument, for fuzzing).
        setup_args: What ``example.setup`` returned (the caller runs it once, in the working directory).
        **options: Pipeline options (``num_threads``, ``prefetch_queue_depth``, ``checkpoint``...).
    """
    from pipestate import fn
    from pipestate.pipeline import pipeline_def
    from pipestate.tracing import add_operator

    cls, declared = example_of(op)
    example = example or declared
    limit = example.epoch_batches * example.batch_size
    defaults = {"batch_size": example.batch_size, "seed": 1234, "num_threads": 1, "enable_checkpointing": True}

    @pipeline_def(**{**defaults, **options})
    def pipe():
        def source(spec: Tensor, salt: int) -> Any:
            return fn.external_source(
                source=SyntheticSource(spec, salt, limit), batch=False, layout=spec.layout or None
            )

        inputs = [source(spec, k) for k, spec in enumerate(example.inputs)]
        args = {**example.args, **(setup_args or {})}
        args.update({name: source(spec, 100 + k) for k, (name, spec) in enumerate(example.arg_inputs.items())})
        clock = source(Tensor("int32", (), values=lambda i: i), 99)
        if example.build is not None:
            out = example.build(*inputs, **args)
        else:
            out = add_operator(cls, inputs, args)
        out = list(out.values()) if isinstance(out, dict) else out
        return (*(out if isinstance(out, (list, tuple)) else [out]), clock)

    return pipe()


def check_operator(op: str | type, setup_args: dict[str, Any] | None = None, steps: int | None = None) -> None:
    """Run the conformance checks on an operator's example: restore after every step across an epoch end
    (checkpoints byte-identical after the restore), the same output with 1 or 3 threads and a prefetch
    depth of 1 or 3, and, for a stateful operator, refused restores that change nothing
    (:func:`assert_refused_restores_change_nothing`).

    Raises:
        AssertionError: naming what differs.
    """
    _, example = example_of(op)
    steps = steps or 2 * (example.epoch_batches + 1) + 1

    def make(**options: Any) -> Pipeline:
        return example_pipeline(op, setup_args=setup_args, **options)

    assert_equal_output_after_checkpoint(make, steps=steps)
    if example_of(op)[0].stateful:
        assert_refused_restores_change_nothing(make, steps=steps)
    assert_same_output(
        make, [{"num_threads": 1, "prefetch_queue_depth": 1}, {"num_threads": 3, "prefetch_queue_depth": 3}], steps
    )
