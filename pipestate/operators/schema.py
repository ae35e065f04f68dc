"""Declarative operator arguments: one validation path with DALI's rules, an immutable config, docs.

An operator lists its arguments as :class:`Arg` values (name, kind, default, whether a per-sample
``DataNode`` may be given, whether it may be given positionally, a one-line doc). :func:`validate`
checks a call's arguments against them and returns a :class:`Config`: a read-only mapping of every
argument, the defaults filled in, values normalized (numpy scalars become Python numbers, sequences
tuples). The user's objects are never mutated. The same schema generates the ``fn.*`` docstrings and
``docs/operators.md``.

DALI's rules: a ``bool`` is not an int; numpy scalars and 0-d arrays are accepted where Python numbers
are; a scalar broadcasts to a per-axis list where the kind says so (``Floats(broadcast=True)``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pipestate.graph import DataNode
from pipestate.types import to_numpy_dtype

REQUIRED = object()  # the default of an argument that must be given


class Kind:
    """How an argument's value is checked and normalized; subclasses implement :meth:`check`."""

    text = "any value"

    def check(self, value: Any, where: str) -> Any:
        """Return the normalized value, or raise ``TypeError``/``ValueError`` whose message starts with ``where``."""
        return value


def _scalar(value: Any) -> Any:
    """numpy scalars and 0-d arrays as Python scalars; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Int(Kind):
    """An integer (not a bool), optionally bounded."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        self.text = "an int" + (" " + " and ".join(b for b in bounds if b) if any(bounds) else "")

    def check(self, value: Any, where: str) -> int:
        v = _scalar(value)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{where}={value!r} must be {self.text}")
        v = int(v)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ValueError(f"{where}={value!r} must be {self.text}")
        return v


class Float(Kind):
    """A finite real number (ints accepted), optionally bounded."""

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low, self.high = low, high
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        self.text = "a finite number" + (" " + " and ".join(b for b in bounds if b) if any(bounds) else "")

    def check(self, value: Any, where: str) -> float:
        v = _scalar(value)
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{where}={value!r} must be {self.text}")
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"{where}={value!r} must be {self.text}")
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ValueError(f"{where}={value!r} must be {self.text}")
        return v


class Bool(Kind):
    """``True`` or ``False`` (numpy bools accepted; ints are not)."""

    text = "True or False"

    def check(self, value: Any, where: str) -> bool:
        v = _scalar(value)
        if not isinstance(v, bool):
            raise TypeError(f"{where}={value!r} must be True or False")
        return v


class Str(Kind):
    """A string, optionally one of ``choices``."""

    def __init__(self, choices: Sequence[str] | None = None) -> None:
        self.choices = tuple(choices) if choices else None
        self.text = f"one of {list(self.choices)}" if self.choices else "a string"

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or (self.choices and value not in self.choices):
            raise (ValueError if isinstance(value, str) else TypeError)(f"{where}={value!r} must be {self.text}")
        return value


class Path(Kind):
    """A file system path (``str`` or ``os.PathLike``), returned as ``str``."""

    text = "a path"

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise TypeError(f"{where}={value!r} must be a path")
        return os.fspath(value)


class Seq(Kind):
    """A list or tuple of values of one kind (a numpy array is accepted), returned as a tuple.

    Args:
        of: The kind of each element.
        length: Required length, if any.
        min_length: Minimum length.
        broadcast: A single value stands for a list of ``length`` copies (DALI's per-axis scalars); with
            no ``length``, for a list of one.
    """

    def __init__(self, of: Kind, length: int | None = None, min_length: int = 0, broadcast: bool = False) -> None:
        self.of, self.length, self.min_length, self.broadcast = of, length, min_length, broadcast
        size = f"{length} " if length is not None else ""
        self.text = f"a list of {size}values, each {of.text}" + (" (or one value for all)" if broadcast else "")

    def check(self, value: Any, where: str) -> tuple:
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            textual = isinstance(value, (str, bytes, os.PathLike))
            if self.broadcast and not isinstance(value, dict) and (not textual or isinstance(self.of, (Str, Path))):
                item = self.of.check(value, where)
                return (item,) * (self.length or 1)
            raise TypeError(f"{where}={value!r} must be {self.text}")
        if self.length is not None and len(value) != self.length:
            raise ValueError(f"{where}={value!r} must have {self.length} values, not {len(value)}")
        if len(value) < self.min_length:
            raise ValueError(f"{where}={value!r} must have at least {self.min_length} value(s)")
        return tuple(self.of.check(v, f"{where}[{i}]") for i, v in enumerate(value))


