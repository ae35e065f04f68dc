"""The building blocks of automatic augmentations, as ``nvidia.dali.auto_aug.core``: the ``@augmentation``
decorator, :func:`signed_bin`, :func:`select` and :class:`Policy`."""

from pipestate.auto_aug.core._augmentation import Augmentation as _Augmentation
from pipestate.auto_aug.core._augmentation import signed_bin
from pipestate.auto_aug.core._select import select
from pipestate.auto_aug.core.decorator import augmentation
from pipestate.auto_aug.core.policy import Policy

__all__ = ("signed_bin", "augmentation", "select", "Policy", "_Augmentation")
