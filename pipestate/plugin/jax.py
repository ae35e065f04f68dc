"""JAX plugin: DALI's JAX iterator and ``data_iterator`` decorator over pipestate pipelines.

``DALIGenericIterator`` returns a dict mapping the ``output_map`` names to ``jax.Array`` batches; with
several pipelines (one per device), each output is one array over the devices (a leading device axis,
or the layout of ``sharding``). Checkpoints as in DALI (``checkpoints()``, ``checkpoints=`` of the
decorated function) plus ``state_dict()``/``load_state_dict()``. ``jax`` is imported when this module is.

pipestate runs on the CPU: the devices are JAX's CPU devices (several with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``), and ``device_id`` of the pipelines stays ``None``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, Sharding

from pipestate.batch import Batch
from pipestate.pipeline import Pipeline, pipeline_def
from pipestate.plugin.base_iterator import BaseIterator, LastBatchPolicy

__all__ = ["DALIGenericIterator", "LastBatchPolicy", "data_iterator", "default_num_threads_value"]


class DALIGenericIterator(BaseIterator):
    """JAX iterator over one pipeline or several (one per device), as DALI's.

    Args:
        pipelines: A pipeline or a list of pipelines (one per device, in device order).
        output_map: One distinct name per pipeline output.
        size: Samples per epoch of the shard (sum over pipelines); ``-1``: until ``StopIteration``.
        reader_name: The reader whose metadata sets the epoch length and padding.
        auto_reset: Reset by itself at the end of each epoch (``True``/``"yes"``).
        last_batch_padded: Whether the reader pads the last batch (set automatically with ``reader_name``).
        last_batch_policy: ``LastBatchPolicy.FILL`` (default) or ``DROP``; ``PARTIAL`` is not supported
            (as in DALI: the arrays of all devices must have one shape).
        prepare_first_batch: Compute the first batch at construction.
        sharding: A ``jax.sharding.Sharding``: each output is a global array with this sharding, pipeline
            ``i`` giving the ``i``-th shard along the first axis.
        pmap_compatible: Give outputs a leading device axis even for one pipeline (default: only for
            several pipelines without ``sharding``).

    Raises:
        ValueError: ``PARTIAL``, duplicate names, or a ``sharding`` that is not a ``jax.sharding.Sharding``
            or has fewer devices than pipelines.
    """

    def __init__(
        self,
        pipelines: Pipeline | list[Pipeline],
        output_map: list[str],
        size: int = -1,
        reader_name: str | None = None,
        auto_reset: bool | str | None = False,
        last_batch_padded: bool = False,
        last_batch_policy: LastBatchPolicy = LastBatchPolicy.FILL,
        prepare_first_batch: bool = True,
        sharding: Sharding | None = None,
        pmap_compatible: bool | None = None,
    ) -> None:
        names = list(output_map)
        if len(set(names)) != len(names):
            raise ValueError(f"output_map names must be distinct; got {names}")
        self.output_map = names
        if sharding is not None and not isinstance(sharding, Sharding):
            raise ValueError(f"sharding={sharding!r} must be a jax.sharding.Sharding")
        if last_batch_policy is LastBatchPolicy.PARTIAL:
            raise ValueError("the JAX iterator does not support LastBatchPolicy.PARTIAL (as DALI's); use FILL or DROP")
        self._sharding = sharding
        self._pmap_compatible = bool(pmap_compatible)
        super().__init__(
            pipelines, size, reader_name, auto_reset, None, last_batch_padded, last_batch_policy, prepare_first_batch
        )
        self._devices = self._placement()
        self._prepare()

    def _placement(self) -> list[Any]:
        """The device of each pipeline's arrays."""
        n = self._num_gpus
        if self._sharding is not None:
            devices = sorted(self._sharding.addressable_devices, key=lambda d: d.id)
            if isinstance(self._sharding, NamedSharding):
                devices = list(self._sharding.mesh.devices.flat)
            if len(devices) < n:
                raise ValueError(f"sharding spans {len(devices)} devices but there are {n} pipelines")
            return devices[:n]
        local = jax.local_devices()
        if n > 1 and len(local) >= n:
            return local[:n]
        return [local[0]] * n

    def _convert(self, outputs: list[tuple[Batch, ...]]) -> dict[str, jax.Array]:
        per_pipeline = []
        for i, outs in enumerate(outputs):
            if len(outs) != len(self.output_map):
                raise ValueError(
                    f"the pipeline has {len(outs)} outputs but output_map names {len(self.output_map)}; "
                    "give one name per output"
                )
            arrays = []
            for name, batch in zip(self.output_map, outs):
                try:
                    arrays.append(batch.as_array())
                except ValueError as exc:
                    raise ValueError(f"output {name!r}: JAX needs dense batches ({exc})") from exc
            per_pipeline.append(jax.device_put(arrays, self._devices[i]))  # one transfer call per pipeline
        return {
            name: self._combine(name, [arrays[j] for arrays in per_pipeline]) for j, name in enumerate(self.output_map)
        }

    def _combine(self, name: str, arrays: list[jax.Array]) -> jax.Array:
        if self._num_gpus == 1 and self._sharding is None and not self._pmap_compatible:
            return arrays[0]
        if any(a.shape != arrays[0].shape for a in arrays):
            raise ValueError(f"output {name!r}: the shards differ in shape ({[a.shape for a in arrays]})")
        if self._sharding is not None:
            shape = (len(self._sharding.device_set) * arrays[0].shape[0], *arrays[0].shape[1:])
            return jax.make_array_from_single_device_arrays(shape, self._sharding, arrays)
        if len(set(self._devices)) != len(self._devices):
            return jnp.stack(arrays)
        mesh = jax.sharding.Mesh(np.array(self._devices), axis_names=("device",))
        sharding = NamedSharding(mesh, jax.sharding.PartitionSpec("device"))
        shape = (len(arrays), *arrays[0].shape)
        return jax.make_array_from_single_device_arrays(shape, sharding, [a[None] for a in arrays])

    def __next__(self) -> dict[str, jax.Array]:
        return super().__next__()


