"""DALI's ``nvidia.dali.data_node``: :class:`DataNode`, the symbolic output of an operator."""

from pipestate.graph import DataNode

__all__ = ["DataNode"]
