"""pipestate: deterministic ML input pipelines whose state checkpoints and restores exactly.

Define a pipeline with :func:`pipeline_def` and ``fn.*`` operators (or DALI's class style: a
:class:`Pipeline` subclass calling ``ops.*`` objects in ``define_graph``), run it, take ``checkpoint()``
bytes, and pass them as ``checkpoint=`` to a new pipeline to continue bit for bit.
"""

__version__ = "0.1.0"

from pipestate import fn, math, ops, types
from pipestate.batch import Batch
from pipestate.checkpoint.partial import RestoreReport
from pipestate.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CorruptCheckpointError,
    OperatorError,
    PartialRestoreWarning,
    PipestateError,
    UnsupportedCheckpointVersionError,
)
from pipestate.graph import DataNode
from pipestate.io import Checkpointer
from pipestate.pipeline import OperatorConcurrency, Pipeline, StreamPolicy, pipeline_def

__all__ = [
    "Batch",
    "CheckpointError",
    "CheckpointMismatchError",
    "Checkpointer",
    "CorruptCheckpointError",
    "DataNode",
    "OperatorConcurrency",
    "OperatorError",
    "PartialRestoreWarning",
    "Pipeline",
    "PipestateError",
    "RestoreReport",
    "StreamPolicy",
    "UnsupportedCheckpointVersionError",
    "__version__",
    "fn",
    "math",
    "ops",
    "pipeline_def",
    "types",
]
