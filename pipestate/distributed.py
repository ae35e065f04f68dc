"""Elastic jobs: one checkpoint for every shard of a job, restored on another number of shards.

A pipeline whose reader has ``elastic=True`` reads one global sequence per epoch, cut into global batches
of which each shard takes its part, and its checkpoint records the job's global position. This module
turns the checkpoints of the N shards of such a job, taken after the same global step, into one *job
checkpoint* (:func:`combine`: a manifest and the shards' checkpoints, validated), and gives each of M new
shards its checkpoint (:func:`shard_checkpoint`, :func:`split`), for M smaller, equal or larger than N and
any new global batch size. After the restart the M shards' samples, global step by global step, continue
the job's sequence exactly: none lost, none repeated, each with the same augmentation. See
``docs/distributed.md`` for the guarantees and their conditions.

The collectives run on ``torch.distributed`` (:func:`gather`, :func:`scatter`; any backend, gloo on the
CPU), the job checkpoint goes into ``torch.distributed.checkpoint`` as a tensor (:func:`to_tensor`,
:func:`load_from_dcp`), and ``pipestate.plugin.tf`` maps ``tf.distribute`` input contexts to layouts.
torch is imported only by those functions.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import Any

from pipestate import checkpoint as ckpt
from pipestate.errors import CheckpointError, CheckpointMismatchError, CorruptCheckpointError
from pipestate.operators.readers._elastic import LAYOUT_KEYS, POSITION_KEYS, counters
from pipestate.operators.readers._exclusion import EXCLUDED, SKIP

_ELASTIC_KEYS = POSITION_KEYS | {"layout"}
_EDITED_KEYS = (EXCLUDED, SKIP)  # excluded samples and a pending skip (pipestate.checkpoint.edit), optional

__all__ = [
    "combine",
    "from_tensor",
    "gather",
    "load_from_dcp",
    "local_batch_size",
    "read_job",
    "scatter",
    "shard_checkpoint",
    "split",
    "to_tensor",
]

_MAX_BATCH = 2**31 - 1


def local_batch_size(global_batch_size: int, num_shards: int, shard_id: int) -> int:
    """Return the batch size of shard ``shard_id``'s pipeline in an elastic job.

    Shard ``k`` takes positions ``[G*k // num_shards, G*(k+1) // num_shards)`` of every global batch of
    ``G`` samples, so the sizes differ by at most one and sum to ``G``.

    Raises:
        TypeError: an argument is not an int.
        ValueError: ``num_shards < 1``, ``shard_id`` outside ``[0, num_shards)``, or ``global_batch_size``
            smaller than ``num_shards`` (every shard takes at least one sample) or above ``2**31 - 1``.
    """
    _check_layout(global_batch_size, num_shards, shard_id)
    return global_batch_size * (shard_id + 1) // num_shards - global_batch_size * shard_id // num_shards


def _check_layout(global_batch_size: Any, num_shards: Any, shard_id: Any = 0) -> None:
    for name, value in (("global_batch_size", global_batch_size), ("num_shards", num_shards), ("shard_id", shard_id)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}={value!r} must be an int")
    if num_shards < 1:
        raise ValueError(f"num_shards={num_shards} must be >= 1")
    if not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id={shard_id} must be in [0, num_shards) = [0, {num_shards})")
    if not num_shards <= global_batch_size <= _MAX_BATCH:
        raise ValueError(
            f"global_batch_size={global_batch_size} must be in [num_shards, 2**31 - 1] = [{num_shards}, {_MAX_BATCH}]: "
            "every shard takes at least one sample of each global batch"
        )


# ---- one shard's checkpoint ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Shard:
    """A decoded shard checkpoint and its elastic reader's entry."""

    blob: bytes
    data: ckpt.CheckpointData
    reader: int  # index of the elastic reader in data.operators
    position: dict

    @property
    def layout(self) -> tuple[int, int, int]:
        layout = self.position["layout"]
        return layout["global_batch_size"], layout["num_shards"], layout["shard_id"]

    @property
    def step(self) -> tuple[int, int, int, int, int]:
        data, position = self.data, self.position
        return data.iteration, data.epoch, data.iteration_in_epoch, position["epoch"], position["consumed"]


def _shard(blob: bytes, where: str) -> _Shard:
    """Decode one shard's checkpoint and find its elastic reader (errors name ``where``)."""
    try:
        data = ckpt.decode(blob)
    except CheckpointError as exc:
        raise type(exc)(f"{where}: {exc}") from exc
    if data.format_version != ckpt.FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"{where}: a format version {data.format_version} checkpoint has no elastic reader"
        )
    readers = [
        i
        for i, r in enumerate(data.operators)
        if r.has_state
        and isinstance(r.state, dict)
        and _ELASTIC_KEYS <= set(r.state) <= {*_ELASTIC_KEYS, *_EDITED_KEYS}
    ]
    if len(readers) != 1:
        raise CheckpointMismatchError(
            f"{where}: the pipeline has {'no' if not readers else len(readers)} elastic reader(s); an elastic job "
            "reads with exactly one reader built with elastic=True"
        )
    state = data.operators[readers[0]].state
    if not counters({k: state[k] for k in POSITION_KEYS}, POSITION_KEYS) or not counters(state["layout"], LAYOUT_KEYS):
        raise CorruptCheckpointError(f"{where}: the elastic reader's state {state!r} is not a position and a layout")
    return _Shard(bytes(blob), data, readers[0], state)


