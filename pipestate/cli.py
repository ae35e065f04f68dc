"""The ``pipestate`` command.

- ``pipestate --version``
- ``pipestate demo``: run, checkpoint, restore and verify on a generated dataset.
- ``pipestate inspect PATH [--json]``: what a checkpoint holds: a pipestate checkpoint (operators' states,
  the framework iterator's counters), a job checkpoint (its layout and position), a Checkpointer step
  file (its parts), a Lightning ``.ckpt`` (the pipestate checkpoints inside), or a directory (its
  checkpoints: step, size, valid or damaged).
- ``pipestate verify PATH``: exit status 0 when the checkpoint (every checkpoint of a directory) is
  intact, 1 otherwise.
- ``pipestate diff A B [--json]``: what differs between two checkpoints, or a checkpoint and a pipeline
  (:mod:`pipestate.diff`).
- ``pipestate skip``/``exclude CHECKPOINT OUTPUT ...``: edit where a checkpoint resumes
  (:mod:`pipestate.checkpoint.edit`).
- ``pipestate tfrecord2idx FILE INDEX``: write a TFRecord file's index.
- ``pipestate wds2idx ARCHIVE [INDEX]``: write a webdataset tar's index.

Nothing is unpickled: Lightning checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from pipestate import checkpoint as ckpt
from pipestate.errors import CheckpointError, CorruptCheckpointError
from pipestate.io.local import is_temp_name, read_checkpoint_file
from pipestate.io.step import decode_step, is_step

_STEP_NAME = re.compile(r"^(?P<prefix>.+)-(?P<step>\d{12,})\.pscpt$")
_LIGHTNING_STEP = re.compile(r"step=(?P<step>\d+)")
_ENVELOPE_START = b"\x0d" + ckpt.MAGIC.to_bytes(4, "little")
_JOB_START = b"\x0d" + ckpt.JOB_MAGIC.to_bytes(4, "little")
_POLICIES = ("FILL", "DROP", "PARTIAL")  # LastBatchPolicy values (the CLI does not import the plugins)


# ---- reading what a path holds --------------------------------------------------------------------------------
def checkpoint_info(blob: bytes) -> dict[str, Any]:
    """Describe pipestate checkpoint bytes as plain data (what ``inspect --json`` prints for one).

    Args:
        blob: The checkpoint bytes.

    Returns:
        Format version, writer, fingerprint, batch size, seed, counters, every operator (state as JSON
        data; bytes as ``{"hex": ...}``) and the framework iterator's counters (``None`` without one).

    Raises:
        CorruptCheckpointError, UnsupportedCheckpointVersionError: the bytes cannot be read.
    """
    data = ckpt.decode(blob)
    iterator = None
    if data.iterator_data:
        try:
            iterator = json.loads(data.iterator_data)
        except ValueError:
            iterator = {"unreadable": data.iterator_data[:200]}
    return {
        "kind": "checkpoint",
        "size": len(blob),
        "format_version": data.format_version,
        "library_version": data.library_version,
        "fingerprint": data.fingerprint.hex(),
        "batch_size": data.batch_size,
        "seed": data.seed,
        "iteration": data.iteration,
        "epoch": data.epoch,
        "iteration_in_epoch": data.iteration_in_epoch,
        "operators": [
            {"name": op.name, "type": op.type, "digest": f"{op.digest:016x}", "stateful": op.has_state,
             "state": _plain(op.state)}
            for op in data.operators
        ],
        "iterator": iterator,
    }


def step_info(blob: bytes) -> dict[str, Any]:
    """Describe a Checkpointer step file as plain data: its step and every part (pipestate checkpoints
    described by :func:`checkpoint_info`, plain data shown, other parts by kind and size).

    Raises:
        CorruptCheckpointError: the step file is damaged.
    """
    step = decode_step(blob)
    parts = []
    for part in step.parts:
        entry: dict[str, Any] = {"name": part.name, "kind": part.kind, "size": part.size}
        if part.kind in ("pipeline", "iterator"):
            entry["checkpoints"] = [checkpoint_info(b) for b in part.blobs]
        elif part.kind == "data":
            try:
                entry["data"] = json.loads(part.blobs[0])
            except ValueError:
                entry["data"] = None
        if part.meta:
            entry["meta"] = {k: v for k, v in part.meta.items() if k != "paths"}
            if "paths" in part.meta:
                entry["arrays"] = len(part.meta["paths"])
        parts.append(entry)
    return {"kind": "step", "size": len(blob), "step": step.step, "library_version": step.library_version,
            "parts": parts}


def lightning_info(path: str) -> dict[str, Any]:
    """Describe a Lightning checkpoint: its counters and the pipestate checkpoints inside.

    Raises:
        CorruptCheckpointError: torch cannot read it safely (``weights_only=True``), or a pipestate
            checkpoint inside is damaged.
        ImportError: torch is not installed.
    """
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError ...: not readable safely
        raise CorruptCheckpointError(
            f"torch.load(weights_only=True) cannot read it ({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"a Lightning checkpoint is a dict; this holds a {type(data).__name__}")
    found = []
    for where, blob in _pipestate_blobs(data, ""):
        found.append({"path": where, **checkpoint_info(blob)})
    return {"kind": "lightning", "size": os.path.getsize(path), "epoch": data.get("epoch"),
            "global_step": data.get("global_step"), "pipestate": found}


def _pipestate_blobs(value: Any, where: str) -> list[tuple[str, bytes]]:
    if isinstance(value, (bytes, bytearray)) and bytes(value[:5]) == _ENVELOPE_START:
        return [(where, bytes(value))]
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_pipestate_blobs(v, f"{where}.{k}" if where else str(k)))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            out.extend(_pipestate_blobs(v, f"{where}[{i}]"))
    return out


def path_info(path: str) -> dict[str, Any]:
    """Describe whatever ``path`` is: a checkpoint, a step file, a Lightning checkpoint, or a directory.

    Raises:
        OSError: the path cannot be read.
        CheckpointError: a file is not an intact checkpoint.
    """
    if os.path.isdir(path):
        return directory_info(path)
    if path.endswith(".ckpt") and not _is_pipestate_file(path):
        return lightning_info(path)
    return blob_info(read_checkpoint_file(path))


def _is_pipestate_file(path: str) -> bool:
    """Whether the file starts as a pipestate checkpoint, job checkpoint or step file (any name)."""
    with open(path, "rb") as f:
        head = f.read(8)
    return head[:5] in (_ENVELOPE_START, _JOB_START) or is_step(head)


def blob_info(blob: bytes) -> dict[str, Any]:
    """Describe bytes read from a file: a checkpoint, a job checkpoint or a Checkpointer step file."""
    if bytes(blob[:5]) == _JOB_START:
        return job_info(blob)
    if is_step(blob):
        return step_info(blob)
    return checkpoint_info(blob)


def job_info(blob: bytes) -> dict[str, Any]:
    """Describe a job checkpoint (``pipestate.distributed.combine``) as plain data: its manifest, every
    shard validated.

    Raises:
        CorruptCheckpointError, CheckpointMismatchError: the job checkpoint is damaged or inconsistent.
    """
    from pipestate import distributed

    job = distributed.read_job(blob)
    return {
        "kind": "job",
        "size": len(blob),
        "format_version": ckpt.JOB_FORMAT_VERSION,
        "library_version": job.library_version,
        "fingerprint": job.fingerprint.hex(),
        "num_shards": job.num_shards,
        "global_batch_size": job.global_batch_size,
        "iteration": job.iteration,
        "epoch": job.epoch,
        "iteration_in_epoch": job.iteration_in_epoch,
        "reader": job.reader,
        "reader_epoch": job.reader_epoch,
        "reader_consumed": job.reader_consumed,
        "shard_sizes": [len(shard) for shard in job.shards],
    }


def directory_info(directory: str) -> dict[str, Any]:
    """List the checkpoints of a directory (``*.pscpt`` files and Lightning ``.ckpt`` files), each with
    its step (from its name), size and whether it is valid (damaged ones with the reason)."""
    entries = []
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if is_temp_name(name) or not os.path.isfile(full) or not name.endswith((".pscpt", ".ckpt")):
            continue
        m = _STEP_NAME.match(name) or _LIGHTNING_STEP.search(name)
        entry: dict[str, Any] = {"name": name, "step": int(m["step"]) if m else None,
                                 "size": os.path.getsize(full), "valid": True, "error": None}
        try:
            info = path_info(full)
            entry["kind"] = info["kind"]
        except ImportError as exc:
            entry.update(valid=None, error=f"cannot check: {exc}")
        except (OSError, CheckpointError) as exc:
            entry.update(valid=False, error=str(exc))
        entries.append(entry)
    entries.sort(key=lambda e: (e["step"] is None, e["step"] or 0, e["name"]))
    return {"kind": "directory", "path": directory, "checkpoints": entries}


def _plain(value: Any) -> Any:
    """Operator state as JSON data: bytes as ``{"hex": ...}``, unknown objects (format 1) as their repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):  # a named tuple: its repr
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


