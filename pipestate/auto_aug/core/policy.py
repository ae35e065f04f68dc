"""``Policy``: the sub-policies of AutoAugment (sequences of augmentations with probabilities and bins)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from pipestate.auto_aug.core._augmentation import Augmentation

SubPolicy = Sequence[tuple[Augmentation, float, int | None]]


class Policy:
    """An augmentation policy as in AutoAugment (https://arxiv.org/abs/1805.09501).

    Args:
        name: The policy's name (for presentation).
        num_magnitude_bins: Into how many bins the augmentations' magnitude ranges are divided.
        sub_policies: Sequences of ``(augmentation, probability, magnitude bin)``. Each sample gets one sequence,
            chosen uniformly at random; each step runs with its probability, at its bin (``None`` for
            augmentations without magnitudes).

    Raises:
        TypeError: a sub-policy or step of the wrong form, or a step whose augmentation is not an
            :class:`Augmentation`.
        ValueError: a probability outside ``[0, 1]``, a bin outside ``[0, num_magnitude_bins - 1]``, or a missing
            bin for an augmentation with magnitudes.
    """

    def __init__(self, name: str, num_magnitude_bins: int, sub_policies: Sequence[SubPolicy]) -> None:
        self.name = name
        self.num_magnitude_bins = num_magnitude_bins
        if isinstance(num_magnitude_bins, bool) or not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 1:
            raise ValueError(f"The `num_magnitude_bins` must be a positive integer, got {num_magnitude_bins}.")
        if not isinstance(sub_policies, (list, tuple)):
            raise TypeError(f"The `sub_policies` must be a list or tuple of sub policies, got {type(sub_policies)}.")
        for sub_policy in sub_policies:
            if not isinstance(sub_policy, (list, tuple)):
                raise TypeError(f"Each sub policy must be a list or tuple, got {sub_policy}.")
            for step in sub_policy:
                self._check_step(step)
        self.sub_policies = _sub_policy_with_unique_names(sub_policies)

    def _check_step(self, step: object) -> None:
        if not isinstance(step, (list, tuple)) or len(step) != 3:
            raise TypeError(
                f"Each operation in sub policy must be specified as a triple: (augmentation, probability, "
                f"magnitude). Got {step}."
            )
        aug, p, mag = step
        if not isinstance(aug, Augmentation):
            raise TypeError(
                f"Each augmentation in sub policies must be an instance of Augmentation. Got `{aug}`. Did you "
                f"forget to use `@augmentation` decorator?"
            )
        if isinstance(p, bool) or not isinstance(p, (float, int)) or not 0 <= p <= 1:
            raise ValueError(
                f"Probability of applying the augmentation must be a number from `[0, 1]` range. Got `{p}` for "
                f"augmentation `{aug.name}`."
            )
        if p == 0:
            warnings.warn(
                f"The augmentation `{aug.name}` in policy `{self.name}` is used with probability 0 in one of the "
                f"sub-policies.",
                stacklevel=3,
            )
        if mag is None:
            if aug.mag_range is not None:
                raise ValueError(
                    f"The augmentation `{aug.name}` has `mag_range` specified, so the magnitude bin is required. "
                    f"However, got `None` in the policy `{self.name}`."
                )
            return
        if aug.mag_range is None:
            warnings.warn(
                f"The magnitude bin `{mag}` for augmentation `{aug.name}` in policy `{self.name}` will be ignored. "
                f"The augmentation does not accept magnitudes (as it has no `mag_range` specified). You can specify "
                f"`None` instead of `{mag}` to silence this warning.",
                stacklevel=3,
            )
        if isinstance(mag, bool) or not isinstance(mag, int) or not 0 <= mag < self.num_magnitude_bins:
            raise ValueError(
                f"Magnitude of the augmentation must be an integer from `[0, {self.num_magnitude_bins - 1}]` range. "
                f"Got `{mag}` for augmentation `{aug.name}`."
            )

    @property
    def augmentations(self) -> dict[str, Augmentation]:
        """The policy's augmentations by name (sorted)."""
        augments = sorted({aug for sub_policy in self.sub_policies for aug, _, _ in sub_policy}, key=lambda a: a.name)
        return {aug.name: aug for aug in augments}

    def __repr__(self) -> str:
        subs = ",\n\t".join(repr([(aug.name, p, mag) for aug, p, mag in sub]) for sub in self.sub_policies)
        augs = ",\n\t".join(f"'{name}': {aug!r}" for name, aug in self.augmentations.items())
        return (
            f"Policy(name={self.name!r}, num_magnitude_bins={self.num_magnitude_bins!r}, "
            f"sub_policies=[{'' if not subs else chr(10) + chr(9)}{subs}], "
            f"augmentations={{{'' if not augs else chr(10) + chr(9)}{augs}}})"
        )


def _sub_policy_with_unique_names(sub_policies: Sequence[SubPolicy]) -> tuple:
    """The sub-policies as tuples; distinct augmentations sharing a name are renamed ``<i>__<name>``."""
    ordered = list(dict.fromkeys(aug for sub_policy in sub_policies for aug, _, _ in sub_policy))
    if len({aug.name for aug in ordered}) == len(ordered):
        return tuple(tuple(sub_policy) for sub_policy in sub_policies)
    digits = len(str(len(ordered) - 1))
    renamed = {aug: aug.augmentation(name=f"{str(i).zfill(digits)}__{aug.name}") for i, aug in enumerate(ordered)}
    return tuple(tuple((renamed[aug], p, mag) for aug, p, mag in sub_policy) for sub_policy in sub_policies)
