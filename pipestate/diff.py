"""What differs between two checkpoints, or between a checkpoint and a pipeline (``pipestate diff``).

:func:`diff` compares the format, the pipeline's identity (fingerprint, batch size, seed), the position,
and operator by operator the identity (type, which arguments changed, inputs) and the state. A checkpoint
stores a digest of each non-default argument, not its value: for a checkpoint, an argument shows as set
or default; for a pipeline, with its value. Compared with a pipeline, a checkpoint is *equal* when it
restores into it as it is (its position and states are shown, not compared), and the result says what a
``partial_restore=True`` restore would do.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from typing import Any

from pipestate import checkpoint as ckpt
from pipestate.errors import CheckpointError
from pipestate.graph import canonical

__all__ = ["Difference", "command", "diff", "load"]

_FIELDS = ("format_version", "fingerprint", "batch_size", "seed", "iteration", "epoch", "iteration_in_epoch")


@dataclasses.dataclass(frozen=True)
class _Side:
    """One side of a comparison: a decoded checkpoint, or a pipeline's identity (``data`` without state)."""

    source: str
    kind: str  # "checkpoint" or "pipeline"
    data: ckpt.CheckpointData
    size: int = 0
    target: Any = None  # a pipeline's restore target
    ops: dict = dataclasses.field(default_factory=dict)  # a pipeline's operators by name


@dataclasses.dataclass(frozen=True)
class Difference:
    """The result of :func:`diff`.

    Attributes:
        equal: Nothing differs (for a checkpoint and a pipeline: the checkpoint restores into it as it is).
        report: The comparison as plain data (what ``pipestate diff --json`` prints): ``a`` and ``b``
            (source, kind, format version, writer), ``fields`` (each differing field with its two values),
            ``operators`` (each operator that differs: ``only_in``, ``type``, ``arguments``, ``inputs``,
            ``state``), and with a pipeline ``restore`` (``strict`` and ``partial``: ``ok`` with the
            error, or the operators restored, started fresh and dropped).
    """

    equal: bool
    report: dict

    def __str__(self) -> str:
        return _text(self.report)


def load(spec: str | os.PathLike) -> bytes | Any:
    """Read a checkpoint file, or make the pipeline ``"module:function"`` names (the function is called
    without arguments and returns a :class:`~pipestate.Pipeline`, e.g. a ``@pipeline_def`` function).

    Raises:
        OSError: the file cannot be read. ImportError, AttributeError: no such module or function.
        TypeError: the function does not return a pipeline.
    """
    spec = os.fspath(spec)
    if os.path.exists(spec) or ":" not in spec:
        with open(spec, "rb") as f:
            return f.read()
    module_name, _, name = spec.rpartition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj = getattr(importlib.import_module(module_name), name)
    from pipestate.pipeline import Pipeline

    pipe = obj if isinstance(obj, Pipeline) else obj()
    if not isinstance(pipe, Pipeline):
        raise TypeError(f"{spec} returned {type(pipe).__name__}, not a Pipeline")
    return pipe


def diff(a: bytes | Any, b: bytes | Any, names: tuple[str, str] = ("a", "b")) -> Difference:
    """Compare two checkpoints, or a checkpoint and a pipeline (either order).

    Args:
        a, b: Checkpoint bytes or a :class:`~pipestate.Pipeline` (at most one pipeline).
        names: How to call the two sides in the report (e.g. their file names).

    Returns:
        The :class:`Difference`.

    Raises:
        CorruptCheckpointError, UnsupportedCheckpointVersionError: a checkpoint cannot be read.
        TypeError: two pipelines, or something else than bytes and pipelines.
    """
    first, second = _side(a, names[0]), _side(b, names[1])
    if first.kind == second.kind == "pipeline":
        raise TypeError("diff() compares two checkpoints or a checkpoint and a pipeline, not two pipelines")
    if second.kind == "checkpoint" and first.kind == "pipeline":
        first = _side(a, names[0], seed=second.data.seed)
    elif first.kind == "checkpoint" and second.kind == "pipeline":
        second = _side(b, names[1], seed=first.data.seed)
    with_pipeline = "pipeline" in (first.kind, second.kind)
    fields = _fields(first, second, with_pipeline)
    operators = _operators(first, second, with_pipeline)
    report = {"a": _describe(first), "b": _describe(second), "fields": fields, "operators": operators}
    if with_pipeline:
        cpt, pipe = (first, second) if second.kind == "pipeline" else (second, first)
        report["restore"] = _restore(cpt, pipe)
        equal = report["restore"]["strict"]["ok"]
    else:
        equal = not fields and not operators
    report["equal"] = equal
    return Difference(equal, report)