def _describe_step(iteration: int, epoch: int, consumed: int) -> str:
    return f"global step {iteration} (reader epoch {epoch}, sample {consumed} of it)"


def _layout(global_batch_size: int, num_shards: int, shard_id: int) -> dict[str, int]:
    return {"global_batch_size": global_batch_size, "num_shards": num_shards, "shard_id": shard_id}


def _check_shard(job: ckpt.JobData, k: int, shard: _Shard, first: _Shard, reference: str) -> None:
    """Shard ``k`` belongs to the job: one definition, its place in the layout, the job's position.

    Raises:
        CheckpointMismatchError: naming the shard (``reference`` names what it is compared with).
    """
    where, data, g, m = f"shard {k}", shard.data, job.global_batch_size, job.num_shards
    if data.fingerprint != job.fingerprint:
        differences = ckpt.describe_differences(first.data, data) if k else []
        detail = "; ".join(differences) or "the graph, its arguments or the seed"
        raise CheckpointMismatchError(f"{where} was taken from another pipeline than {reference}: {detail}")
    if data.operators[shard.reader].name != job.reader:
        raise CheckpointMismatchError(f"{where}: its elastic reader is not {job.reader!r}, {reference}'s")
    if shard.layout != (g, m, k):
        sg, sm, sk = shard.layout
        raise CheckpointMismatchError(
            f"{where}: its checkpoint is shard {sk} of {sm} with a global batch of {sg}, not shard {k} of {m} "
            f"with a global batch of {g}"
        )
    expected = local_batch_size(g, m, k)
    if data.batch_size != expected:
        raise CheckpointMismatchError(
            f"{where}: its checkpoint has batch_size={data.batch_size}; its part of a global batch of {g} over "
            f"{m} shards is {expected}"
        )
    step = (job.iteration, job.epoch, job.iteration_in_epoch, job.reader_epoch, job.reader_consumed)
    if shard.step != step:
        theirs = _describe_step(*shard.step[:1], *shard.step[3:])
        raise CheckpointMismatchError(
            f"{where} is at {theirs}, {reference} at {_describe_step(*step[:1], *step[3:])}: take every shard's "
            "checkpoint after the same global step"
        )
    if shard.position["dataset_digest"] != first.position["dataset_digest"]:
        raise CheckpointMismatchError(f"{where} read another dataset than shard 0 (files, labels or records differ)")
    if any(shard.position.get(key) != first.position.get(key) for key in _EDITED_KEYS):
        raise CheckpointMismatchError(
            f"{where}: its reader's excluded samples or pending skip differ from shard 0's; edit the job checkpoint "
            "(pipestate.checkpoint.edit), which changes every shard alike"
        )


@dataclasses.dataclass(frozen=True)
class _Checked:
    """A validated job: shard 0 decoded, a template for any place in a layout, and the shards whose
    checkpoints are not shard 0's re-issued for their place (their other states differ), decoded."""

    data: ckpt.JobData
    first: _Shard
    template: ckpt.ShardTemplate
    differing: dict[int, _Shard]


