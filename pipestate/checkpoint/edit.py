"""Edit a checkpoint's data position: skip batches, exclude samples. Bytes in, bytes out.

Both functions work on the checkpoint alone (no pipeline is needed), in time independent of how much is
skipped or excluded, and return a checkpoint of the same pipeline that its pipeline restores as any other:

- :func:`skip` moves the pipeline's counters and its external sources by N batches and records in each
  reader's state how many samples to move past. The restored reader moves its position arithmetically
  (with exclusions: by counting the samples kept per epoch), rebuilds its shuffle buffer from indices and
  reads nothing skipped. Random operators draw by sample identity, which moves with the counters (or, in
  the elastic mode, with the reader's position), so every later batch is exactly the one an uninterrupted
  run gives at that step.
- :func:`exclude` adds ranges of dataset indices to each reader's state (compact ``[begin, end)`` ranges,
  merged); the readers never yield those indices from the checkpoint's position on, and keep the ranges in
  every later checkpoint.

A job checkpoint (:mod:`pipestate.distributed`) is edited shard by shard. What each reader does with its
state is described in ``pipestate/operators/readers/_exclusion.py`` and ``docs/recipes.md``.
"""

from __future__ import annotations

import dataclasses
import numbers
import operator
from collections.abc import Callable, Iterable
from typing import Any

from pipestate.checkpoint.codec import JOB_MAGIC, encode
from pipestate.checkpoint.job import decode_job, encode_job
from pipestate.checkpoint.records import FORMAT_VERSION, CheckpointData, OperatorRecord
from pipestate.checkpoint.restore import MAX_POSITION

__all__ = ["command", "exclude", "parse_range", "skip"]

_READER_KEYS = {"epoch", "consumed", "dataset_digest"}
_JOB_START = b"\x0d" + JOB_MAGIC.to_bytes(4, "little")


def skip(
    checkpoint: bytes, batches: int | None = None, *, samples: int | None = None, to_iteration: int | None = None
) -> bytes:
    """Return a checkpoint that resumes ``batches`` batches later than ``checkpoint``, without reading them.

    Give exactly one of ``batches``, ``samples`` or ``to_iteration``. The next ``run()`` of a pipeline
    restored from the result returns what an uninterrupted run returns at that step (outputs, augmentations
    and later checkpoints), provided the skip stays within the pipeline's epoch (see the limits below).

    Args:
        checkpoint: Checkpoint bytes (``Pipeline.checkpoint()``), or a job checkpoint (every shard moves).
        batches: Batches to skip (pipeline iterations; global steps for an elastic pipeline).
        samples: Samples to skip: a whole number of batches (of the pipeline's ``batch_size``; of the global
            batch for an elastic pipeline).
        to_iteration: The iteration to resume at (the checkpoint's ``iteration`` or later): the next
            ``run()`` returns batch ``to_iteration`` (counted from 0, over all epochs).

    Returns:
        The new checkpoint bytes (the same format version, a few bytes longer).

    Raises:
        TypeError: a count is not an int.
        ValueError: not exactly one count, a negative count, samples that are not whole batches, or a
            checkpoint that cannot be moved: format version 1, a framework iterator's state inside
            (``iterator_data``: its epoch counters would disagree), an external source holding its own state
            (``source.state()`` bytes), or an operator pipestate does not know how to move.
        CorruptCheckpointError, UnsupportedCheckpointVersionError: the bytes cannot be read.

    Limits: a skip never crosses the pipeline's epoch (``reset()``); an external source that is a sequence
    ending within the skip makes the restore fail (``CheckpointError``). An iterable source is replayed by
    the restore, as always (its skipped items are read), and a callable taking no argument is called afresh.
    """
    given = {
        k: v for k, v in (("batches", batches), ("samples", samples), ("to_iteration", to_iteration)) if v is not None
    }
    if len(given) != 1:
        raise ValueError(
            f"skip() takes exactly one of batches=, samples= or to_iteration= (got {sorted(given) or 'none'})"
        )
    ((what, value),) = given.items()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"skip({what}={value!r}): an int is expected")
    value = operator.index(value)

    def change(data: CheckpointData) -> CheckpointData:
        per_batch = _samples_per_batch(data)
        if what == "batches":
            count = value
        elif what == "to_iteration":
            count = value - data.iteration
            if count < 0:
                raise ValueError(
                    f"skip(to_iteration={value}): the checkpoint is at iteration {data.iteration} already; "
                    "skips only move forward"
                )
        else:
            count, rest = divmod(value, per_batch)
            if rest:
                raise ValueError(
                    f"skip(samples={value}) is not a whole number of batches of {per_batch}: skip "
                    f"{value - rest} or {value - rest + per_batch} samples"
                )
        if count < 0:
            raise ValueError(f"skip({what}={value}): a skip is not negative")
        if (data.iteration + count) * data.batch_size > MAX_POSITION:
            raise ValueError(f"skip({what}={value}): the pipeline's sample counter would overflow")
        ops = tuple(_skipped(record, count, data.batch_size) for record in data.operators)
        return dataclasses.replace(
            data, iteration=data.iteration + count, iteration_in_epoch=data.iteration_in_epoch + count, operators=ops
        )

    return _edit(checkpoint, change, "skip")


