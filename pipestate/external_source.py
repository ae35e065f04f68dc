"""DALI's ``nvidia.dali.external_source`` module: :func:`external_source` and the class :class:`ExternalSource`.

``ExternalSource`` is the class-style form (``ops.ExternalSource``): construct it with any of the arguments
of ``fn.external_source`` and call it in ``define_graph``; each call adds one external source (or
``num_outputs`` of them) to the pipeline. Without a ``source``, the pipeline is fed with
``Pipeline.feed_input`` (see :mod:`pipestate.define_graph`). Arguments given twice follow DALI's rules.
"""

from __future__ import annotations

from typing import Any

from pipestate import fn
from pipestate.operators.external_source import ExternalSource as _Operator
from pipestate.tracing import add_operator

__all__ = ["ExternalSource", "external_source"]

external_source = fn.external_source

# Arguments that may be given at construction or at the call, not both; DALI raises ValueError for the
# first group and RuntimeError for the second.
_ONCE_VALUE_ERROR = ("batch", "batch_info", "bytes_per_sample_hint", "no_copy", "parallel", "prefetch_queue_depth")
_ONCE_RUNTIME_ERROR = ("cuda_stream", "dtype", "layout", "ndim", "use_copy_kernel")


class ExternalSource:
    """DALI's ``ops.ExternalSource``.

    Args:
        source: The data source (as ``fn.external_source``'s), or ``None`` to feed the pipeline with
            ``Pipeline.feed_input``; may be given at the call instead.
        num_outputs: If set, the source returns tuples and a call returns a list of this many DataNodes.
        **kwargs: Any other argument of ``fn.external_source`` (``cycle``, ``layout``, ``dtype``, ``batch``,
            ``parallel``, ``name``, ...).

    Raises:
        ValueError: ``name`` and ``num_outputs`` together (a named source has one output).
    """

    op_class = _Operator
    schema_name = "ExternalSource"
    deprecated = None

    def __init__(self, source: Any = None, num_outputs: int | None = None, **kwargs: Any) -> None:
        if kwargs.get("name") is not None and num_outputs is not None:
            raise ValueError("`num_outputs` is not compatible with named `ops.ExternalSource`")
        self._source = source
        self._num_outputs = num_outputs
        self._kwargs = {k: v for k, v in kwargs.items() if v is not None and not (k == "repeat_last" and v is False)}

    @property
    def device(self) -> str:
        """Where the operator runs (always ``"cpu"``)."""
        return self._kwargs.get("device", "cpu")

    def __call__(self, *, source: Any = None, cycle: Any = None, name: str | None = None, **kwargs: Any) -> Any:
        """Add an external source to the pipeline being defined; return its DataNode (a list with ``num_outputs``).

        Raises:
            RuntimeError: ``source`` or one of ``layout``/``dtype``/``ndim``/``cuda_stream``/``use_copy_kernel``
                was already given at construction.
            ValueError: ``cycle`` without a ``source`` in this call; one of ``batch``/``batch_info``/``parallel``/
                ``no_copy``/``prefetch_queue_depth``/``bytes_per_sample_hint`` given twice.
        """
        args = dict(self._kwargs)
        if source is not None:
            if self._source is not None:
                raise RuntimeError("``source`` already specified in constructor.")
            args["source"] = source
            if cycle is not None:
                args["cycle"] = cycle
        else:
            if cycle is not None:
                raise ValueError(
                    "The argument ``cycle`` can only be specified if ``source`` is a reusable iterable or a generator "
                    "function given in the same call."
                )
            if self._source is not None:
                args["source"] = self._source
        for key, value in kwargs.items():
            if value is None or (key == "repeat_last" and value is False):
                continue
            if key in args:
                if key in _ONCE_VALUE_ERROR:
                    raise ValueError(f"The argument ``{key}`` already specified in constructor.")
                if key in _ONCE_RUNTIME_ERROR:
                    raise RuntimeError(f"``{key}`` already specified in constructor.")
                raise ValueError(f"The argument `{key}` was already specified in __init__.")
            args[key] = value
        if name is not None:
            args["name"] = self._kwargs["name"] = name  # kept for the next calls, as DALI does
        if self._num_outputs is not None:
            if "name" in args:
                raise RuntimeError("``num_outputs`` is not compatible with named `ops.ExternalSource`.")
            args["num_outputs"] = self._num_outputs
        return add_operator(self.op_class, (), args)
