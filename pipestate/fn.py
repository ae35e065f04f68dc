"""The ``fn`` namespace: one function per registered operator, e.g. ``fn.random.uniform``.

Built from the operator registry: an operator of type ``"a.b"`` is ``fn.a.b``. Sub-namespaces are modules
(``pipestate.fn.readers``), so ``from pipestate.fn import readers`` works as with DALI. An operator
registered later (a user's own, or a plugin's) appears here as soon as it is registered.
"""

from __future__ import annotations

import difflib
import sys
import types as _types

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


def _add(cls: type[Operator]) -> None:
    if cls.internal:
        return
    *path, leaf = cls.type.split(".")
    target = _namespace(path)
    setattr(target, leaf, make_function(cls))
    if leaf not in target.__all__:
        target.__all__.append(leaf)


def _remove(cls: type[Operator]) -> None:
    *path, leaf = cls.type.split(".")
    target = sys.modules[".".join([__name__, *path])] if path else sys.modules[__name__]
    if leaf in target.__all__:
        delattr(target, leaf)
        target.__all__.remove(leaf)


on_register(_add, _remove)