def exclude(checkpoint: bytes, indices: Iterable[Any], *, reader: str | None = None) -> bytes:
    """Return a checkpoint whose readers never yield the dataset indices ``indices`` from its position on.

    The ranges are stored in each reader's state, merged with those already there, and kept in every later
    checkpoint of a pipeline restored from the result. Without ``pad_last_batch`` an excluded sample is
    passed over (its epoch is that much shorter); with ``pad_last_batch=True`` its place is taken by the
    epoch's padding sample (so every shard keeps its number of batches per epoch). A reader's dataset index
    is a sample's place in its listing (``files``, the lines of ``file_list``, the records in order).

    Args:
        checkpoint: Checkpoint bytes, or a job checkpoint (every shard's readers).
        indices: Dataset indices: ints, ``range`` objects (step 1), ``(begin, end)`` pairs (half-open) or
            strings ``"begin:end"``/``"index"`` (:func:`parse_range`).
        reader: The name of the reader to change (default: every reader of the pipeline).

    Returns:
        The new checkpoint bytes.

    Raises:
        TypeError, ValueError: an index or range that is not one, or no such reader (the message names the
            pipeline's readers); format version 1.
        CorruptCheckpointError, UnsupportedCheckpointVersionError: the bytes cannot be read.
    """
    pairs = [_pair(item) for item in indices]
    if not pairs:
        raise ValueError("exclude() needs at least one index or range")
    from pipestate.operators.readers import _exclusion

    def change(data: CheckpointData) -> CheckpointData:
        readers = [r.name for r in data.operators if _is_reader(r)]
        if not readers:
            raise ValueError("the checkpoint's pipeline has no reader to exclude samples from")
        if reader is not None and reader not in readers:
            raise ValueError(f"exclude(reader={reader!r}): no such reader; the pipeline's readers: {readers}")
        ops = []
        for record in data.operators:
            if record.name in readers and reader in (None, record.name):
                state = dict(record.state)
                old = state.get(_exclusion.EXCLUDED, [])
                state[_exclusion.EXCLUDED] = _exclusion.merge([*zip(old[::2], old[1::2]), *pairs])
                if "layout" not in state:
                    state.setdefault(_exclusion.PASSED, 0)
                record = dataclasses.replace(record, state=state)
            ops.append(record)
        return dataclasses.replace(data, operators=tuple(ops))

    return _edit(checkpoint, change, "exclude")


def parse_range(text: str) -> tuple[int, int]:
    """``"begin:end"`` (half-open, as a Python slice) or ``"index"`` as a ``(begin, end)`` pair.

    Raises:
        ValueError: anything else, or ``end <= begin``.
    """
    parts = text.split(":")
    try:
        if len(parts) == 1:
            begin = int(parts[0])
            return _pair((begin, begin + 1))
        if len(parts) == 2:
            return _pair((int(parts[0]), int(parts[1])))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a dataset index or a range begin:end ({exc})") from None
    raise ValueError(f"{text!r} is not a dataset index or a range begin:end")


def command(name: str, source: str, output: str, **options: Any) -> int:
    """``pipestate skip|exclude CHECKPOINT OUTPUT ...``: edit a checkpoint file into ``output`` (written
    atomically; it may be ``source``) and say what changed; return the exit status.

    Args:
        name: ``"skip"`` or ``"exclude"``.
        source: The checkpoint file (or job checkpoint file).
        output: Where to write the result.
        **options: :func:`skip`'s count, or :func:`exclude`'s ``indices`` (strings) and ``reader``.

    Returns:
        0 on success; 1 when the file cannot be read or edited (the reason on stderr).
    """
    import sys
    import time

    from pipestate.errors import CheckpointError
    from pipestate.io.local import LocalCheckpointIO

    try:
        with open(source, "rb") as f:
            blob = f.read()
        start = time.perf_counter()
        edited = skip(blob, **options) if name == "skip" else exclude(blob, **options)
        elapsed = time.perf_counter() - start
        LocalCheckpointIO().save_checkpoint(edited, output)
    except (OSError, CheckpointError, TypeError, ValueError) as exc:
        sys.stderr.write(f"pipestate {name}: {source}: {exc}\n")
        return 1
    sys.stdout.write(f"{output}: {_summary(blob, edited)} ({len(edited)} bytes, edited in {elapsed * 1e3:.2f} ms)\n")
    return 0


