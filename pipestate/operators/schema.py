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

from pipestate.dtypes import to_numpy_dtype
from pipestate.graph import DataNode

REQUIRED = object()  # the default of an argument that must be given


class Kind:
    """How an argument's value is checked and normalized; subclasses implement :meth:`check`.

    A kind that may be given per sample (``Arg(..., tensor=True)``) also checks the samples of a
    ``DataNode`` at run time: :meth:`check_samples` validates a whole batch at once (numpy, no per-sample
    Python work when the samples share a shape) and :meth:`sample_value` turns one checked sample into
    the value :meth:`check` would return for a constant.
    """

    text = "any value"
    sample_shapes: tuple[tuple[int, ...], ...] | None = None  # accepted per-sample shapes; None: any

    def check(self, value: Any, where: str) -> Any:
        """Return the normalized value, or raise ``TypeError``/``ValueError`` whose message starts with ``where``."""
        return value

    def check_samples(self, samples: np.ndarray | Sequence[np.ndarray], where: str) -> None:
        """Check the per-sample values of a ``DataNode`` argument (a dense array with the batch first, or
        one array per sample).

        Raises:
            TypeError: a sample of the wrong type or shape (the message names the sample).
            ValueError: a sample out of range (naming the sample and the value).
        """
        for i, sample in enumerate(samples):
            self.check(self.sample_value(np.asarray(sample)), f"{where} (sample {i})")

    def sample_value(self, sample: np.ndarray) -> Any:
        """One checked sample as the value :meth:`check` returns for a constant."""
        return sample


def _first_bad(mask: np.ndarray) -> int:
    """The batch index of the first sample with any True in ``mask`` (batch first)."""
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _numeric_samples(
    samples: np.ndarray | Sequence[np.ndarray], where: str, kinds: str, shapes: Sequence[tuple], text: str
) -> np.ndarray | list[np.ndarray]:
    """Check every sample's element kind (numpy ``dtype.kind`` letters) and shape; dense input is checked at once."""
    arrays = samples if isinstance(samples, np.ndarray) else [np.asarray(s) for s in samples]
    dense = isinstance(arrays, np.ndarray)
    for i, sample in enumerate([arrays[0]] if dense and len(arrays) else arrays):
        if sample.dtype.kind not in kinds:
            raise TypeError(f"{where} (sample {i}) has type {sample.dtype}; it must be {text}")
        if sample.shape not in shapes:
            want = " or ".join(str(tuple(s)) for s in shapes)
            raise TypeError(f"{where} (sample {i}) has shape {sample.shape}; it must have shape {want} ({text})")
    return arrays


def _range_check(values: np.ndarray, where: str, low: Any, high: Any, text: str, finite: bool) -> None:
    """Raise naming the first sample whose values (batch first) leave [low, high] (or are not finite)."""
    bad = np.zeros(values.shape, dtype=bool)
    if finite:
        bad |= ~np.isfinite(values)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    if bad.any():
        i = _first_bad(bad)
        value = values[i].tolist()
        raise ValueError(f"{where} (sample {i}) = {value!r}; it must be {text}")


def _scalar_check(kind: Kind, samples: Any, where: str, kinds: str, finite: bool) -> None:
    arrays = _numeric_samples(samples, where, kinds, ((), (1,)), kind.text)
    values = arrays.reshape(len(arrays)) if isinstance(arrays, np.ndarray) else np.array([a.item() for a in arrays])
    if len(values):
        _range_check(values, where, kind.low, kind.high, kind.text, finite)


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
        if (self.low is None and v < -(2**63)) or (self.high is None and v >= 2**63):  # DALI's ints are 64-bit
            raise ValueError(f"{where}={value!r} must be {self.text} that fits in 64 bits")
        return v

    def check_samples(self, samples: Any, where: str) -> None:
        _scalar_check(self, samples, where, "iu", finite=False)

    def sample_value(self, sample: np.ndarray) -> int:
        return int(sample.reshape(()))


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

    def check_samples(self, samples: Any, where: str) -> None:
        _scalar_check(self, samples, where, "iuf", finite=True)

    def sample_value(self, sample: np.ndarray) -> float:
        return float(sample.reshape(()))