# ---- text -------------------------------------------------------------------------------------------------
def describe(blob: bytes) -> str:
    """Return a human-readable description of checkpoint bytes (what ``pipestate inspect`` prints).

    A job checkpoint (``pipestate.distributed``) is described by its manifest and its shards.

    Args:
        blob: A pipestate checkpoint, a job checkpoint or a Checkpointer step file.

    Returns:
        The description, one item per line.

    Raises:
        CorruptCheckpointError, UnsupportedCheckpointVersionError: if the bytes cannot be read.
    """
    return _text(blob_info(blob))


def _text(info: dict[str, Any], indent: str = "") -> str:
    kind = info["kind"]
    if kind == "checkpoint":
        return _checkpoint_text(info, indent)
    if kind == "step":
        lines = [f"{indent}Checkpointer step {info['step']}, {info['size']} bytes, {len(info['parts'])} part(s), "
                 f"written by pipestate {info['library_version']}"]
        for part in info["parts"]:
            lines.append(f"{indent}  part {part['name']!r}: {part['kind']}, {part['size']} bytes")
            for i, cpt in enumerate(part.get("checkpoints", [])):
                if len(part["checkpoints"]) > 1:
                    lines.append(f"{indent}    pipeline {i}:")
                lines.append(_checkpoint_text(cpt, indent + "    "))
            if "data" in part:
                lines.append(f"{indent}    {_short(part['data'])}")
            if "arrays" in part:
                lines.append(f"{indent}    {part['arrays']} arrays")
        return "\n".join(lines)
    if kind == "job":
        sizes = info["shard_sizes"]
        return "\n".join(
            indent + line
            for line in (
                f"pipestate job checkpoint, format version {info['format_version']}, {info['size']} bytes",
                f"  written by:    pipestate {info['library_version']}",
                f"  fingerprint:   {info['fingerprint']}",
                f"  layout:        {info['num_shards']} shards, global batch {info['global_batch_size']}",
                f"  iteration:     {info['iteration']} global steps (epoch {info['epoch']}, iteration "
                f"{info['iteration_in_epoch']} in epoch)",
                f"  position:      reader {info['reader']!r} at sample {info['reader_consumed']} of epoch "
                f"{info['reader_epoch']}",
                f"  shards:        {info['num_shards']} checkpoints of {min(sizes)}-{max(sizes)} bytes (all validated)",
            )
        )
    if kind == "lightning":
        lines = [f"{indent}Lightning checkpoint, {info['size']} bytes: epoch {info['epoch']}, global_step "
                 f"{info['global_step']}, {len(info['pipestate'])} pipestate checkpoint(s)"]
        for cpt in info["pipestate"]:
            lines.append(f"{indent}  {cpt['path']}:")
            lines.append(_checkpoint_text(cpt, indent + "    "))
        return "\n".join(lines)
    lines = [f"{indent}{info['path']}: {len(info['checkpoints'])} checkpoint(s)"]
    for e in info["checkpoints"]:
        status = "valid" if e["valid"] else ("unchecked" if e["valid"] is None else "DAMAGED")
        step = "-" if e["step"] is None else str(e["step"])
        line = f"{indent}  {step:>12}  {e['size']:>12} B  {status:9}  {e['name']}"
        if e["error"]:
            line += f"  ({_short(e['error'], 160)})"
        lines.append(line)
    return "\n".join(lines)


