"""The ``fn`` namespace: one function per registered operator, e.g. ``fn.random.uniform``.

Built from the operator registry: an operator of type ``"a.b"`` is ``fn.a.b``. Sub-namespaces are modules
(``pipestate.fn.readers``), so ``from pipestate.fn import readers`` works as with DALI. An operator
registered later (a user's own, or a plugin's) appears here as soon as it is registered.
"""

from __future__ import annotations

import sys
import types as _types

from pipestate.operators import on_register
from pipestate.operators.base import Operator
from pipestate.tracing import make_function

__all__: list[str] = []


def _namespace(path: list[str]) -> _types.ModuleType:
    """The module ``pipestate.fn.<path>``, created (and registered in ``sys.modules``) on first use."""
    target = sys.modules[__name__]
    for i, part in enumerate(path):
        child = getattr(target, part, None)
        if child is None:
            name = ".".join([__name__, *path[: i + 1]])
            child = _types.ModuleType(name, f"``fn.{'.'.join(path[: i + 1])}``: operators of this family.")
            child.__all__ = []
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
