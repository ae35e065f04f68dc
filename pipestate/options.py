"""Pipeline options: the ones pipestate uses, and DALI's others, accepted so DALI code runs unchanged.

Every option is checked here, when the pipeline is created, with an error naming it and saying what is
accepted. The accepted ranges are DALI's (``tests/test_pipeline_options_dali.py`` compares them with
DALI's on the same values); the deliberate differences are listed in ``docs/migrating-from-dali.md``.
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
import warnings
from typing import Any

from pipestate.dtypes import to_numpy_dtype
from pipestate.errors import PipestateError
from pipestate.operators import schema as sch
from pipestate.types import DALIDataType

INT32_MAX = 2**31 - 1  # DALI's C++ pipeline takes the batch size, thread count and queue depths as int32
MAX_BATCH_SIZE = INT32_MAX
MAX_PREFETCH_DEPTH = INT32_MAX  # batches computed ahead of run(): a large depth costs memory, as in DALI
MAX_THREADS = 1024  # DALI accepts more, then fails when the system cannot create them; pipestate refuses
SEED_MAX = 2**63 - 1  # a negative seed means "draw one", as None (DALI's deprecated spelling)


class StreamPolicy(enum.Enum):
    """DALI's CUDA stream policy (a pipeline option accepted for compatibility: no GPU here)."""

    SINGLE = 1
    PER_BACKEND = 2
    PER_OPERATOR = 3
    UNSPECIFIED = 0


class OperatorConcurrency(enum.Enum):
    """DALI's operator concurrency policy (a pipeline option accepted for compatibility: the executor here
    runs operators in order and parallelizes the samples of each)."""

    NONE = 1
    BACKEND = 2
    FULL = 3
    UNSPECIFIED = 0


class Flag(sch.Kind):
    """A DALI boolean option: ``None``, a bool or a number, taken by its truth value (as DALI's C++
    binding converts it); a string or a container is a mistake."""

    text = "True or False"

    def check(self, value: Any, where: str) -> bool:
        if value is None or isinstance(value, (bool, numbers.Number)) and not isinstance(value, complex):
            return bool(value)
        if type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "biuf":
            return bool(value)
        raise TypeError(f"{where}={value!r} must be {self.text}")


class Deprecated(sch.Kind):
    """An option DALI deprecated and ignores: any value, with DALI's warning unless ``None``."""

    text = "any value (deprecated, no effect)"

    def check(self, value: Any, where: str) -> Any:
        if value is not None:
            warnings.warn(f"The `{where.split()[-1]}` is deprecated and has no effect.", Warning, stacklevel=5)
        return value


class Member(sch.Kind):
    """A member of an enum (or ``None``)."""

    def __init__(self, enum_type: type[enum.Enum]) -> None:
        self.enum_type = enum_type
        self.text = f"a pipestate.{enum_type.__name__} member or None"

    def check(self, value: Any, where: str) -> Any:
        if value is not None and not isinstance(value, self.enum_type):
            raise TypeError(f"{where}={value!r} must be {self.text}")
        return value


class PerOutput(sch.Kind):
    """DALI's ``output_dtype``/``output_ndim``/``output_layout``: one value for every output, a list of
    them (one per output; ``None`` entries are wildcards), or ``None``. DALI's own checks, exactly."""

    def __init__(self, what: str, accepts: tuple[type, ...], low: int | None = None) -> None:
        self.what, self.accepts, self.low = what, accepts, low
        self.text = f"{what}, a list of them (one per output) or None"

    def check(self, value: Any, where: str) -> Any:
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if not isinstance(item, self.accepts):
                raise TypeError(f"{where}={value!r} must be {self.text}; found {type(item).__name__}")
            if self.low is not None and item < self.low:
                raise ValueError(f"{where}={value!r} must be {self.text}; found {item}")
        return value


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
    "partial_restore",  # pipestate's own: restore a checkpoint of another version of the definition
)
UNCAPTURED_SOURCES = ("continue", "refuse")