def command(a: str, b: str, as_json: bool = False) -> int:
    """``pipestate diff A B [--json]``: print what differs; return the exit status.

    Args:
        a: A checkpoint file.
        b: A checkpoint file, or ``module:function`` making a pipeline.
        as_json: Print :attr:`Difference.report` as JSON instead of text.

    Returns:
        0 when equal, 1 when different, 2 when a side cannot be read or made (the reason on stderr).
    """
    import json

    try:
        result = diff(load(a), load(b), (a, b))
    except (OSError, CheckpointError, ImportError, AttributeError, TypeError, ValueError) as exc:
        sys.stderr.write(f"pipestate diff: {type(exc).__name__}: {exc}\n")
        return 2
    sys.stdout.write((json.dumps(result.report, indent=2) if as_json else str(result)) + "\n")
    return 0 if result.equal else 1


# ---- the two sides ----------------------------------------------------------------------------------------
def _side(value: Any, source: str, seed: int | None = None) -> _Side:
    if isinstance(value, (bytes, bytearray, memoryview)):
        blob = bytes(value)
        return _Side(source, "checkpoint", ckpt.decode(blob), len(blob))
    from pipestate.pipeline import Pipeline

    if not isinstance(value, Pipeline):
        raise TypeError(f"diff() takes checkpoint bytes or a Pipeline, not {type(value).__name__}")
    target = value._diff_target()
    data = target.identity(target.seed if target.seed is not None else (seed if seed is not None else value.seed))
    return _Side(source, "pipeline", data, target=target, ops={op.name: op for op in target.ops})


def _describe(side: _Side) -> dict:
    out = {"source": side.source, "kind": side.kind}
    if side.kind == "checkpoint":
        out.update(format_version=side.data.format_version, library_version=side.data.library_version, size=side.size)
    else:
        out["seed"] = "given" if side.target.seed is not None else "none (a restore adopts the checkpoint's)"
    return out


def _fields(a: _Side, b: _Side, with_pipeline: bool) -> dict:
    names = ("fingerprint", "batch_size", "seed") if with_pipeline else _FIELDS + ("iterator_data",)
    out = {}
    for name in names:
        x, y = getattr(a.data, name), getattr(b.data, name)
        if x != y:
            out[name] = {"a": _plain(x), "b": _plain(y)}
    return out


def _operators(a: _Side, b: _Side, with_pipeline: bool) -> list[dict]:
    ours = {r.name: r for r in a.data.operators}
    theirs = {r.name: r for r in b.data.operators}
    comparable = a.data.format_version == b.data.format_version == ckpt.FORMAT_VERSION
    out = []
    for name in [*ours, *(n for n in theirs if n not in ours)]:
        x, y = ours.get(name), theirs.get(name)
        if x is None or y is None:
            record = x or y
            out.append({"name": name, "type": record.type, "only_in": "a" if y is None else "b"})
            continue
        entry: dict[str, Any] = {"name": name, "type": x.type}
        if x.type != y.type:
            entry["types"] = {"a": x.type, "b": y.type}
        elif comparable and x.digest != y.digest:
            arguments = _arguments(x, y, a.ops.get(name), b.ops.get(name))
            entry["arguments"] = arguments
            if not arguments:
                entry["inputs"] = "wired differently"
        elif not comparable and x.digest != y.digest and not with_pipeline:  # with a pipeline: see "restore"
            entry["identity"] = "differs (format versions differ: the arguments are not comparable)"
        if not with_pipeline and (x.has_state or y.has_state):
            state = _state_diff(x.state if x.has_state else None, y.state if y.has_state else None, "")
            if state:
                entry["state"] = state
        if len(entry) > 2:
            out.append(entry)
    return out


def _arguments(x: ckpt.OperatorRecord, y: ckpt.OperatorRecord, op_a: Any, op_b: Any) -> dict:
    da, db = dict(x.arg_digests), dict(y.arg_digests)
    return {
        k: {"a": _argument(k, k in da, op_a), "b": _argument(k, k in db, op_b)}
        for k in sorted(set(da) | set(db))
        if da.get(k) != db.get(k)
    }


def _argument(name: str, is_set: bool, op: Any) -> dict:
    """An argument on one side: set or default, and with a pipeline its value."""
    out: dict[str, Any] = {"set": is_set}
    if op is not None:
        value = op.args.get(name) if is_set else next((arg.default for arg in op.SCHEMA if arg.name == name), None)
        out["value"] = _value(value)
    return out


