"""Operators, one family per module. Importing this package registers all of them."""

from pipestate import graph
from pipestate.operators import (  # noqa: F401 - importing registers the operators
    conditional,
    constant,
    external_source,
    io_file,
    math,
    numpy_decoder,
    python_function,
    random,
    readers,
    subscript,
)
from pipestate.operators.base import REGISTRY, Operator, make_function

graph.register_node_operations(arithmetic=math.arithmetic, subscript=subscript.subscript)

__all__ = ["REGISTRY", "Operator", "make_function"]
