"""``fn.readers.*``: DALI's readers with its sharding, and O(1) restore (one reader per module, found by
``pipestate.operators`` on import).

The sample order is a pure function of a few numbers (``_sampler``); the reader base class (``_base``)
turns it into batches and keeps the position as its checkpoint state.
"""

from pipestate.operators.readers._base import Reader

__all__ = ["Reader"]
