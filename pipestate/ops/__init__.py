"""Operators, one family per module. Importing this package registers all of them."""

from pipestate.ops import external_source, math, python_function, random  # noqa: F401
from pipestate.ops.base import REGISTRY, Operator, make_function

__all__ = ["REGISTRY", "Operator", "make_function"]