class DType(Kind):
    """An element type: ``types.DALIDataType``, a numpy dtype or scalar type; returned as ``numpy.dtype``."""

    text = "a data type (types.FLOAT, types.INT32, numpy.float32, ...)"

    def check(self, value: Any, where: str) -> np.dtype:
        try:
            return to_numpy_dtype(value)
        except (TypeError, ValueError, KeyError):
            raise TypeError(f"{where}={value!r} must be {self.text}") from None


class Function(Kind):
    """A callable."""

    text = "a callable"

    def check(self, value: Any, where: str) -> Any:
        if not callable(value):
            raise TypeError(f"{where}={value!r} must be {self.text}")
        return value


class Either(Kind):
    """The first of several kinds that accepts the value."""

    def __init__(self, *kinds: Kind) -> None:
        self.kinds = kinds
        self.text = " or ".join(k.text for k in kinds)

    def check(self, value: Any, where: str) -> Any:
        for kind in self.kinds:
            try:
                return kind.check(value, where)
            except (TypeError, ValueError):
                continue
        raise (TypeError if not isinstance(value, numbers.Number) else ValueError)(
            f"{where}={value!r} must be {self.text}"
        )


class Anything(Kind):
    """Any value, described by ``text`` (the operator checks it in ``validate``)."""

    def __init__(self, text: str = "any value") -> None:
        self.text = text


@dataclasses.dataclass(frozen=True)
class Arg:
    """One operator argument.

    Attributes:
        name: The keyword.
        kind: How the value is checked and normalized.
        default: The value when not given (:data:`REQUIRED`: must be given). ``None`` means "not set"
            and is always accepted.
        doc: One line for the docstring and the reference.
        tensor: A ``DataNode`` may be given, for a value per sample.
        positional: May be given as a non-DataNode positional argument (after the inputs), in
            declaration order.
    """

    name: str
    kind: Kind
    default: Any
    doc: str
    tensor: bool = False
    positional: bool = False


class Config(Mapping):
    """The validated arguments of one operator: read-only, every argument present."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"


# Arguments every operator accepts, as in DALI.
COMMON = (
    Arg(
        "seed",
        Int(-1, 2**63 - 1),
        -1,
        "Random seed of this operator; -1 derives it from the pipeline seed and the operator name.",
    ),
    Arg(
        "device",
        Str(("cpu", "gpu", "mixed")),
        "cpu",
        "Where the operator runs; pipestate runs every operator on the CPU.",
    ),
    Arg("preserve", Bool(), False, "Accepted for DALI compatibility (pipestate never prunes operators)."),
)
COMMON_NAMES = frozenset(a.name for a in COMMON)


def validate(op_type: str, schema: Sequence[Arg], kwargs: dict[str, Any]) -> Config:
    """Check ``kwargs`` against ``schema`` and return the config (defaults filled in, values normalized).

    Raises:
        TypeError: an unknown argument, a DataNode where a constant is required, a value of the wrong
            type, or a missing required argument (each message names the argument).
        ValueError: a value out of range.
    """
    by_name = {a.name: a for a in schema}
    unknown = sorted(set(kwargs) - set(by_name))
    if unknown:
        raise TypeError(
            f"fn.{op_type}() got unexpected argument(s) {', '.join(unknown)}; "
            f"valid arguments: {', '.join(sorted(by_name))}, name"
        )
    values = {}
    for arg in schema:
        where = f"fn.{op_type}(): {arg.name}"
        value = kwargs.get(arg.name, arg.default)
        if value is REQUIRED or (value is None and arg.default is REQUIRED):
            raise TypeError(f"fn.{op_type}() needs {arg.name}= ({arg.doc})")
        if isinstance(value, DataNode):
            if not arg.tensor:
                raise TypeError(f"{where} must be a constant, not a DataNode (it cannot vary per sample)")
        elif value is not None:
            value = arg.kind.check(value, where)
        values[arg.name] = value
    if values.get("device", "cpu") != "cpu":
        raise ValueError(
            f"fn.{op_type}(): device={values['device']!r}: pipestate runs on the CPU; use device='cpu' (or omit it)"
        )
    return Config(values)


def docstring(summary: str, schema: Sequence[Arg]) -> str:
    """A Google-style docstring for an ``fn.*`` function: ``summary`` and an ``Args:`` section."""
    lines = [summary.rstrip(), "", "Args:"]
    for arg in schema:
        default = "required" if arg.default is REQUIRED else f"default {arg.default!r}"
        extra = "; per-sample DataNode accepted" if arg.tensor else ""
        extra += "; may be positional" if arg.positional else ""
        lines.append(f"    {arg.name}: {arg.doc} ({arg.kind.text}; {default}{extra}).")
    lines.append("    name: Operator name, used in checkpoints (default: derived from the type and order).")
    return "\n".join(lines)


def first_paragraph(doc: str | None) -> str:
    """The summary paragraph of a class docstring."""
    return (doc or "").strip().split("\n\n")[0].strip()
