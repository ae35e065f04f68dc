"""Automatic augmentations, as ``nvidia.dali.auto_aug``: AutoAugment, RandAugment and TrivialAugment built
from operators with conditionals (pipelines need ``enable_conditionals=True``).

The modules mirror DALI's: ``auto_augment``, ``rand_augment``, ``trivial_augment``, ``augmentations`` (the
standard suite) and ``core`` (``augmentation``, ``signed_bin``, ``select``, ``Policy``).
"""
