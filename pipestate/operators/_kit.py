"""The operator kit: operators written for one sample, checked inputs, and DALI's saturating cast.

A :class:`SampleOperator` declares its inputs (``INPUTS``: :class:`~pipestate.operators.schema.Input`) and
arguments (``ARGS``) and implements :meth:`SampleOperator.sample` for one sample. The kit does the rest:

- checks each input batch against its declaration (element type, dimensions, layout), naming the
  operator, the input and the sample;
- resolves every argument for each sample: the constant, or that sample's value of a ``DataNode``
  argument (the runtime has already checked every sample against the argument's declaration);
- runs the samples on the pipeline's worker threads (``ctx.map``; results in sample order, so the
  output never depends on the number of threads);
- returns a ragged :class:`~pipestate.batch.Batch` of the samples as computed (no stacking copy) with
  the input's layout unless the operator says otherwise, and checks that every sample of an output
  has the same element type and number of dimensions.

Randomness: :attr:`Sample.rng` is a numpy ``Generator`` of that sample alone, keyed by the operator's
stream and the sample's identity (``ctx.sample_ids``); it is created on first use (~10 µs). An operator
that draws for the whole batch at once uses ``ctx.stream(self.rng_key)`` in :meth:`SampleOperator.prepare`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from pipestate.batch import Batch
from pipestate.errors import OperatorError
from pipestate.operators import schema as sch
from pipestate.operators.base import Operator, RunContext
from pipestate.rng import Stream


def saturate_cast(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert ``array`` to ``dtype`` as DALI does: to an integer type, round half away from zero and clamp
    to the type's range; to bool, ``!= 0``; between floating-point types, IEEE conversion (overflow: inf)."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind in "iu" and array.dtype.kind == "f":
        return _float_to_int(array, dtype)
    if dtype == np.float16 and array.dtype.kind == "f":
        return _to_float16(array)
    if dtype.kind in "iu" and array.dtype.kind in "iub":
        info = np.iinfo(dtype)
        if array.dtype.kind != "b":
            array = np.clip(array, info.min, info.max)
    if dtype.kind == "b":
        if array.dtype.kind == "f":  # DALI rounds floats first: 0.2 is False, 0.5 True, NaN True
            return ~(np.abs(array) < 0.5)
        return array != 0
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range floats become inf, as in DALI
        return array.astype(dtype)


def _to_float16(array: np.ndarray) -> np.ndarray:
    """float32/float64 -> float16 rounding ties away from zero, as DALI's conversion (numpy rounds them to even)."""
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf, as in DALI
        nearest = array.astype(np.float16)
        exact = array.astype(np.float64)
        low = nearest.astype(np.float64)
        toward = np.nextafter(nearest, np.where(exact > low, np.float16(np.inf), np.float16(-np.inf)))
        tie = (exact != low) & (exact == (low + toward.astype(np.float64)) / 2)
    away = tie & (np.abs(toward) > np.abs(nearest))
    if away.any():
        nearest = np.where(away, toward, nearest)
    return nearest


def _float_to_int(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Clamp to the type's range (infinities too), round half away from zero exactly (as ``std::round``: no
    ``x + 0.5``), NaN to 0."""
    info = np.iinfo(dtype)
    if array.ndim == 0:
        return _float_to_int(array.reshape(1), dtype)[0]
    if array.dtype.itemsize < 4:
        array = array.astype(np.float32)  # exact; the maximum of wide integer types must fit
    top = array.dtype.type(info.max)
    fits = int(top) <= info.max  # float32 rounds the int32 maximum up: saturate those values exactly
    high = top if fits else np.nextafter(top, array.dtype.type(0))
    clipped = np.clip(array, float(info.min), float(high))  # integer-valued bounds: rounding stays inside
    whole = np.trunc(clipped)
    clipped -= whole
    clipped *= 2
    np.trunc(clipped, out=clipped)
    clipped += whole
    nan = np.isnan(clipped)
    if nan.any():
        clipped[nan] = 0
    result = clipped.astype(dtype)
    if not fits:
        result[array >= top] = info.max
    return result


class Sample:
    """What :meth:`SampleOperator.sample` learns about its sample.

    Attributes:
        index: The sample's index in the batch.
        id: The sample's identity (the key of its random draws; see ``RunContext.sample_ids``).
        layouts: The effective layout of each input (``""``: none).
        source: Where the sample came from (e.g. its file name; ``""`` when unknown), for error messages.
    """

    __slots__ = ("index", "id", "layouts", "source", "_key", "_rng")

    def __init__(self, index: int, id: int, layouts: tuple[str, ...], source: str, key: int) -> None:
        self.index, self.id, self.layouts, self.source = index, id, layouts, source
        self._key = key
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        """This sample's own random generator (created on first use; the same draws after any restore)."""
        if self._rng is None:
            self._rng = Stream(self._key, self.id, 1).generator(0)
        return self._rng


