"""DALI's class-style ``ops`` namespace: one class per registered operator, e.g. ``ops.readers.File``.

Built from the operator registry, as ``fn`` is: the operator registered as ``readers.file`` (``fn.readers.file``)
is the class ``ops.readers.File``, ``random.coin_flip`` is ``ops.random.CoinFlip``, ``crop_mirror_normalize`` is
``ops.CropMirrorNormalize`` (DALI's names: :mod:`pipestate._names`), and DALI's deprecated flat names
(``ops.FileReader``, ``ops.CoinFlip``, ``ops.Uniform``, ...) are there once their operator is. Operators
registered later appear at once.

An object is created with arguments and called, in ``define_graph``, with inputs and more arguments, as in
DALI: the arguments of both are merged (one given twice is a ``ValueError``; a ``DataNode`` argument goes
to the call), ``name=`` may be given to either, and every call adds a new operator to the pipeline, named
as ``fn`` names it (``"{fn path}_{n}"``, counting operators of that type in the order they are added), so a
class-style pipeline and the same pipeline written with ``fn`` have the same operators, the same
fingerprint and interchangeable checkpoints.
"""

from __future__ import annotations

import sys
import types as _types
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pipestate import _names
from pipestate.external_source import ExternalSource
from pipestate.graph import DataNode
from pipestate.operators import on_register
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator
from pipestate.tracing import add_operator

__all__: list[str] = ["Compose", "ExternalSource", "cpu_ops", "gpu_ops", "mixed_ops"]