def default_num_threads_value() -> int:
    """The ``num_threads`` the decorator gives pipelines when the call does not (4, as DALI)."""
    return 4


def data_iterator(
    pipeline_fn: Callable[..., Any] | None = None,
    output_map: list[str] | None = None,
    size: int = -1,
    reader_name: str | None = None,
    auto_reset: bool | str | None = False,
    last_batch_padded: bool = False,
    last_batch_policy: LastBatchPolicy = LastBatchPolicy.FILL,
    prepare_first_batch: bool = True,
    sharding: Sharding | None = None,
    devices: list[Any] | None = None,
    pmap_compatible: bool | None = None,
) -> Callable[..., Any]:
    """Turn a pipeline definition function into a factory of :class:`DALIGenericIterator` (DALI's decorator).

    The decorated function takes the function's arguments, pipeline options (``batch_size``,
    ``num_threads`` (default 4), ``seed``, ``enable_checkpointing``, ...) and ``checkpoints=`` (from
    :meth:`~DALIGenericIterator.checkpoints`). With ``sharding`` or ``devices``, it builds one pipeline per
    device, calling the function with ``shard_id=`` and ``num_shards=`` (it must accept them), and
    ``batch_size`` is the global batch size (split evenly over the devices).

    Args:
        pipeline_fn: The function (for use without parentheses).
        output_map, size, reader_name, auto_reset, last_batch_padded, last_batch_policy,
            prepare_first_batch, sharding, pmap_compatible: As for :class:`DALIGenericIterator`.
        devices: JAX devices, one pipeline each; outputs get a leading device axis (for ``jax.pmap``).

    Raises:
        ValueError: both ``sharding`` and ``devices`` are given.
    """
    if sharding is not None and devices is not None:
        raise ValueError("give sharding or devices, not both")
    names = list(output_map or [])

    def decorate(func: Callable[..., Any]) -> Callable[..., DALIGenericIterator]:
        factory = pipeline_def(func)

        @functools.wraps(func)
        def create(*args: Any, checkpoints: list[bytes] | None = None, **kwargs: Any) -> DALIGenericIterator:
            kwargs.setdefault("num_threads", default_num_threads_value())
            common = dict(
                output_map=names,
                size=size,
                reader_name=reader_name,
                auto_reset=auto_reset,
                last_batch_padded=last_batch_padded,
                last_batch_policy=last_batch_policy,
                prepare_first_batch=prepare_first_batch,
            )
            if sharding is None and devices is None:
                pipe = factory(*args, checkpoint=checkpoints[0] if checkpoints else None, **kwargs)
                return DALIGenericIterator([pipe], pmap_compatible=pmap_compatible, **common)
            use = list(devices) if devices is not None else jax.local_devices()
            num_shards = len(devices) if devices is not None else jax.device_count()
            if checkpoints and len(checkpoints) != len(use):
                raise ValueError(f"{len(checkpoints)} checkpoints given for {len(use)} devices; give one per device")
            if "batch_size" not in kwargs:
                raise TypeError("give batch_size= (the global batch size) to the decorated function")
            kwargs["batch_size"] = kwargs["batch_size"] // len(jax.devices())
            pipes = [
                factory(
                    *args,
                    **kwargs,
                    shard_id=device.id,
                    num_shards=num_shards,
                    checkpoint=checkpoints[i] if checkpoints else None,
                )
                for i, device in enumerate(use)
            ]
            if sharding is not None:
                return DALIGenericIterator(pipes, sharding=sharding, pmap_compatible=pmap_compatible, **common)
            return DALIGenericIterator(
                pipes, pmap_compatible=True if pmap_compatible is None else pmap_compatible, **common
            )

        return create

    return decorate(pipeline_fn) if pipeline_fn is not None else decorate
