"""Operator examples: the small, declarative case every operator gives the conformance suite.

Each registered operator sets ``EXAMPLE`` to an :class:`Example`: its inputs (synthetic tensors, generated
deterministically per sample, ragged where the operator accepts ragged input), its arguments (constants,
and :class:`Tensor` values for per-sample ``DataNode`` arguments), and how it is compared with DALI. The
suite (:mod:`pipestate.testing`, ``tests/operators/test_conformance.py``) builds a pipeline from it and checks
restores at every step across epoch ends, thread and prefetch independence, argument fuzzing from the schema,
a golden output and checkpoint, and DALI's output on the same input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Tensor:
    """A synthetic input: one deterministic array per sample.

    Attributes:
        dtype: Element type name (``"uint8"``, ``"float32"``...).
        shape: The sample shape; axes listed in ``ragged`` vary per sample between 1 and twice this extent.
        layout: The input's layout (``""``: none).
        ragged: The axes whose extent varies from sample to sample.
        low, high: Values are drawn uniformly in [low, high] (integers: rounded down).
        values: Instead, the exact per-sample values: ``values(index)`` for the sample's index in the epoch.
    """

    dtype: str = "uint8"
    shape: tuple[int, ...] = (6, 5, 3)
    layout: str = ""
    ragged: tuple[int, ...] = ()
    low: float = 0
    high: float = 255
    values: Callable[[int], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Example:
    """How the conformance suite exercises an operator.

    Attributes:
        inputs: The operator's inputs.
        args: Constant arguments.
        arg_inputs: Per-sample ``DataNode`` arguments.
        setup: For operators that read files: ``setup(directory)`` writes a small dataset there (relative
            paths, deterministic) and returns more arguments; or ``"module:function"`` naming such a function
            in the test suite (for formats whose writers are test code, e.g. LMDB or tar shards).
        build: Instead of calling ``fn.<type>(*inputs, **args)``, build the outputs from the input nodes
            (for operators created by DataNode operators or conditionals).
        dali: How the output is compared with DALI's: ``"exact"`` or ``"close:<atol>"`` (the suite runs
            DALI's operator of the same name on the same inputs), ``"test:<test file>"`` (a dedicated test,
            marked ``dali_differential("<type>")`` in that file), or ``"none: <reason>"`` (DALI has no such
            operator, or it is random: say what is checked instead).
        epoch_batches: Batches per epoch of the synthetic inputs (an epoch end tests the reset).
        batch_size: The batch size.
        dali_options: Pipeline options DALI's pipeline needs for this operator (e.g. ``exec_pipelined=False``).
        fixed: Arguments the fuzzer leaves alone because they define the contract of a user's function
            (e.g. ``python_function``'s ``num_outputs``): a user function failing under another contract is
            the user's error, reported as such.
    """

    inputs: tuple[Tensor, ...] = ()
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    arg_inputs: Mapping[str, Tensor] = dataclasses.field(default_factory=dict)
    setup: Callable[[str], dict[str, Any]] | str | None = None
    build: Callable[..., Any] | None = None
    dali: str = "exact"
    epoch_batches: int = 3
    batch_size: int = 3
    dali_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fixed: tuple[str, ...] = ()
