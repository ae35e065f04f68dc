"""The ``pipestate`` command: ``pipestate demo``, ``pipestate inspect FILE``, ``pipestate diff A B``
(:mod:`pipestate.diff`), ``pipestate skip``/``exclude CHECKPOINT OUTPUT ...`` (:mod:`pipestate.checkpoint.edit`),
``pipestate tfrecord2idx FILE INDEX`` and ``pipestate wds2idx ARCHIVE [INDEX]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipestate import checkpoint as ckpt
from pipestate.errors import CheckpointError


def describe(blob: bytes) -> str:
    """Return a human-readable description of checkpoint bytes (what ``pipestate inspect`` prints).

    A job checkpoint (``pipestate.distributed``) is described by its manifest and its shards.

    Raises:
        CorruptCheckpointError, UnsupportedCheckpointVersionError: if the bytes cannot be read.
    """
    if bytes(blob[:5]) == b"\x0d" + ckpt.JOB_MAGIC.to_bytes(4, "little"):
        return _describe_job(blob)
    data = ckpt.decode(blob)
    lines = [
        f"pipestate checkpoint, format version {data.format_version}, {len(blob)} bytes",
        f"  written by:    pipestate {data.library_version}",
        f"  fingerprint:   {data.fingerprint.hex()}",
        f"  batch_size:    {data.batch_size}",
        f"  seed:          {data.seed}",
        f"  iteration:     {data.iteration} (epoch {data.epoch}, iteration {data.iteration_in_epoch} in epoch)",
        f"  operators:     {len(data.operators)}",
    ]
    for op in data.operators:
        text = _state_text(op.state) if op.has_state else "stateless"
        lines.append(f"    {op.name} ({op.type}) digest {op.digest:016x}: {text}")
    return "\n".join(lines)


def _describe_job(blob: bytes) -> str:
    from pipestate import distributed

    job = distributed.read_job(blob)
    sizes = sorted({len(shard) for shard in job.shards})
    return "\n".join(
        [
            f"pipestate job checkpoint, format version {ckpt.JOB_FORMAT_VERSION}, {len(blob)} bytes",
            f"  written by:    pipestate {job.library_version}",
            f"  fingerprint:   {job.fingerprint.hex()}",
            f"  layout:        {job.num_shards} shards, global batch {job.global_batch_size}",
            f"  iteration:     {job.iteration} global steps (epoch {job.epoch}, iteration {job.iteration_in_epoch} "
            "in epoch)",
            f"  position:      reader {job.reader!r} at sample {job.reader_consumed} of epoch {job.reader_epoch}",
            f"  shards:        {job.num_shards} checkpoints of {sizes[0]}-{sizes[-1]} bytes (all validated)",
        ]
    )


def _state_text(state: object, limit: int = 200) -> str:
    """Any operator state (plain data, or a format-1 state kind), on one line, long values shortened."""
    text = repr(state)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pipestate`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="pipestate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run, checkpoint, restore and verify on a synthetic dataset")
    demo.add_argument("--dir", default=None, help="where to write the dataset (default: a temp directory)")
    demo.add_argument("--iterations", type=int, default=20, help="iterations before the checkpoint")
    inspect_cmd = commands.add_parser("inspect", help="print a checkpoint file human-readably")
    inspect_cmd.add_argument("file")
    idx = commands.add_parser("tfrecord2idx", help="write a TFRecord file's index (DALI's tfrecord2idx format)")
    idx.add_argument("tfrecord")
    idx.add_argument("index")
    wds = commands.add_parser("wds2idx", help="write a webdataset tar's index (DALI's wds2idx format)")
    wds.add_argument("archive")
    wds.add_argument("index", nargs="?", default=None, help="default: the archive's name with .idx")
    _add_data_state_commands(commands)
    args = parser.parse_args(argv)

    if args.command == "diff":
        from pipestate.diff import command

        return command(args.a, args.b, args.json)
    if args.command == "skip":
        from pipestate.checkpoint.edit import command

        count = {k: getattr(args, k) for k in ("batches", "samples", "to_iteration") if getattr(args, k) is not None}
        return command("skip", args.checkpoint, args.output, **count)
    if args.command == "exclude":
        from pipestate.checkpoint.edit import command

        return command("exclude", args.checkpoint, args.output, indices=args.ranges, reader=args.reader)
    if args.command == "wds2idx":
        from pipestate.operators.readers._wds_index import wds2idx_main

        return wds2idx_main([args.archive] + ([args.index] if args.index else []))

    if args.command == "tfrecord2idx":
        from pipestate.tfrecord import tfrecord2idx_main

        return tfrecord2idx_main([args.tfrecord, args.index])

    if args.command == "demo":
        from pipestate.demo import run_demo

        report = run_demo(args.dir, args.iterations)
        print(report.text)  # noqa: T201 - the command's output
        return 0 if report.ok else 1
    try:
        with open(args.file, "rb") as f:
            print(describe(f.read()))  # noqa: T201 - the command's output
    except (OSError, CheckpointError) as exc:
        print(f"pipestate inspect: {args.file}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def _add_data_state_commands(commands: argparse._SubParsersAction) -> None:
    """``diff``, ``skip`` and ``exclude`` (docs/recipes.md)."""
    diff = commands.add_parser(
        "diff",
        help="what differs between two checkpoints, or a checkpoint and a pipeline (exit: 0 equal, 1 not, 2 error)",
    )
    diff.add_argument("a", help="a checkpoint file")
    diff.add_argument("b", help="a checkpoint file, or module:function returning a pipeline")
    diff.add_argument("--json", action="store_true", help="print JSON instead of text")
    skip = commands.add_parser("skip", help="write a checkpoint that resumes later, without reading what it skips")
    skip.add_argument("checkpoint")
    skip.add_argument("output", help="where to write the new checkpoint (may be the same file)")
    count = skip.add_mutually_exclusive_group(required=True)
    count.add_argument("--batches", type=int, help="batches (global steps of an elastic job) to skip")
    count.add_argument("--samples", type=int, help="samples to skip (whole batches)")
    count.add_argument("--to-iteration", type=int, help="the iteration to resume at")
    exclude = commands.add_parser("exclude", help="write a checkpoint whose readers never yield these dataset indices")
    exclude.add_argument("checkpoint")
    exclude.add_argument("output", help="where to write the new checkpoint (may be the same file)")
    exclude.add_argument("ranges", nargs="+", help="INDEX or BEGIN:END (half-open) dataset indices")
    exclude.add_argument("--reader", default=None, help="the reader's name (default: every reader)")


if __name__ == "__main__":
    sys.exit(main())
