"""The ``fn`` namespace: one function per registered operator, e.g. ``fn.random.uniform``.

Built from the operator registry: an operator of type ``"a.b"`` is ``fn.a.b``. Sub-namespaces are modules
(``pipestate.fn.readers``), so ``from pipestate.fn import readers`` works as with DALI. An operator
registered later (a user's own, or a plugin's) appears here as soon as it is registered, and so do DALI's
deprecated names for it (``fn.file_reader`` for ``fn.readers.file``: :data:`pipestate._names.ALIASES`), which
warn as DALI's do.
"""

from __future__ import annotations

import difflib
import sys
import types as _types
import warnings
from collections.abc import Callable
from typing import Any

from pipestate import _names
from pipestate.operators import on_register
from pipestate.operators.base import Operator
from pipestate.tracing import make_function

__all__: list[str] = []

MIGRATION_TABLE = "docs/migrating-from-dali.md#dali-features-and-their-status"


def _missing(namespace: _types.ModuleType, path: str, name: str) -> AttributeError:
    """The error for ``fn.<path>.<name>`` that does not exist: it names the operator, suggests close names
    and points to the migration guide's table of DALI features (an ``AttributeError``, so ``hasattr`` and
    ``getattr(..., default)`` keep working)."""
    full = f"fn.{path}.{name}" if path else f"fn.{name}"
    close = difflib.get_close_matches(name, getattr(namespace, "__all__", []), n=3)
    hint = f" Did you mean {', '.join(f'fn.{path}.{c}' if path else f'fn.{c}' for c in close)}?" if close else ""
    return AttributeError(
        f"pipestate has no operator {full}.{hint} If it is a DALI operator, it is not in this release: the table "
        f"of DALI features in {MIGRATION_TABLE} lists what exists and what to use instead."
    )


def __getattr__(name: str) -> object:
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise _missing(sys.modules[__name__], "", name)


def _namespace_getattr(module: _types.ModuleType, path: str):  # noqa: ANN202 - a module __getattr__
    def __getattr__(name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        raise _missing(module, path, name)

    return __getattr__


def _namespace(path: list[str]) -> _types.ModuleType:
    """The module ``pipestate.fn.<path>``, created (and registered in ``sys.modules``) on first use."""
    target = sys.modules[__name__]
    for i, part in enumerate(path):
        child = getattr(target, part, None)
        if child is None:
            name = ".".join([__name__, *path[: i + 1]])
            child = _types.ModuleType(name, f"``fn.{'.'.join(path[: i + 1])}``: operators of this family.")
            child.__all__ = []
            child.__getattr__ = _namespace_getattr(child, ".".join(path[: i + 1]))
            sys.modules[name] = child
            setattr(target, part, child)
            target.__all__.append(part)
        target = child
    return target


def _deprecated(function: Callable[..., Any], alias: _names.Alias) -> Callable[..., Any]:
    def deprecated(*inputs: Any, **kwargs: Any) -> Any:
        warnings.warn(_names.deprecation_message("fn", alias.fn, alias.target), DeprecationWarning, stacklevel=2)
        return function(*inputs, **kwargs)

    deprecated.__name__ = alias.fn.rsplit(".", 1)[-1]
    deprecated.__qualname__ = f"fn.{alias.fn}"
    deprecated.__doc__ = f"Deprecated (as in DALI): use ``fn.{alias.target}``.\n\n{function.__doc__}"
    return deprecated


def _set(op_path: str, function: Callable[..., Any]) -> None:
    *path, leaf = op_path.split(".")
    target = _namespace(path)
    setattr(target, leaf, function)
    if leaf not in target.__all__:
        target.__all__.append(leaf)


def _add(cls: type[Operator]) -> None:
    if cls.internal:
        return
    function = make_function(cls)
    _set(cls.type, function)
    for alias in _names.aliases_of(cls.type):
        _set(alias.fn, _deprecated(function, alias))


def _remove(cls: type[Operator]) -> None:
    for op_path in [cls.type, *(alias.fn for alias in _names.aliases_of(cls.type))]:
        *path, leaf = op_path.split(".")
        target = sys.modules.get(".".join([__name__, *path]))
        if target is not None and leaf in target.__all__:
            delattr(target, leaf)
            target.__all__.remove(leaf)


on_register(_add, _remove)