class SampleOperator(Operator):
    """Base of operators written for one sample (see the module documentation).

    Subclasses set ``INPUTS`` and ``ARGS`` and implement :meth:`sample`; optionally :meth:`prepare` (work
    for the whole batch before the samples, e.g. drawing parameters), :meth:`dense` (a vectorized path for
    batches whose samples share a shape) and :meth:`output_layout`.
    """

    INPUTS: ClassVar[tuple[sch.Input, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._TENSOR_KINDS = {a.name: a.kind for a in cls.SCHEMA if a.tensor}

    def validate(self) -> None:
        required = sum(not i.optional for i in self.INPUTS)
        if not required <= len(self.inputs) <= len(self.INPUTS):
            names = ", ".join(i.name for i in self.INPUTS) or "none"
            count = str(required) if required == len(self.INPUTS) else f"{required} to {len(self.INPUTS)}"
            raise TypeError(f"fn.{self.type}() takes {count} input(s) ({names}); got {len(self.inputs)}")

    # ---- what subclasses implement ------------------------------------------------------------------
    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> Any:
        """Compute one sample: an array, or a tuple of arrays (one per output).

        Args:
            s: The sample's index, identity, input layouts, source and random generator.
            inputs: The sample of each input.
            args: Every argument, resolved for this sample (plus what :meth:`prepare` returned for it).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample()")

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> dict[str, Sequence] | None:
        """Batch-wide work before the samples run (e.g. checks between per-sample arguments, naming the
        sample, or parameters drawn with ``ctx.stream(self.rng_key)``); return ``{name: one value per
        sample}`` to add to each sample's ``args``, or ``None``."""
        return None

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        """A vectorized path, tried when every input's samples share one shape: ``inputs`` are arrays with
        the batch first, ``args`` holds constants and, for ``DataNode`` arguments, arrays with the batch
        first. Return the outputs (batch first) or ``None`` to run per sample. It must give exactly what
        the per-sample path gives."""
        return None

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        """The layout of output ``index`` whose samples have ``ndim`` dimensions (default: the first
        input's layout when it has as many letters, else none)."""
        layout = layouts[0] if layouts else ""
        return layout if len(layout) == ndim else ""

    # ---- the kit ------------------------------------------------------------------------------------
    def check_inputs(self, inputs: Sequence[Batch]) -> tuple[str, ...]:
        """Check the input batches against ``INPUTS``; return their effective layouts.

        Raises:
            TypeError: an input of a type, dimension or layout the operator does not accept.
        """
        layouts = []
        for spec, batch in zip(self.INPUTS, inputs):
            dtypes, ndims = batch.dtypes_and_ndims()
            layouts.append(spec.check(dtypes, ndims, batch.layout(), "input"))
        return tuple(layouts)

    def run(self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch]) -> tuple[Batch, ...]:
        layouts = self.check_inputs(inputs)
        n = ctx.batch_size
        extra = self.prepare(ctx, inputs, arg_inputs, layouts)
        vectorized = type(self).dense is not SampleOperator.dense  # else stacking the batch would be wasted
        if vectorized and not extra and all(b.is_dense_tensor() for b in (*inputs, *arg_inputs.values())):
            args = dict(self.args)
            args.update((k, b.as_array()) for k, b in arg_inputs.items())
            outputs = self.dense(ctx, [b.as_array() for b in inputs], args, layouts)
            if outputs is not None:
                return tuple(self._batch(k, o, layouts, inputs) for k, o in enumerate(outputs))
        per_sample = self._per_sample_args(n, arg_inputs, extra)
        ids = ctx.sample_ids
        sources = inputs[0].sources() if inputs else None
        key = self.rng_key

        def one(i: int) -> Any:
            s = Sample(i, int(ids[i]), layouts, sources[i] if sources else "", key)
            try:
                return self.sample(s, tuple(b[i] for b in inputs), per_sample[i])
            except Exception as exc:
                where = f" ({s.source})" if s.source else ""
                raise OperatorError(
                    f"operator {self.name!r} ({self.type}) failed on sample {i}{where} in epoch {ctx.epoch}, "
                    f"iteration {ctx.iteration_in_epoch}: {type(exc).__name__}: {exc}",
                    self.name,
                ) from exc

        results = ctx.map(one, range(n))
        if self.num_outputs == 1:
            columns: list[list] = [[r[0] if isinstance(r, tuple) else r for r in results]]
        else:
            columns = [list(col) for col in zip(*results)] if n else [[] for _ in range(self.num_outputs)]
        return tuple(self._batch(k, col, layouts, inputs) for k, col in enumerate(columns))

    def _per_sample_args(self, n: int, arg_inputs: dict[str, Batch], extra: dict | None) -> Sequence[Mapping]:
        if not arg_inputs and not extra:
            return [self.args] * n
        base = dict(self.args)
        kinds = self._TENSOR_KINDS
        columns = [(k, kinds[k], b) for k, b in arg_inputs.items()]
        out = []
        for i in range(n):
            args = base.copy()
            for name, kind, batch in columns:
                args[name] = kind.sample_value(np.asarray(batch[i]))
            if extra:
                for name, values in extra.items():
                    args[name] = values[i]
            out.append(args)
        return out

    def _batch(self, k: int, data: Any, layouts: tuple[str, ...], inputs: list[Batch]) -> Batch:
        if isinstance(data, np.ndarray):
            batch = Batch(data)
        else:
            batch = Batch([np.asarray(x) for x in data])
        dtypes, ndims = batch.dtypes_and_ndims()
        if len(dtypes) > 1 or len(ndims) > 1:
            raise OperatorError(
                f"operator {self.name!r} ({self.type}) produced output {k} with samples of different types or "
                f"dimensions ({sorted(map(str, dtypes))}, ndim {sorted(ndims)}): an operator's output has one of each",
                self.name,
            )
        layout = self.output_layout(k, layouts, next(iter(ndims))) if ndims else ""
        sources = inputs[0].sources() if inputs else None
        return batch.with_meta(layout, sources)
