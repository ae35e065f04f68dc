"""DALI's ``nvidia.dali.tensors`` names: a pipeline's output batch, DALI's ``TensorListCPU``, is pipestate's
:class:`~pipestate.batch.Batch` (it has ``TensorListCPU``'s methods)."""

from pipestate.batch import Batch as TensorListCPU

__all__ = ["TensorListCPU"]