def _validate(job: ckpt.JobData, reference: str, decoded: dict[int, _Shard] | None = None) -> _Checked:
    """Check that every shard of ``job`` is present and belongs to it (see :func:`_check_shard`).

    A shard whose bytes are exactly shard 0's checkpoint re-issued for its place is valid without being
    decoded (the common case: only the layout differs); any other is decoded and checked field by field.

    Raises:
        CorruptCheckpointError, CheckpointMismatchError: naming the first shard that does not belong.
    """
    decoded = decoded or {}
    g, m = job.global_batch_size, job.num_shards
    if m < 1 or not m <= g <= _MAX_BATCH:
        raise CorruptCheckpointError(
            f"the job checkpoint's layout ({m} shards, global batch {g}) is not one a job runs with"
        )
    if len(job.shards) != m:
        missing = list(range(len(job.shards), m))
        raise CheckpointMismatchError(
            f"the job checkpoint holds {len(job.shards)} shard checkpoints for {m} shards: "
            + (f"shard(s) {', '.join(map(str, missing))} missing" if missing else f"{len(job.shards) - m} too many")
        )
    first = decoded.get(0) or _shard(job.shards[0], "shard 0")
    _check_shard(job, 0, first, first, reference)
    template = ckpt.ShardTemplate(first.blob, first.reader)
    differing = {}
    for k in range(1, m):
        blob = job.shards[k]
        if blob == template.checkpoint(local_batch_size(g, m, k), _layout(g, m, k)):
            continue
        shard = decoded.get(k) or _shard(blob, f"shard {k}")
        _check_shard(job, k, shard, first, reference)
        differing[k] = shard
    return _Checked(job, first, template, differing)


# ---- combine, read, split --------------------------------------------------------------------------------
def combine(checkpoints: Sequence[bytes]) -> bytes:
    """Combine the checkpoints of every shard of an elastic job into one job checkpoint.

    Args:
        checkpoints: One checkpoint per shard (``Pipeline.checkpoint()`` of each shard's pipeline, in any
            order), all taken after the same global step.

    Returns:
        The job checkpoint: a manifest (layout, global position, fingerprint) and the shards' checkpoints,
        a few hundred bytes per shard.

    Raises:
        ValueError: ``checkpoints`` is empty.
        CorruptCheckpointError: a checkpoint is damaged (naming it).
        CheckpointMismatchError: a shard is missing, present twice, from another layout, another pipeline
            or dataset, or at another global step (naming the shard).
    """
    if isinstance(checkpoints, (bytes, bytearray)) or not checkpoints:
        raise ValueError("combine() takes a list of the shards' checkpoints (one bytes object per shard)")
    decoded = {0: _shard(checkpoints[0], "checkpoint 0")}
    g, m, _ = decoded[0].layout
    by_id: dict[int, int] = {}
    for i, blob in enumerate(checkpoints):
        layout = ckpt.peek_layout(blob, decoded[0].reader)  # cheap; decoded in full only when unusual
        if layout is None or set(layout) != LAYOUT_KEYS:
            decoded[i] = decoded.get(i) or _shard(blob, f"checkpoint {i}")
            layout = decoded[i].position["layout"]
        sg, sm, k = layout["global_batch_size"], layout["num_shards"], layout["shard_id"]
        if (sg, sm) != (g, m):
            raise CheckpointMismatchError(
                f"checkpoint {i} is shard {k} of {sm} with a global batch of {sg}; checkpoint 0 is from a layout of "
                f"{m} shards with a global batch of {g}: the checkpoints come from different jobs"
            )
        if k in by_id:
            raise CheckpointMismatchError(f"shard {k} appears twice (checkpoints {by_id[k]} and {i})")
        by_id[k] = i
    missing = [k for k in range(m) if k not in by_id]
    if missing:
        raise CheckpointMismatchError(
            f"shard(s) {', '.join(map(str, missing))} of {m} missing: combine() needs the checkpoint of every shard"
        )
    first = decoded.get(by_id[0]) or _shard(checkpoints[by_id[0]], f"checkpoint {by_id[0]}")
    iteration, epoch, iteration_in_epoch, reader_epoch, reader_consumed = first.step
    job = ckpt.JobData(
        library_version=_version(),
        fingerprint=first.data.fingerprint,
        num_shards=m,
        global_batch_size=g,
        iteration=iteration,
        epoch=epoch,
        iteration_in_epoch=iteration_in_epoch,
        reader=first.data.operators[first.reader].name,
        reader_epoch=reader_epoch,
        reader_consumed=reader_consumed,
        shards=tuple(bytes(checkpoints[by_id[k]]) for k in range(m)),
    )
    _validate(job, "shard 0", {k: decoded[i] for k, i in by_id.items() if i in decoded} | {0: first})
    return ckpt.encode_job(job)