# DALI's other options: accepted and checked; their effect on pipestate is in the docs (user guide).
COMPATIBILITY: dict[str, sch.Kind] = {
    "exec_pipelined": Flag(),  # pipestate always prefetches on a background thread
    "exec_async": Flag(),
    "exec_dynamic": Flag(),
    "experimental_exec_dynamic": Flag(),
    "set_affinity": Flag(),  # threads are not pinned
    "enable_memory_stats": Flag(),
    "enable_conditionals": Flag(),  # DALI takes it in pipeline_def; pipestate in Pipeline too
    "bytes_per_sample": sch.Int(0, 2**64 - 1),  # a memory hint; pipestate allocates with numpy
    "max_streams": Deprecated(),  # CUDA streams: no GPU here
    "default_cuda_stream_priority": Deprecated(),
    "stream_policy": Member(StreamPolicy),
    "concurrency": Member(OperatorConcurrency),
    "py_num_workers": sch.Int(0, MAX_THREADS),  # worker processes of external_source(parallel=True); 0: none
    "py_start_method": sch.Str(("fork", "spawn", "forkserver")),
    "py_callback_pickler": sch.Anything("a pickler module or (module, kwargs)"),
    "output_dtype": PerOutput("a types.DALIDataType", (DALIDataType,)),
    "output_ndim": PerOutput("an int >= 0", (int,), low=0),
    "output_layout": PerOutput("a layout string", (str,)),
}
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
        ValueError: a value out of range, or options that exclude each other (naming them).
    """
    unknown = sorted(set(extra) - set(COMPATIBILITY))
    if unknown:
        raise TypeError(f"unknown pipeline option(s) {unknown}; pipeline options are {sorted(ALL)}")
    if batch_size is None:
        raise TypeError("the pipeline option batch_size is required (a positive int)")
    batch_size = sch.Int(1, MAX_BATCH_SIZE).check(batch_size, "pipeline option batch_size")
    if num_threads is not None:
        num_threads = sch.Int(1, MAX_THREADS).check(num_threads, "pipeline option num_threads")
    if device_id is not None:
        device_id = sch.Int().check(device_id, "pipeline option device_id")
    if seed is not None:
        negative = isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and int(seed) < 0
        seed = -1 if negative else sch.Int(None, SEED_MAX).check(seed, "pipeline option seed")
        if seed < 0:  # any negative int, as DALI
            warnings.warn(
                "The use of negative seed to use automatic seed asignment is deprecated. Use `None` instead.",
                stacklevel=4,
            )
            seed = None
    checked = {k: None if v is None else COMPATIBILITY[k].check(v, f"pipeline option {k}") for k, v in extra.items()}
    depth = _prefetch_depth(prefetch_queue_depth, checked)
    checkpointing = Flag().check(enable_checkpointing, "pipeline option enable_checkpointing")
    if checked.get("py_callback_pickler") is not None and checked.get("py_start_method", "fork") in (None, "fork"):
        raise ValueError("``py_callback_pickler`` should not be set when 'fork' start method is used.")
    return Options(batch_size, num_threads or 1, depth, checkpointing, seed, device_id, checked)


def _prefetch_depth(value: Any, extra: dict[str, Any]) -> int:
    """The depth pipestate uses: ``value``, or DALI's separated queues' ``cpu_size`` (both sizes checked)."""
    where = "pipeline option prefetch_queue_depth"
    if not isinstance(value, dict):
        return sch.Int(1, MAX_PREFETCH_DEPTH).check(value, where)
    if set(value) != {"cpu_size", "gpu_size"}:
        raise TypeError(
            f"{where}={value!r}: give an int or {{'cpu_size': n, 'gpu_size': m}} (both keys, no other; pipestate "
            "uses cpu_size)"
        )
    sizes = {k: sch.Int(1, MAX_PREFETCH_DEPTH).check(v, f"{where}[{k!r}]") for k, v in value.items()}
    if extra.get("exec_async") is False:
        raise ValueError("`exec_async` must not evaluate to `False` when using separated queues.")
    if extra.get("exec_dynamic") or extra.get("experimental_exec_dynamic"):
        raise ValueError(
            f"{where}={value!r} (separated queues) cannot be combined with exec_dynamic=True: DALI has no such executor"
        )
    return sizes["cpu_size"]


def check_uncaptured(value: Any) -> str:
    """Check the pipeline option ``uncaptured_sources``: what restoring does with an external source whose
    position pipestate cannot capture (``"continue"``: read it afresh, as DALI; ``"refuse"``: raise).

    Raises:
        ValueError: another value.
    """
    if value not in UNCAPTURED_SOURCES:
        raise ValueError(f"pipeline option uncaptured_sources={value!r}: use one of {list(UNCAPTURED_SOURCES)}")
    return value


class OutputSpecs:
    """The pipeline options ``output_dtype``/``output_ndim``/``output_layout``, one entry per output, and
    the check of each produced batch against them."""

    def __init__(self, specs: dict[str, list]) -> None:
        self.specs = specs

    @classmethod
    def from_options(cls, extra: dict[str, Any], count: int) -> OutputSpecs:
        """The specs of a pipeline with ``count`` outputs (a single value applies to every output).

        Raises:
            ValueError: a list with another number of entries than outputs.
        """
        specs = {}
        for key in ("output_dtype", "output_ndim", "output_layout"):
            spec = extra.get(key)
            if spec is None:
                continue
            if isinstance(spec, list) and len(spec) != count:
                raise ValueError(
                    f"the pipeline option {key} lists {len(spec)} entries; the pipeline has {count} outputs"
                )
            specs[key] = spec if isinstance(spec, list) else [spec] * count
        return cls(specs)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def check(self, outputs: tuple) -> None:
        """Check a batch of every output against the specs.

        Raises:
            PipestateError: naming the output, what it has and the option that says otherwise.
        """
        for key, specs in self.specs.items():
            for i, (out, want) in enumerate(zip(outputs, specs)):
                if want is None:
                    continue
                if key == "output_dtype" and out.dtype != to_numpy_dtype(want):
                    raise PipestateError(
                        f"output {i} has type {out.dtype}; the pipeline option output_dtype says {want}"
                    )
                if key == "output_ndim" and any(len(s) != want for s in out.shape()):
                    raise PipestateError(
                        f"output {i} has samples of ndim {len(out.shape()[0])}; output_ndim says {want}"
                    )
                if key == "output_layout" and want and out.layout() != want:
                    raise PipestateError(
                        f"output {i} has layout {out.layout()!r}; the pipeline option output_layout says {want!r}"
                    )
