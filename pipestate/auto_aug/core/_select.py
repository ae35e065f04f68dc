"""``select``: apply one augmentation per sample, chosen by a per-sample index (nested conditionals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipestate.graph import DataNode


def split_samples_among_ops(
    op_range_lo: int, op_range_hi: int, ops: Sequence[Any], selected_op_idx: DataNode, op_args: tuple, op_kwargs: dict
) -> DataNode:
    """Bisect ``[op_range_lo, op_range_hi]`` with ``if`` on the per-sample index until one operation is left."""
    if op_range_lo == op_range_hi:
        return ops[op_range_lo](*op_args, **op_kwargs)
    mid = (op_range_lo + op_range_hi) // 2
    if selected_op_idx <= mid:
        result = split_samples_among_ops(op_range_lo, mid, ops, selected_op_idx, op_args, op_kwargs)
    else:
        result = split_samples_among_ops(mid + 1, op_range_hi, ops, selected_op_idx, op_args, op_kwargs)
    return result


def select(ops: Sequence[Any], selected_op_idx: DataNode, *op_args: Any, **op_kwargs: Any) -> DataNode:
    """Apply ``ops[selected_op_idx](*op_args, **op_kwargs)`` for every sample (needs ``enable_conditionals=True``).

    Args:
        ops: The augmentations (or any callables on DataNodes) to choose from.
        selected_op_idx: A per-sample index in ``[0, len(ops) - 1]``.
        op_args: Positional arguments of the chosen operation (DataNodes are split between the branches).
        op_kwargs: Keyword arguments of the chosen operation.

    Returns:
        The outputs of the chosen operations, merged back in sample order.
    """
    return split_samples_among_ops(0, len(ops) - 1, ops, selected_op_idx, op_args, op_kwargs)