def _read(job: bytes) -> _Checked:
    return _validate(ckpt.decode_job(job), "the job's manifest")


def read_job(job: bytes) -> ckpt.JobData:
    """Parse and validate a job checkpoint from :func:`combine`.

    Raises:
        CorruptCheckpointError, UnsupportedCheckpointVersionError: the bytes are not an intact job
            checkpoint, or a shard's checkpoint is damaged (naming the shard).
        CheckpointMismatchError: a shard is missing or inconsistent with the manifest (naming the shard).
    """
    return _read(job).data


class _Splitter:
    """Prepared once per job checkpoint and new layout: gives any new shard its checkpoint."""

    def __init__(self, job: bytes, num_shards: int, global_batch_size: int | None) -> None:
        checked = _read(job)
        data = checked.data
        g = data.global_batch_size if global_batch_size is None else global_batch_size
        _check_layout(g, num_shards)
        self.checked, self.num_shards, self.global_batch_size = checked, num_shards, g
        self.same_layout = (g, num_shards) == (data.global_batch_size, data.num_shards)
        if not self.same_layout:
            first = checked.first
            for shard in checked.differing.values():
                for i, (mine, theirs) in enumerate(zip(first.data.operators, shard.data.operators)):
                    if i != first.reader and mine.state != theirs.state:
                        raise CheckpointMismatchError(
                            f"operator {mine.name!r} ({mine.type}) has a different state on each shard; only states "
                            "equal on every shard (and the elastic reader's) move to another layout"
                        )
                if shard.data.iterator_data != first.data.iterator_data:
                    raise CheckpointMismatchError(
                        "the shards' framework iterator states (iterator_data) differ; they cannot move to another "
                        "layout"
                    )

    def checkpoint(self, shard_id: int) -> bytes:
        """The checkpoint of new shard ``shard_id``."""
        g, m = self.global_batch_size, self.num_shards
        _check_layout(g, m, shard_id)
        if self.same_layout:
            return self.checked.data.shards[shard_id]
        return self.checked.template.checkpoint(local_batch_size(g, m, shard_id), _layout(g, m, shard_id))


def shard_checkpoint(job: bytes, shard_id: int, num_shards: int, global_batch_size: int | None = None) -> bytes:
    """Return the checkpoint of shard ``shard_id`` of ``num_shards`` resuming the job of ``job``.

    Construct that shard's pipeline with it (``checkpoint=``, or ``Pipeline.restore``), with the reader's
    ``shard_id``, ``num_shards`` and ``global_batch_size`` and the pipeline's ``batch_size`` of the new
    layout (:func:`local_batch_size`); everything else as before, seed included.

    Args:
        job: A job checkpoint from :func:`combine`.
        shard_id: The new shard.
        num_shards: Shards of the new layout (smaller, equal or larger than the job's).
        global_batch_size: The new global batch size; ``None``: the job's.

    Raises:
        TypeError, ValueError: an invalid layout.
        CorruptCheckpointError, CheckpointMismatchError: as :func:`read_job`; also when the layout changes
            and an operator other than the elastic reader (or a framework iterator) holds different states on
            different shards (naming it).
    """
    return _Splitter(job, num_shards, global_batch_size).checkpoint(shard_id)


def split(job: bytes, num_shards: int, global_batch_size: int | None = None) -> list[bytes]:
    """Return the checkpoints of every shard of a new layout: ``[shard_checkpoint(job, k, num_shards,
    global_batch_size) for k in range(num_shards)]``, validating the job once.

    Raises:
        As :func:`shard_checkpoint`.
    """
    splitter = _Splitter(job, num_shards, global_batch_size)
    return [splitter.checkpoint(k) for k in range(num_shards)]


def _version() -> str:
    from pipestate import __version__

    return __version__


# ---- torch.distributed -----------------------------------------------------------------------------------
def to_tensor(data: bytes) -> Any:
    """Return bytes (a job checkpoint) as a 1-D ``torch.uint8`` tensor, e.g. for a ``torch.distributed.checkpoint``
    state dict (tensors are stored as raw bytes, never pickled)."""
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def from_tensor(tensor: Any) -> bytes:
    """Return the bytes held by a 1-D ``torch.uint8`` tensor (:func:`to_tensor`'s inverse)."""
    return tensor.detach().cpu().numpy().tobytes()