def _value(value: Any) -> Any:
    """An argument's value as JSON data (numbers as numbers; objects and callables by name)."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return canonical(value)


def _state_diff(x: Any, y: Any, path: str) -> dict:
    if isinstance(x, dict) and isinstance(y, dict):
        out = {}
        for key in sorted(set(x) | set(y)):
            where = f"{path}.{key}" if path else key
            if key not in x or key not in y:  # a side without the key has no entry
                out[where] = {side: _plain(d[key]) for side, d in (("a", x), ("b", y)) if key in d}
            else:
                out.update(_state_diff(x[key], y[key], where))
        return out
    if x != y or type(x) is not type(y):
        return {path or "state": {"a": _plain(x), "b": _plain(y)}}
    return {}


def _restore(cpt: _Side, pipe: _Side) -> dict:
    out = {}
    for mode, partial in (("strict", False), ("partial", True)):
        try:
            restored = ckpt.resolve(cpt.data, pipe.target, partial=partial)
        except CheckpointError as exc:
            out[mode] = {"ok": False, "error": str(exc)}
            continue
        report = restored.report
        out[mode] = {
            "ok": True,
            "restored": list(report.restored),
            "reset": list(report.reset),
            "added": list(report.added),
            "removed": list(report.removed),
            "changed_arguments": {k: list(v) for k, v in report.changed_arguments.items()},
            "outputs_changed": report.outputs_changed,
        }
    return out


def _plain(value: Any) -> Any:
    """A value as JSON data: bytes as hex (``fingerprint``) or ``{"hex": ...}``, format-1 states as text."""
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


# ---- text ---------------------------------------------------------------------------------------------------
def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, dict) and set(value) == {"hex"}:
        text = value["hex"]
    elif isinstance(value, str):
        text = value
    else:
        text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _text(report: dict) -> str:
    lines = []
    for key in ("a", "b"):
        side = report[key]
        if side["kind"] == "checkpoint":
            version, writer = side["format_version"], side["library_version"]
            what = f"checkpoint, format {version}, pipestate {writer}, {side['size']} bytes"
        else:
            what = f"pipeline, seed {side['seed']}"
        lines.append(f"{key}: {side['source']} ({what})")
    for name, values in report["fields"].items():
        lines.append(f"  {name}: {_values(values)}")
    for op in report["operators"]:
        head = f"  operator {op['name']} ({op['type']})"
        if "only_in" in op:
            lines.append(f"{head}: only in {op['only_in']}")
            continue
        lines.append(f"{head}:")
        if "types" in op:
            lines.append(f"      type: {op['types']['a']} -> {op['types']['b']}")
        if "identity" in op:
            lines.append(f"      identity {op['identity']}")
        if "inputs" in op:
            lines.append(f"      inputs {op['inputs']}")
        for name, sides in op.get("arguments", {}).items():
            lines.append(f"      argument {name}: {_argument_text(sides['a'])} -> {_argument_text(sides['b'])}")
        for path, values in op.get("state", {}).items():
            lines.append(f"      state {path}: {_values(values)}")
    restore = report.get("restore")
    if restore is not None:
        strict, partial = restore["strict"], restore["partial"]
        lines.append("  restore: " + ("restores as it is" if strict["ok"] else "refused (all or nothing)"))
        if not strict["ok"] and partial["ok"]:
            fresh = [*partial["reset"], *partial["added"]]
            lines.append(
                f"  partial_restore=True: restores {', '.join(partial['restored']) or 'no stateful operator'}; "
                f"starts fresh {', '.join(fresh) or 'nothing'}"
                + (f"; drops {', '.join(partial['removed'])}" if partial["removed"] else "")
            )
        elif not partial["ok"]:
            reasons = [line.strip()[2:] for line in partial["error"].splitlines() if line.strip().startswith("- ")]
            lines.append("  partial_restore=True: refused: " + ("; ".join(reasons[:-1]) or partial["error"]))
    lines.append("equal" if report["equal"] else "different")
    return "\n".join(lines)


def _values(values: dict) -> str:
    return " -> ".join(_short(values[side]) if side in values else "(none)" for side in ("a", "b"))


def _argument_text(side: dict) -> str:
    if "value" in side:
        return f"{_short(side['value'], 40)}{'' if side['set'] else ' (default)'}"
    return "set (value not stored)" if side["set"] else "default"