class Bool(Kind):
    """``True`` or ``False`` (numpy bools accepted; ints are not)."""

    text = "True or False"

    def check(self, value: Any, where: str) -> bool:
        v = _scalar(value)
        if not isinstance(v, bool):
            raise TypeError(f"{where}={value!r} must be True or False")
        return v

    def check_samples(self, samples: Any, where: str) -> None:
        # DALI takes a per-sample bool argument from bool or integer tensors (e.g. fn.random.coin_flip()).
        _numeric_samples(samples, where, "biu", ((), (1,)), "a scalar bool or int")

    def sample_value(self, sample: np.ndarray) -> bool:
        return bool(sample.reshape(()))


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

    def check_samples(self, samples: Any, where: str) -> None:
        if not isinstance(self.of, (Int, Float, Bool)):
            return super().check_samples(samples, where)
        kinds = {Int: "iu", Float: "iuf", Bool: "biu"}[type(self.of)]
        if self.length is not None:
            shapes = [(self.length,)] + ([(), (1,)] if self.broadcast else [])
            arrays = _numeric_samples(samples, where, kinds, shapes, self.text)
        else:
            arrays = samples if isinstance(samples, np.ndarray) else [np.asarray(s) for s in samples]
            for i, a in enumerate(arrays):
                if a.dtype.kind not in kinds or a.ndim > 1 or (a.ndim == 0 and not self.broadcast):
                    raise TypeError(
                        f"{where} (sample {i}) has type {a.dtype} and shape {a.shape}; it must be {self.text}"
                    )
                if a.size < self.min_length:
                    raise ValueError(
                        f"{where} (sample {i}) has {a.size} value(s); it must have at least {self.min_length}"
                    )
        if isinstance(self.of, (Int, Float)):
            parts = [arrays] if isinstance(arrays, np.ndarray) else [a.reshape(1, -1) for a in arrays]
            for k, part in enumerate(parts):
                try:
                    _range_check(part, where, self.of.low, self.of.high, self.of.text, isinstance(self.of, Float))
                except ValueError:
                    if isinstance(arrays, np.ndarray):
                        raise
                    raise ValueError(
                        f"{where} (sample {k}) = {part[0].tolist()!r}; each value must be {self.of.text}"
                    ) from None

    def sample_value(self, sample: np.ndarray) -> tuple:
        flat = sample.reshape(-1)
        values = (
            tuple(self.of.sample_value(v) for v in flat)
            if not isinstance(self.of, (Int, Float, Bool))
            else tuple({Int: int, Float: float, Bool: bool}[type(self.of)](v) for v in flat.tolist())
        )
        if sample.ndim == 0 or (self.broadcast and self.length is not None and len(values) == 1 and self.length != 1):
            return values * (self.length or 1)
        return values


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


# Element-type groups for Input declarations.
INTEGERS = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64")
FLOATS = ("float16", "float32", "float64")
NUMBERS = ("bool", *INTEGERS, *FLOATS)


@dataclasses.dataclass(frozen=True)
class Input:
    """One declared input of an operator, as in DALI's schema.

    Attributes:
        name: How errors and the reference call it (e.g. ``"images"``).
        doc: One line for the reference.
        dtypes: The accepted element types (names or numpy dtypes); ``None``: any.
        ndim: The accepted numbers of dimensions per sample; ``None``: any.
        layouts: The accepted layouts (``"HWC"``, ``"CHW"``...). A batch without a layout takes the first
            one with as many letters as its samples have dimensions; ``None``: any layout.
        optional: The input may be left out (only trailing inputs).
    """

    name: str
    doc: str
    dtypes: tuple[Any, ...] | None = None
    ndim: tuple[int, ...] | None = None
    layouts: tuple[str, ...] | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if self.dtypes is not None:
            object.__setattr__(self, "dtypes", tuple(np.dtype(d) for d in self.dtypes))
        if self.ndim is None and self.layouts:
            object.__setattr__(self, "ndim", tuple(sorted({len(layout) for layout in self.layouts})))

    @property
    def text(self) -> str:
        """The declaration in words, for errors and the reference."""
        parts = []
        if self.dtypes is not None:
            parts.append("type " + "/".join(str(d) for d in self.dtypes))
        if self.layouts is not None:
            parts.append("layout " + "/".join(self.layouts))
        elif self.ndim is not None:
            parts.append("ndim " + "/".join(map(str, self.ndim)))
        return ", ".join(parts) or "any tensor"

    def layout_of(self, layout: str, ndim: int) -> str:
        """The layout a batch with ``layout`` (``""``: none) and samples of ``ndim`` dimensions has here."""
        if layout or not self.layouts:
            return layout
        return next((candidate for candidate in self.layouts if len(candidate) == ndim), "")

    def check(self, dtypes: set, ndims: set, layout: str, where: str) -> str:
        """Check a batch's element types, sample dimensions and layout; return its effective layout.

        Raises:
            TypeError: naming the input, what it got and what it accepts.
        """
        if self.dtypes is not None and not dtypes <= set(self.dtypes):
            got = "/".join(sorted(map(str, dtypes)))
            raise TypeError(f"{where} {self.name!r} has type {got}; it accepts {self.text}")
        if self.ndim is not None and not ndims <= set(self.ndim):
            got = "/".join(map(str, sorted(ndims)))
            raise TypeError(f"{where} {self.name!r} has {got}-dimensional samples; it accepts {self.text}")
        effective = self.layout_of(layout, next(iter(ndims)) if len(ndims) == 1 else -1)
        if self.layouts is not None and effective not in self.layouts:
            raise TypeError(f"{where} {self.name!r} has layout {layout!r}; it accepts {self.text}")
        if effective and len(ndims) == 1 and len(effective) != next(iter(ndims)):
            raise TypeError(f"{where} {self.name!r}: layout {effective!r} does not match samples of {ndims.pop()} dims")
        return effective


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
        value = kwargs.get(arg.name)
        if value is None:  # DALI: an argument given as None is not given (its default applies)
            value = arg.default
        if value is REQUIRED:
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
