"""Operator implementations, one family per module; each module registers its operators on import.

Importing this package imports every public module below it (names not starting with ``_``), so a new
operator module is found without editing any list. What an operator module needs is exported here:
:class:`SampleOperator` (the kit), :class:`Operator`, :func:`register`, :class:`Example`.
``pipestate.fn`` and ``pipestate.ops`` are built from the registry and follow later registrations too
(:func:`on_register`).
"""

import importlib
import pkgutil

from pipestate import graph
from pipestate.operators._kit import Sample, SampleOperator, saturate_cast
from pipestate.operators.base import REGISTRY, Operator, RunContext, on_register, register, unregister
from pipestate.operators.example import Example, Tensor


def _import_all() -> None:
    for info in pkgutil.walk_packages(__path__, __name__ + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            importlib.import_module(info.name)


_import_all()

from pipestate.operators import arithmetic, subscript  # noqa: E402 - imported above; named for the graph hooks

graph.register_node_operations(arithmetic=arithmetic.arithmetic, subscript=subscript.subscript)

__all__ = [
    "REGISTRY",
    "Example",
    "Operator",
    "RunContext",
    "Sample",
    "SampleOperator",
    "Tensor",
    "on_register",
    "register",
    "saturate_cast",
    "unregister",
]