def _checkpoint_text(info: dict[str, Any], indent: str) -> str:
    lines = [
        f"pipestate checkpoint, format version {info['format_version']}, {info['size']} bytes",
        f"  written by:    pipestate {info['library_version']}",
        f"  fingerprint:   {info['fingerprint']}",
        f"  batch_size:    {info['batch_size']}",
        f"  seed:          {info['seed']}",
        f"  iteration:     {info['iteration']} (epoch {info['epoch']}, "
        f"iteration {info['iteration_in_epoch']} in epoch)",
    ]
    if info["iterator"] is not None:
        it = dict(info["iterator"])
        options = {k: it.pop(k) for k in ("last_batch_policy", "last_batch_padded", "pipelines") if k in it}
        if "last_batch_policy" in options:
            policy = options["last_batch_policy"]
            options["last_batch_policy"] = _POLICIES[policy] if policy in range(len(_POLICIES)) else policy
        counters = ", ".join(f"{k}={v}" for k, v in it.items() if k != "version")
        lines.append(f"  iterator:      {counters}")
        if options:
            lines.append("  iterator opts: " + ", ".join(f"{k}={v}" for k, v in options.items()))
    lines.append(f"  operators:     {len(info['operators'])}")
    for op in info["operators"]:
        text = _short(op["state"]) if op["stateful"] else "stateless"
        lines.append(f"    {op['name']} ({op['type']}) digest {op['digest']}: {text}")
    return "\n".join(indent + line for line in lines)


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# ---- commands ---------------------------------------------------------------------------------------------
def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _inspect(path: str, as_json: bool) -> int:
    try:
        info = path_info(path)
    except (OSError, CheckpointError, ImportError) as exc:
        _err(f"pipestate inspect: {path}: {exc}")
        return 1
    _out(json.dumps(info, indent=2) if as_json else _text(info))
    return 0