def _framed(data: bytes, length: int) -> Any:
    """``data`` behind its length (8 bytes, little-endian), zero-padded to ``8 + length`` bytes."""
    import torch

    out = torch.zeros(8 + length, dtype=torch.uint8)
    out[: 8 + len(data)] = to_tensor(len(data).to_bytes(8, "little") + data)
    return out


def _unframed(tensor: Any) -> bytes:
    raw = from_tensor(tensor)
    return raw[8 : 8 + int.from_bytes(raw[:8], "little")]


def gather(checkpoint: bytes, *, dst: int = 0, group: Any = None) -> bytes | None:
    """Collective over ``torch.distributed``: every rank passes its shard's checkpoint; rank ``dst``
    returns the job checkpoint (:func:`combine`), the others ``None``.

    Args:
        checkpoint: This rank's ``Pipeline.checkpoint()``.
        dst: The rank (global, as in ``torch.distributed.gather``) that receives the job checkpoint.
        group: The process group (default: the whole world).

    Raises:
        CheckpointError: on ``dst``, as :func:`combine`.
    """
    import torch
    import torch.distributed as dist

    longest = torch.tensor([len(checkpoint)], dtype=torch.int64)
    dist.all_reduce(longest, op=dist.ReduceOp.MAX, group=group)
    frame = _framed(bytes(checkpoint), int(longest))
    receiving = dist.get_rank() == dst
    frames = [torch.empty_like(frame) for _ in range(dist.get_world_size(group))] if receiving else None
    dist.gather(frame, frames, dst=dst, group=group)
    return combine([_unframed(f) for f in frames]) if receiving else None


def scatter(job: bytes | None, *, global_batch_size: int | None = None, src: int = 0, group: Any = None) -> bytes:
    """Collective over ``torch.distributed``: rank ``src`` passes the job checkpoint (the others ``None``);
    every rank returns its checkpoint as shard ``rank`` of ``world size`` (in ``group``).

    Args:
        job: The job checkpoint on ``src``; ignored elsewhere.
        global_batch_size: The new global batch size; ``None``: the job's.
        src: The rank (global) holding the job checkpoint.
        group: The process group (default: the whole world).

    Raises:
        CheckpointError: on ``src``, as :func:`split`; on the other ranks, a ``CheckpointError`` saying that
            ``src`` refused the job checkpoint (every rank raises: none waits forever).
    """
    import torch
    import torch.distributed as dist

    sending = dist.get_rank() == src
    parts, error = None, None
    if sending:
        try:
            parts = split(job, dist.get_world_size(group), global_batch_size)
        except Exception as exc:  # every rank must learn that there is nothing to receive
            error = exc
    longest = torch.tensor([max(map(len, parts)) if parts else -1], dtype=torch.int64)
    dist.broadcast(longest, src=src, group=group)
    if int(longest) < 0:
        if error is not None:
            raise error
        raise CheckpointError(f"rank {src} could not give the shards their checkpoints (its error says why)")
    received = torch.empty(8 + int(longest), dtype=torch.uint8)
    frames = [_framed(p, int(longest)) for p in parts] if sending else None
    dist.scatter(received, frames, src=src, group=group)
    return _unframed(received)


def load_from_dcp(
    checkpoint_id: Any = None, *, key: str = "pipestate", storage_reader: Any = None, process_group: Any = None
) -> bytes:
    """Load bytes saved in a ``torch.distributed.checkpoint`` as ``state_dict[key] = to_tensor(job)``.

    The tensor's length is read from the checkpoint's metadata, so the job checkpoint of any number of
    shards loads on any number of ranks (every rank loads it; then :func:`shard_checkpoint` gives each its own).

    Args:
        checkpoint_id: The checkpoint (a directory for the file system), as for ``torch.distributed.checkpoint.load``.
        key: The state dict key the bytes were saved under.
        storage_reader: A ``StorageReader`` instead of ``checkpoint_id``.
        process_group: As for ``torch.distributed.checkpoint.load``.

    Raises:
        KeyError: the checkpoint has no entry ``key``.
    """
    import torch
    import torch.distributed.checkpoint as dcp

    reader = storage_reader if storage_reader is not None else dcp.FileSystemReader(checkpoint_id)
    entries = reader.read_metadata().state_dict_metadata
    if key not in entries:
        raise KeyError(f"the checkpoint has no entry {key!r}; it has: {', '.join(sorted(entries))}")
    buffer = torch.empty(tuple(entries[key].size), dtype=torch.uint8)
    dcp.load({key: buffer}, storage_reader=reader, process_group=process_group)
    return from_tensor(buffer)