def _summary(before: bytes, after: bytes) -> str:
    from pipestate.checkpoint.codec import decode

    if bytes(before[:5]) == _JOB_START:
        old, new = decode_job(before), decode_job(after)
        return f"job checkpoint of {new.num_shards} shards, iteration {old.iteration} -> {new.iteration}"
    old, new = decode(before), decode(after)
    parts = [f"iteration {old.iteration} -> {new.iteration}"] if old.iteration != new.iteration else []
    for record in new.operators:
        if _is_reader(record):
            state = record.state
            extra = [f"skips {state['skip']} samples on restore"] if "skip" in state else []
            ranges = state.get("excluded", [])
            if ranges:
                count = sum(e - b for b, e in zip(ranges[::2], ranges[1::2]))
                extra.append(f"excludes {count} indices in {len(ranges) // 2} range(s)")
            parts.append(f"reader {record.name!r} {', '.join(extra) or 'unchanged'}")
    return "; ".join(parts)


# ---- helpers --------------------------------------------------------------------------------------------
def _pair(item: Any) -> tuple[int, int]:
    if isinstance(item, str):
        return parse_range(item)
    if isinstance(item, range):
        if item.step != 1:
            raise ValueError(f"{item!r}: exclude ranges with step 1")
        begin, end = item.start, item.stop
    elif isinstance(item, tuple) and len(item) == 2:
        begin, end = item
    else:
        begin = item
        end = item + 1 if isinstance(item, numbers.Integral) and not isinstance(item, bool) else None
    for value in (begin, end):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{item!r} is not a dataset index, a range or a (begin, end) pair of ints")
    begin, end = operator.index(begin), operator.index(end)
    if not 0 <= begin < end <= MAX_POSITION:
        raise ValueError(f"{item!r}: a range of dataset indices is [begin, end) with 0 <= begin < end < 2**63")
    return begin, end


def _is_reader(record: OperatorRecord) -> bool:
    return record.type.startswith("readers.") and isinstance(record.state, dict) and _READER_KEYS <= set(record.state)


def _samples_per_batch(data: CheckpointData) -> int:
    """What one pipeline iteration reads: the batch size, or an elastic reader's global batch."""
    for record in data.operators:
        if _is_reader(record) and isinstance(record.state.get("layout"), dict):
            return int(record.state["layout"].get("global_batch_size", data.batch_size))
    return data.batch_size


def _skipped(record: OperatorRecord, count: int, batch_size: int) -> OperatorRecord:
    """The record moved by ``count`` batches: a reader's pending skip grows by the samples it reads in them
    (an elastic reader's position is the job's: global batches), an external source's batch counter moves."""
    if not record.has_state or not count:
        return record
    where = f"operator {record.name!r} ({record.type})"
    state = dict(record.state) if isinstance(record.state, dict) else None
    if state is not None and _is_reader(record):
        layout = state.get("layout")
        per_batch = layout.get("global_batch_size", batch_size) if isinstance(layout, dict) else batch_size
        state["skip"] = state.get("skip", 0) + count * per_batch
    elif state is not None and record.type == "external_source" and isinstance(state.get("iteration"), int):
        if "source_state" in state:
            raise ValueError(
                f"{where}: the source keeps its own state (source.state() bytes), which pipestate cannot move; "
                "skip in the source itself, or make it a callable taking BatchInfo/SampleInfo"
            )
        state["iteration"] += count
    else:
        raise ValueError(f"{where}: pipestate does not know how to move this operator's state by {count} batches")
    return dataclasses.replace(record, state=state)


def _edit(blob: bytes, change: Callable[[CheckpointData], CheckpointData], what: str) -> bytes:
    """Apply ``change`` to a checkpoint, or to every shard of a job checkpoint."""
    from pipestate.checkpoint.codec import decode

    if bytes(blob[:5]) == _JOB_START:
        job = decode_job(blob)
        shards = [_changed(decode(shard), change, what) for shard in job.shards]
        first = shards[0]
        edited = dataclasses.replace(
            job,
            iteration=first.iteration,
            iteration_in_epoch=first.iteration_in_epoch,
            shards=tuple(encode(s) for s in shards),
        )
        return encode_job(edited)
    return encode(_changed(decode(blob), change, what))


def _changed(data: CheckpointData, change: Callable[[CheckpointData], CheckpointData], what: str) -> CheckpointData:
    if data.format_version != FORMAT_VERSION:
        raise ValueError(
            f"{what}: a format version {data.format_version} checkpoint cannot be edited; restore it into its "
            "pipeline with this release and take a new checkpoint first"
        )
    if data.iterator_data and what == "skip":
        raise ValueError(
            "skip: the checkpoint holds a framework iterator's state (iterator_data), whose epoch counters would "
            "no longer match; skip in a checkpoint of the pipeline itself (Pipeline.checkpoint() without "
            "iterator_data)"
        )
    return change(data)
