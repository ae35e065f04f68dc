"""Matching the extra keyword arguments of automatic augmentations to the augmentations that take them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class MissingArgException(TypeError):
    """An augmentation needs keyword arguments the call did not give (``missing_args`` lists them)."""

    def __init__(self, message: str, augmentation: Any, missing_args: list[str]) -> None:
        super().__init__(message)
        self.augmentation = augmentation
        self.missing_args = missing_args


class UnusedArgException(TypeError):
    """Keyword arguments that no augmentation of the suite takes (``unused_args`` lists them)."""

    def __init__(self, message: str, unused_args: list[str]) -> None:
        super().__init__(message)
        self.unused_args = unused_args


def _params_after(fun: Callable, skip_positional: int) -> list[inspect.Parameter]:
    """The parameters of ``fun`` except its first ``skip_positional`` positional ones."""
    return [
        p
        for i, p in enumerate(inspect.signature(fun).parameters.values())
        if i >= skip_positional or p.kind not in _POSITIONAL
    ]


def filter_extra_accepted_kwargs(fun: Callable, kwargs: Mapping[str, Any], skip_positional: int = 0) -> dict[str, Any]:
    """The items of ``kwargs`` whose names ``fun`` accepts (after its first ``skip_positional`` parameters)."""
    names = {p.name for p in _params_after(fun, skip_positional) if p.kind in _NAMED}
    return {k: v for k, v in kwargs.items() if k in names}


def get_required_kwargs(fun: Callable, skip_positional: int = 0) -> list[str]:
    """The names of the parameters of ``fun`` without defaults (after the first ``skip_positional``)."""
    return [p.name for p in _params_after(fun, skip_positional) if p.kind in _NAMED and p.default is p.empty]


def get_num_positional_args(fun: Callable) -> int:
    """How many arguments ``fun`` accepts positionally."""
    return sum(p.kind in _POSITIONAL for p in inspect.signature(fun).parameters.values())


def get_missing_kwargs(fun: Callable, kwargs: Mapping[str, Any], skip_positional: int = 0) -> list[str]:
    """The required parameters of ``fun`` that ``kwargs`` lacks."""
    return [name for name in get_required_kwargs(fun, skip_positional) if name not in kwargs]


def filter_unused_args(augmentations: Iterable[Any], kwargs: Mapping[str, Any]) -> list[str]:
    """The names in ``kwargs`` that none of the augmentations' operations accepts."""
    used = {name for aug in augmentations for name in filter_extra_accepted_kwargs(aug.op, kwargs, 2)}
    return [name for name in kwargs if name not in used]


def forbid_unused_kwargs(augmentations: Iterable[Any], kwargs: Mapping[str, Any], call_name: str) -> None:
    """Raise :class:`UnusedArgException` naming the keyword arguments no augmentation uses."""
    unused = filter_unused_args(augmentations, kwargs)
    if unused:
        subject, verb = ("kwarg", "is") if len(unused) == 1 else ("kwargs", "are")
        raise UnusedArgException(
            f"The {call_name} got unexpected {subject}. The {subject} `{', '.join(unused)}` {verb} not used by any "
            f"of the augmentations.",
            unused_args=unused,
        )