def _verify(path: str) -> int:
    try:
        info = path_info(path)
    except (OSError, CheckpointError, ImportError) as exc:
        _err(f"pipestate verify: {path}: DAMAGED: {exc}")
        return 1
    if info["kind"] != "directory":
        _out(f"{path}: valid ({info['kind']})")
        return 0
    entries = info["checkpoints"]
    if not entries:
        _err(f"pipestate verify: {path}: no checkpoint in this directory")
        return 1
    bad = [e for e in entries if not e["valid"]]
    _out(_text(info))
    if bad:
        _err(f"pipestate verify: {len(bad)} of {len(entries)} checkpoint(s) are damaged or could not be checked")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pipestate`` console script.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success; 1 when a checkpoint is damaged or unreadable (``inspect``,
        ``verify``) or the demo's continuation differs; 2 for wrong arguments.
    """
    from pipestate import __version__

    parser = argparse.ArgumentParser(prog="pipestate", description="Deterministic, checkpointable input pipelines.")
    parser.add_argument("--version", action="version", version=f"pipestate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run, checkpoint, restore and verify on a synthetic dataset")
    demo.add_argument("--dir", default=None, help="where to write the dataset (default: a temp directory)")
    demo.add_argument("--iterations", type=int, default=20, help="iterations before the checkpoint")
    inspect_cmd = commands.add_parser(
        "inspect", help="show what a checkpoint, a Checkpointer step, a Lightning .ckpt or a directory holds"
    )
    inspect_cmd.add_argument("path", help="a file or a directory")
    inspect_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")
    verify = commands.add_parser("verify", help="exit 0 if the checkpoint (or every one in a directory) is intact")
    verify.add_argument("path", help="a file or a directory")
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
        _out(report.text)
        return 0 if report.ok else 1
    if args.command == "verify":
        return _verify(args.path)
    return _inspect(args.path, args.json)


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