def _separate(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """DALI's split of keyword arguments: constants (``__init__``) and ``DataNode`` / array arguments (``__call__``).

    ``None`` means "not given", as in DALI.
    """
    constants, nodes = {}, {}
    for key, value in kwargs.items():
        if value is None:
            continue
        if isinstance(value, DataNode) or (getattr(value, "ndim", 0) > 0 and not isinstance(value, (list, tuple))):
            nodes[key] = value
        else:
            constants[key] = value
    return constants, nodes


def _merge(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` and ``later`` together; an argument in both is DALI's ``ValueError``."""
    for key in later:
        if key in earlier:
            raise ValueError(f"The argument `{key}` was already specified in __init__.")
    return {**earlier, **later}


class _Operator:
    """Base of the ``ops`` classes: arguments at construction, inputs (and more arguments) at each call.

    Args:
        device: ``"cpu"`` (pipestate runs on the CPU).
        **kwargs: The operator's arguments (see :attr:`fn`'s docstring of the same operator) and ``name=``.

    Raises:
        TypeError: an argument the operator does not have, or a value of the wrong type.
        ValueError: a value out of range, or ``device`` other than ``"cpu"``.
    """

    op_class: ClassVar[type[Operator]]
    schema_name: ClassVar[str]
    deprecated: ClassVar[_names.Alias | None] = None

    def __init__(self, *, device: str = "cpu", **kwargs: Any) -> None:
        self._name = kwargs.pop("name", None)
        self._init_args, self._call_args = _separate({"device": device, **kwargs})
        _check_given(self.op_class, {**self._init_args, **self._call_args}, self._display())

    @property
    def device(self) -> str:
        """Where the operator runs (always ``"cpu"``)."""
        return self._init_args["device"]

    def _display(self) -> str:
        return f"ops.{self.deprecated.ops if self.deprecated else _ops_path(self.op_class.type)}"

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        """Add the operator to the pipeline being defined, applied to ``inputs``; return its output(s).

        Raises:
            ValueError: an argument given both here and at construction (``name`` too).
            TypeError: as ``fn``'s function of the same operator.
        """
        if self.deprecated is not None:
            message = _names.deprecation_message("ops", self.deprecated.ops, self.deprecated.target)
            warnings.warn(message, DeprecationWarning, stacklevel=2)
        name = kwargs.pop("name", None)
        constants, nodes = _separate(kwargs)
        merged = {**_merge(self._init_args, constants), **_merge(self._call_args, nodes)}
        if name is not None and self._name is not None:
            raise ValueError("The argument `name` was already specified in __init__.")
        if name is not None or self._name is not None:
            merged["name"] = name if name is not None else self._name
        return add_operator(self.op_class, inputs, merged)


def _check_given(cls: type[Operator], kwargs: dict[str, Any], where: str) -> None:
    """Check the arguments given at construction (required ones may still come with the call)."""
    by_name = {a.name: a for a in cls.SCHEMA}
    unknown = sorted(set(kwargs) - set(by_name))
    if unknown:
        raise TypeError(
            f"{where}() got unexpected argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(by_name))}"
        )
    for key, value in kwargs.items():
        arg = by_name[key]
        if isinstance(value, DataNode):
            if not arg.tensor:
                raise TypeError(f"{where}(): {key} must be a constant, not a DataNode (it cannot vary per sample)")
        elif getattr(value, "ndim", 0) == 0 or isinstance(value, (list, tuple)):
            arg.kind.check(value, f"{where}(): {key}")
    if kwargs.get("device", "cpu") != "cpu":
        raise ValueError(
            f"{where}(device={kwargs['device']!r}): pipestate runs on the CPU; use device='cpu' (or omit it)"
        )


class PythonFunction(_Operator):
    """DALI's ``ops.PythonFunction``: ``function`` (and ``num_outputs``) may be positional.

    Args:
        function: Called on each sample (or batch, with ``batch_processing=True``).
        num_outputs: Number of outputs the function returns.
        **kwargs: The other arguments of ``fn.python_function``.
    """

    def __init__(self, function: Callable[..., Any], num_outputs: int = 1, **kwargs: Any) -> None:
        super().__init__(function=function, num_outputs=num_outputs, **kwargs)


class _Compound:
    """The operators of :func:`Compose`, applied in order."""

    def __init__(self, op_list: Sequence[Any]) -> None:
        self.ops: list[Any] = []
        for op in op_list:
            self.ops += op.ops if isinstance(op, _Compound) else [op]

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        data: Any = list(inputs)
        for op in self.ops:
            data = op(*data, **kwargs)
            kwargs = {}  # the call's arguments go to the first operator, as in DALI
            data = list(data) if isinstance(data, (list, tuple)) else [data]
        return data[0] if len(data) == 1 else data


def Compose(op_list: Sequence[Any]) -> Any:  # noqa: N802 - DALI's name
    """DALI's ``ops.Compose``: one callable applying ``op_list``'s operators in order, each to the previous
    one's outputs (call arguments go to the first).

    Args:
        op_list: ``ops`` objects (or other callables taking and returning DataNodes).

    Returns:
        The single operator if ``op_list`` has one, else the composition.
    """
    return op_list[0] if len(op_list) == 1 else _Compound(op_list)


_SPECIAL: dict[str, type[_Operator]] = {"python_function": PythonFunction}


def _ops_path(op_type: str) -> str:
    path, name = _names.class_path(op_type)
    return ".".join([*path, name])


def _namespace(path: list[str]) -> _types.ModuleType:
    target = sys.modules[__name__]
    for i, part in enumerate(path):
        child = getattr(target, part, None)
        if child is None:
            name = ".".join([__name__, *path[: i + 1]])
            child = _types.ModuleType(name, f"``ops.{'.'.join(path[: i + 1])}``: operator classes of this family.")
            child.__all__ = []
            sys.modules[name] = child
            setattr(target, part, child)
            target.__all__.append(part)
        target = child
    return target


def _set(ops_path: str, cls: type) -> None:
    *path, name = ops_path.split(".")
    target = _namespace(path)
    cls.__module__ = target.__name__
    setattr(target, name, cls)
    if name not in target.__all__:
        target.__all__.append(name)


def _make_class(op_cls: type[Operator], ops_path: str, alias: _names.Alias | None = None) -> type:
    """The class at ``ops_path`` (e.g. ``"readers.File"`` or the alias ``"FileReader"``) of ``op_cls``."""
    name = ops_path.rsplit(".", 1)[-1]
    if op_cls.type == "external_source":
        return ExternalSource if alias is None else type(name, (ExternalSource,), {"deprecated": alias})
    doc = sch.docstring(sch.first_paragraph(op_cls.__doc__), op_cls.SCHEMA)
    if alias is not None:
        doc = f"Deprecated (as in DALI): use ``ops.{_ops_path(op_cls.type)}``.\n\n{doc}"
    attrs = {"op_class": op_cls, "schema_name": ops_path.replace(".", "__"), "deprecated": alias, "__doc__": doc}
    return type(name, (_SPECIAL.get(op_cls.type, _Operator),), attrs)


_SCHEMA_NAMES: dict[str, list[str]] = {}  # op type -> DALI schema names of its class and aliases (cpu_ops)


def _add(cls: type[Operator]) -> None:
    if cls.internal:
        return
    paths = [_ops_path(cls.type), *(alias.ops for alias in _names.aliases_of(cls.type))]
    _set(paths[0], _make_class(cls, paths[0]))
    for alias in _names.aliases_of(cls.type):
        _set(alias.ops, _make_class(cls, alias.ops, alias))
    _SCHEMA_NAMES[cls.type] = [path.replace(".", "__") for path in paths]


def _remove(cls: type[Operator]) -> None:
    _SCHEMA_NAMES.pop(cls.type, None)
    for ops_path in [_ops_path(cls.type), *(alias.ops for alias in _names.aliases_of(cls.type))]:
        *path, name = ops_path.split(".")
        target = sys.modules.get(".".join([__name__, *path]))
        if target is not None and name in target.__all__:
            delattr(target, name)
            target.__all__.remove(name)


def cpu_ops() -> set[str]:
    """DALI's ``ops.cpu_ops()``: the schema names (``"readers__File"``, ``"FileReader"``, ...) of every operator
    class, deprecated aliases included."""
    return {name for names in _SCHEMA_NAMES.values() for name in names}


def gpu_ops() -> set[str]:
    """DALI's ``ops.gpu_ops()``: empty (pipestate runs on the CPU)."""
    return set()


def mixed_ops() -> set[str]:
    """DALI's ``ops.mixed_ops()``: empty (pipestate runs on the CPU)."""
    return set()


on_register(_add, _remove)
