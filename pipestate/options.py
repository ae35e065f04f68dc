"""Pipeline options: the ones pipestate uses, and DALI's others, accepted so DALI code runs unchanged.

Every option is checked here, with an error naming it and saying what is accepted.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from pipestate.operators import schema as sch

MAX_BATCH_SIZE = 2**31 - 1
MAX_PREFETCH_DEPTH = 64  # batches computed ahead of run(); a larger depth only costs memory
MAX_THREADS = 256

# Options pipestate uses. None means "not given" (the default applies).
USED = (
    "batch_size",
    "num_threads",
    "device_id",
    "seed",
    "prefetch_queue_depth",
    "enable_checkpointing",
    "checkpoint",
    "uncaptured_sources",  # pipestate's own: see check_uncaptured
)
UNCAPTURED_SOURCES = ("continue", "refuse")

# DALI's other options: accepted and checked; their effect on pipestate is in the docs (user guide).
_BOOL = sch.Bool()
COMPATIBILITY: dict[str, sch.Kind] = {
    "exec_pipelined": _BOOL,  # pipestate always prefetches on a background thread
    "exec_async": _BOOL,
    "exec_dynamic": _BOOL,
    "experimental_exec_dynamic": _BOOL,
    "set_affinity": _BOOL,  # threads are not pinned
    "enable_memory_stats": _BOOL,
    "enable_conditionals": _BOOL,
    "bytes_per_sample": sch.Int(0),  # a memory hint; pipestate allocates with numpy
    "max_streams": sch.Int(-1),  # CUDA streams: no GPU here
    "default_cuda_stream_priority": sch.Int(),
    "max_batch_size": sch.Int(1, MAX_BATCH_SIZE),
    "py_num_workers": sch.Int(0, MAX_THREADS),  # worker processes of external_source(parallel=True); 0: none
    "py_start_method": sch.Str(("fork", "spawn", "forkserver")),
    "py_callback_pickler": sch.Anything("a pickler module or (module, kwargs)"),
    "output_dtype": sch.Anything("a data type or a list of them (one per output)"),
    "output_ndim": sch.Anything("an int or a list of ints (one per output)"),
    "output_layout": sch.Anything("a layout string or a list of them (one per output)"),
    "stream_policy": sch.Anything("a StreamPolicy"),  # CUDA streams: no GPU here
    "concurrency": sch.Anything("an OperatorConcurrency"),  # how DALI's executor overlaps operators
}


class OperatorConcurrency(enum.Enum):
    """DALI's ``OperatorConcurrency`` (pipeline option ``concurrency``): accepted; pipestate runs the
    operators of a batch one after another, each over the pipeline's threads."""

    NONE = "none"
    BACKEND = "backend"
    FULL = "full"
    UNSPECIFIED = "unspecified"


class StreamPolicy(enum.Enum):
    """DALI's ``StreamPolicy`` (pipeline option ``stream_policy``): CUDA streams, accepted (no GPU here)."""

    SINGLE = "single"
    PER_BACKEND = "per_backend"
    PER_OPERATOR = "per_operator"
    UNSPECIFIED = "unspecified"


ALL = frozenset(USED) | frozenset(COMPATIBILITY)


@dataclasses.dataclass(frozen=True)
class Options:
    """The checked options of one pipeline."""

    batch_size: int
    num_threads: int
    prefetch_queue_depth: int
    enable_checkpointing: bool
    seed: int | None  # None: draw one (or adopt a checkpoint's)
    device_id: int | None
    extra: dict[str, Any]


def check(
    batch_size: Any,
    num_threads: Any,
    device_id: Any,
    seed: Any,
    prefetch_queue_depth: Any,
    enable_checkpointing: Any,
    extra: dict[str, Any],
) -> Options:
    """Check every option; return them normalized.

    Raises:
        TypeError: an unknown option, or a value of the wrong type (naming the option).
        ValueError: a value out of range (naming the option and the range).
    """
    unknown = sorted(set(extra) - set(COMPATIBILITY))
    if unknown:
        raise TypeError(f"unknown pipeline option(s) {unknown}; pipeline options are {sorted(ALL)}")
    if batch_size is None:
        raise TypeError("the pipeline option batch_size is required (a positive int)")
    batch_size = sch.Int(1, MAX_BATCH_SIZE).check(batch_size, "pipeline option batch_size")
    num_threads = (
        1 if num_threads in (None, -1) else sch.Int(1, MAX_THREADS).check(num_threads, "pipeline option num_threads")
    )
    if device_id is not None:
        device_id = sch.Int().check(device_id, "pipeline option device_id")
    if seed is not None:
        seed = sch.Int(-1, 2**63 - 1).check(seed, "pipeline option seed")
        if seed == -1:
            seed = None
    if isinstance(prefetch_queue_depth, dict):
        if "cpu_size" not in prefetch_queue_depth or set(prefetch_queue_depth) - {"cpu_size", "gpu_size"}:
            raise TypeError(
                f"pipeline option prefetch_queue_depth={prefetch_queue_depth!r}: give an int or "
                "{'cpu_size': n, 'gpu_size': m} (pipestate uses cpu_size)"
            )
        prefetch_queue_depth = prefetch_queue_depth["cpu_size"]
    depth = sch.Int(1, MAX_PREFETCH_DEPTH).check(prefetch_queue_depth, "pipeline option prefetch_queue_depth")
    checkpointing = sch.Bool().check(enable_checkpointing, "pipeline option enable_checkpointing")
    checked = {k: None if v is None else COMPATIBILITY[k].check(v, f"pipeline option {k}") for k, v in extra.items()}
    return Options(batch_size, num_threads, depth, checkpointing, seed, device_id, checked)


def check_uncaptured(value: Any) -> str:
    """Check the pipeline option ``uncaptured_sources``: what restoring does with an external source whose
    position pipestate cannot capture (``"continue"``: read it afresh, as DALI; ``"refuse"``: raise).

    Raises:
        ValueError: another value.
    """
    if value not in UNCAPTURED_SOURCES:
        raise ValueError(f"pipeline option uncaptured_sources={value!r}: use one of {list(UNCAPTURED_SOURCES)}")
    return value
