"""What a Checkpointer step can hold, and how each kind of state is saved and restored.

``to_part(name, obj)`` turns one object into a :class:`~pipestate.io.step.Part`; a :class:`Restorer`
checks that the parts of a step fit the objects to restore into and then applies them. Frameworks are
imported only when an object of theirs is given (or a part of their kind is loaded): ``torch`` for
``torch`` parts, TensorFlow for ``tensorflow`` parts, jax for JAX arrays.

Kinds, by the object given (first match):

- ``bytes``: kind ``bytes``, replaced in the mapping on restore;
- a pipestate ``Pipeline`` (or an object with ``checkpoint()``/``restore()``): ``pipeline``, in place;
- a pipestate framework iterator: ``iterator`` (its counters included), in place (``load_state_dict``);
- an object with ``state_dict()``/``load_state_dict()`` (torch modules, optimizers, schedulers ...):
  ``torch`` (``data`` without torch), in place;
- torch tensors, or containers of them: ``torch``, replaced;
- a Keras model (any backend): ``keras``, its and its optimizer's variables (seed generators
  included), in place;
- a ``tf.train.Checkpoint`` or TensorFlow trackable (``tf.Module``, ``tf.Variable``): ``tensorflow``, in
  place;
- numpy/JAX arrays, or dicts, lists and tuples (any JAX pytree) of them: ``arrays``, replaced, in the
  structure of the value given;
- plain data (``None``, bool, int, float, str, lists, dicts with string keys): ``data``, replaced.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, MutableMapping
from typing import Any

import numpy as np

from pipestate.errors import CheckpointMismatchError, CorruptCheckpointError
from pipestate.io.base import validate_checkpoint
from pipestate.io.step import Part
from pipestate.pipeline import Pipeline

ACCEPTED = (
    "bytes, a pipestate Pipeline or framework iterator, an object with state_dict()/load_state_dict() (torch "
    "modules, optimizers ...), torch tensors, a Keras model, a tf.train.Checkpoint or TensorFlow trackable, numpy/JAX "
    "arrays (or dicts, lists, tuples of them), or plain data (None, bool, int, float, str, lists, dicts with "
    "string keys)"
)


def _iterator_class() -> type | None:
    module = sys.modules.get("pipestate.plugin.base_iterator")
    return getattr(module, "BaseIterator", None)


def _is_iterator(obj: Any) -> bool:
    cls = _iterator_class()
    return cls is not None and isinstance(obj, cls)


def _is_pipeline_like(obj: Any) -> bool:
    """A Pipeline, or an object that stands for one: ``checkpoint()`` returns pipestate checkpoint bytes and
    ``restore(bytes)`` takes them (e.g. the TF plugin's dataset position)."""
    return isinstance(obj, Pipeline) or (
        callable(getattr(obj, "checkpoint", None)) and callable(getattr(obj, "restore", None))
    )


def _is_stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


def _is_torch_value(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if isinstance(obj, torch.Tensor):
        return True
    if isinstance(obj, dict):
        return any(_is_torch_value(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_is_torch_value(v) for v in obj)
    return False


def _is_tf_trackable(obj: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    try:
        base = tf.__internal__.tracking.Trackable
    except AttributeError:  # pragma: no cover - very old TensorFlow
        return isinstance(obj, (tf.train.Checkpoint, tf.Module, tf.Variable))
    return isinstance(obj, base)


def _is_keras_model(obj: Any) -> bool:
    keras = sys.modules.get("keras")
    model = getattr(keras, "Model", None)
    return model is not None and isinstance(obj, model)


def _is_array(obj: Any) -> bool:
    if isinstance(obj, (np.ndarray, np.generic)):
        return True
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(obj, jax.Array)


def _has_arrays(obj: Any) -> bool:
    if _is_array(obj):
        return True
    if isinstance(obj, dict):
        return any(_has_arrays(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_arrays(v) for v in obj)
    jax = sys.modules.get("jax")
    if jax is not None and not isinstance(obj, (str, bytes, int, float, bool, type(None))):
        leaves = jax.tree_util.tree_leaves(obj)
        return any(_is_array(leaf) for leaf in leaves) and not (len(leaves) == 1 and leaves[0] is obj)
    return False


# ---- saving -----------------------------------------------------------------------------------------------
def wrapping_iterator(pipeline: Pipeline) -> Any:
    """The live pipestate framework iterator that drives ``pipeline``, if any."""
    module = sys.modules.get("pipestate.plugin.base_iterator")
    find = getattr(module, "iterator_of", None)
    return find(pipeline) if find is not None else None


def warn_if_driven(pipeline: Pipeline, name: str, action: str, stacklevel: int) -> None:
    """Warn that a pipeline driven by a framework iterator is saved or restored without the iterator."""
    it = wrapping_iterator(pipeline)
    if it is None:
        return
    where = f"part {name!r}: " if name else ""
    warnings.warn(
        f"{where}this pipeline is driven by a {type(it).__name__}; its checkpoint does not hold the iterator's "
        f"counters (where the epoch ends, the last batch's padding): {action} the iterator instead",
        stacklevel=stacklevel,
    )


def to_part(name: str, obj: Any, stacklevel: int = 4) -> Part:
    """Serialize ``obj`` as the part ``name`` (see the module's table).

    Args:
        name: The part's name.
        obj: The state to save.
        stacklevel: For the warning about a pipeline driven by an iterator.

    Returns:
        The part.

    Raises:
        TypeError: ``obj`` is none of the accepted kinds (the message lists them), or plain data holds
            something that is not (e.g. a ``set`` or non-string dict keys).
        ValueError: a pipeline or iterator without ``enable_checkpointing=True``.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return Part(name, "bytes", (bytes(obj),))
    if isinstance(obj, Pipeline):
        warn_if_driven(obj, name, "save", stacklevel + 1)
        return Part(name, "pipeline", (obj.checkpoint(),))
    if _is_iterator(obj):
        return Part(name, "iterator", tuple(obj.checkpoints()), {"class": type(obj).__name__})
    if _is_pipeline_like(obj):
        blob = obj.checkpoint()
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"part {name!r}: {type(obj).__name__}.checkpoint() returned {type(blob).__name__}, not bytes"
            )
        validate_checkpoint(bytes(blob), where=f"part {name!r} ({type(obj).__name__}.checkpoint())")
        return Part(name, "pipeline", (bytes(blob),))
    if _is_stateful(obj):
        state = obj.state_dict()
        if "torch" in sys.modules or _is_torch_value(state):
            return _torch_part(name, state, {"in_place": True, "class": type(obj).__name__})
        return Part(name, "data", (_json(name, state),), {"in_place": True, "class": type(obj).__name__})
    if _is_torch_value(obj):
        return _torch_part(name, obj, {"in_place": False})
    if _is_keras_model(obj):
        return _keras_part(name, obj)
    if _is_tf_trackable(obj):
        return _tf_part(name, obj)
    if _has_arrays(obj):
        return _arrays_part(name, obj)
    try:
        return Part(name, "data", (_json(name, obj),))
    except TypeError:
        raise TypeError(
            f"Checkpointer cannot save part {name!r}, a {type(obj).__name__}: give {ACCEPTED}; or serialize it "
            "yourself and save the bytes"
        ) from None


def _json(name: str, value: Any) -> bytes:
    _check_plain(name, value, "")
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode("utf-8")


def _check_plain(name: str, value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(name, v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"part {name!r}: plain data has a dict key {k!r} at {where or 'the top'}: use str keys")
            _check_plain(name, v, f"{where}[{k!r}]")
        return
    raise TypeError(f"part {name!r}: {type(value).__name__} at {where or 'the top'} is not plain data")


def _torch_part(name: str, value: Any, meta: dict[str, Any]) -> Part:
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return Part(name, "torch", (buffer.getvalue(),), meta)


def _tf_part(name: str, obj: Any) -> Part:
    import tensorflow as tf

    checkpoint = obj if isinstance(obj, tf.train.Checkpoint) else tf.train.Checkpoint(root=obj)
    with tempfile.TemporaryDirectory(prefix="pipestate-tf-") as tmp:
        checkpoint.write(os.path.join(tmp, "part"))
        files = sorted(os.listdir(tmp))
        blobs = []
        for file in files:
            with open(os.path.join(tmp, file), "rb") as f:
                blobs.append(f.read())
    return Part(name, "tensorflow", tuple(blobs), {"files": files, "wrapped": checkpoint is not obj})


def _keras_variables(model: Any) -> tuple[list[Any], list[Any]]:
    optimizer = getattr(model, "optimizer", None)
    opt_vars = list(optimizer.variables) if optimizer is not None and optimizer.built else []
    return list(model.variables), opt_vars


def _keras_part(name: str, model: Any) -> Part:
    import keras

    model_vars, opt_vars = _keras_variables(model)
    arrays = {f"a{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model_vars + opt_vars)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    meta = {"paths": [v.path for v in model_vars + opt_vars], "optimizer_variables": len(opt_vars)}
    return Part(name, "keras", (buffer.getvalue(),), meta)


def _flatten(value: Any) -> tuple[list[str], list[Any], Any]:
    """Leaves of a pytree with their paths, and the structure (a jax treedef, or the value for numpy)."""
    jax = sys.modules.get("jax")
    if jax is not None:
        flat, treedef = jax.tree_util.tree_flatten_with_path(value)
        return [jax.tree_util.keystr(path) for path, _ in flat], [leaf for _, leaf in flat], treedef
    paths: list[str] = []
    leaves: list[Any] = []

    def walk(v: Any, path: str) -> None:
        if isinstance(v, dict):
            for k in sorted(v):
                walk(v[k], f"{path}[{k!r}]")
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]")
        else:
            paths.append(path)
            leaves.append(v)

    walk(value, "")
    return paths, leaves, value


def _arrays_part(name: str, value: Any) -> Part:
    paths, leaves, _ = _flatten(value)
    arrays = {}
    for i, leaf in enumerate(leaves):
        array = np.asarray(leaf)
        if array.dtype == object:
            raise TypeError(f"part {name!r}: the leaf at {paths[i]} is not an array of numbers")
        arrays[f"a{i}"] = array
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return Part(name, "arrays", (buffer.getvalue(),), {"paths": paths})


# ---- loading ------------------------------------------------------------------------------------------------
def load_value(part: Part) -> Any:
    """The value of a part without an object to restore into (``Checkpointer.load_latest()``).

    Returns:
        ``bytes`` for ``bytes`` and ``pipeline`` parts, the iterator's ``state_dict`` (``{"checkpoints":
        [...]}``) for ``iterator``, the data for ``data``, the loaded object (e.g. a ``state_dict``) for
        ``torch``, ``{path: numpy array}`` for ``arrays`` and ``keras``, and the :class:`Part` itself (its
        files) for ``tensorflow``, which restores only into objects (pass them to ``load_latest``).

    Raises:
        CorruptCheckpointError: the part's bytes do not load.
    """
    if part.kind in ("bytes", "pipeline"):
        return part.blobs[0]
    if part.kind == "iterator":
        return {"checkpoints": list(part.blobs)}
    if part.kind == "data":
        return _load_json(part)
    if part.kind == "torch":
        return _load_torch(part)
    if part.kind in ("arrays", "keras"):
        paths, arrays = _load_arrays(part)
        return dict(zip(paths, arrays))
    return part


def _load_json(part: Part) -> Any:
    try:
        return json.loads(part.blobs[0].decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CorruptCheckpointError(f"part {part.name!r}: its data does not parse ({exc})") from exc


def _load_torch(part: Part) -> Any:
    import torch

    try:
        return torch.load(io.BytesIO(part.blobs[0]), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ... for damaged bytes
        raise CorruptCheckpointError(
            f"part {part.name!r}: torch.load(weights_only=True) refused it ({type(exc).__name__}: {exc})"
        ) from exc


def _load_arrays(part: Part) -> tuple[list[str], list[np.ndarray]]:
    paths = part.meta.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise CorruptCheckpointError(f"part {part.name!r}: its list of array paths is missing or damaged")
    try:
        with np.load(io.BytesIO(part.blobs[0]), allow_pickle=False) as npz:
            arrays = [npz[f"a{i}"] for i in range(len(paths))]
    except Exception as exc:  # zipfile.BadZipFile, KeyError, ValueError ...: damaged bytes
        raise CorruptCheckpointError(f"part {part.name!r}: its arrays do not load ({exc})") from exc
    return paths, arrays


class Restorer:
    """Restores the parts of a step into objects, all or nothing for the pipestate parts.

    :meth:`check` validates everything that can be validated without changing anything (names, kinds,
    array structures, loading the bytes); :meth:`apply` then restores pipelines and iterators first,
    rolling them back if a later part fails, and the framework states after them.
    """

    def __init__(self, step: int, parts: dict[str, Part], into: MutableMapping[str, Any]) -> None:
        self.step = step
        self.parts = parts
        self.into = into
        self._actions: list[tuple[int, str, Callable[[], Any]]] = []

    def check(self) -> None:
        """Raise before anything changes when a part is missing or does not fit its object.

        Raises:
            CheckpointMismatchError: a name of ``into`` is not in the step, or a part's kind or structure
                does not fit the object (the message names the part).
            CorruptCheckpointError: a part's bytes do not load.
        """
        missing = [name for name in self.into if name not in self.parts]
        if missing:
            raise CheckpointMismatchError(
                f"step {self.step} has no part {', '.join(map(repr, missing))} (it has "
                f"{', '.join(map(repr, self.parts)) or 'none'}): restore the names it was saved with",
                [f"missing part {name!r}" for name in missing],
            )
        for name, target in self.into.items():
            self._plan(name, self.parts[name], target)

    def _mismatch(self, name: str, part: Part, target: Any) -> CheckpointMismatchError:
        return CheckpointMismatchError(
            f"step {self.step}: part {name!r} was saved as {part.kind!r} data, which cannot be restored into a "
            f"{type(target).__name__}; restore it into the kind of object it was saved from",
            [f"part {name!r}: {part.kind} vs {type(target).__name__}"],
        )

    def _plan(self, name: str, part: Part, target: Any) -> None:
        kind = part.kind
        if kind == "pipeline":
            if not _is_pipeline_like(target):
                raise self._mismatch(name, part, target)
            self._actions.append((0, name, lambda: target.restore(part.blobs[0])))
        elif kind == "iterator":
            if not _is_iterator(target):
                raise self._mismatch(name, part, target)
            if len(part.blobs) != target._num_gpus:
                raise CheckpointMismatchError(
                    f"step {self.step}: part {name!r} was saved from an iterator over {len(part.blobs)} "
                    f"pipeline(s); this one has {target._num_gpus}",
                    [f"part {name!r}: number of pipelines"],
                )
            self._actions.append((0, name, lambda: target.load_state_dict({"checkpoints": list(part.blobs)})))
        elif kind == "torch" and part.meta.get("in_place"):
            if not _is_stateful(target):
                raise self._mismatch(name, part, target)
            state = _load_torch(part)
            self._actions.append((1, name, lambda: target.load_state_dict(state)))
        elif kind == "data" and part.meta.get("in_place"):
            if not _is_stateful(target):
                raise self._mismatch(name, part, target)
            state = _load_json(part)
            self._actions.append((1, name, lambda: target.load_state_dict(state)))
        elif kind == "keras":
            if not _is_keras_model(target):
                raise self._mismatch(name, part, target)
            assign = _keras_restore_plan(self.step, name, part, target)
            self._actions.append((1, name, assign))
        elif kind == "tensorflow":
            if not _is_tf_trackable(target):
                raise self._mismatch(name, part, target)
            self._actions.append((1, name, lambda: _restore_tf(name, part, target)))
        elif kind == "arrays":
            value = _arrays_into(self.step, name, part, target)
            self._actions.append((2, name, lambda: self.into.__setitem__(name, value)))
        else:  # bytes, data, torch values: replace
            if _is_stateful(target) or _is_pipeline_like(target) or _is_iterator(target):
                raise self._mismatch(name, part, target)
            value = load_value(part)
            self._actions.append((2, name, lambda: self.into.__setitem__(name, value)))

    def apply(self) -> None:
        """Restore every part (call :meth:`check` first).

        Raises:
            CheckpointError: a pipestate part does not fit its pipeline; the pipestate parts restored
                before it are rolled back.
            Exception: a framework refused its state (e.g. ``load_state_dict`` of another model); the
                pipestate parts are rolled back, the framework objects restored before it are not.
        """
        undo: list[Callable[[], Any]] = []
        try:
            for order, name, action in sorted(self._actions, key=lambda a: a[0]):
                if order == 0:
                    target = self.into[name]
                    undo.append(_snapshot(target))
                action()
        except BaseException:
            for restore in reversed(undo):
                try:
                    restore()
                except Exception as exc:  # keep the original error; say that the rollback failed too
                    warnings.warn(f"could not roll back a pipestate part after a failed restore: {exc}", stacklevel=2)
            raise


def _snapshot(target: Any) -> Callable[[], Any]:
    if _is_pipeline_like(target):
        saved = target.checkpoint()
        return lambda: target.restore(saved)
    state = target.state_dict()
    return lambda: target.load_state_dict(state)


def _keras_restore_plan(step: int, name: str, part: Part, model: Any) -> Callable[[], None]:
    """Check a ``keras`` part against ``model`` (building its optimizer if the part has its variables) and
    return the assignment to run."""
    paths, arrays = _load_arrays(part)
    n_opt = part.meta.get("optimizer_variables", 0)
    optimizer = getattr(model, "optimizer", None)
    if n_opt and optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)  # its variables must exist to receive the saved values
    model_vars, opt_vars = _keras_variables(model)
    variables = model_vars + (opt_vars if n_opt else [])
    mine = [v.path for v in variables]
    if len(mine) != len(paths):
        raise CheckpointMismatchError(
            f"step {step}: part {name!r} holds {len(paths)} variables ({_few(paths)}); the model (and its "
            f"optimizer) has {len(mine)} ({_few(mine)}): restore into the model it was saved from",
            [f"part {name!r}: number of variables"],
        )
    for variable, path, array in zip(variables, paths, arrays):
        if tuple(variable.shape) != array.shape or np.dtype(variable.dtype) != array.dtype:
            raise CheckpointMismatchError(
                f"step {step}: part {name!r}, variable {path}: saved {array.dtype}{list(array.shape)}, the "
                f"model's {variable.path} is {variable.dtype}{list(variable.shape)}",
                [f"part {name!r}: {path}"],
            )

    def assign() -> None:
        for variable, array in zip(variables, arrays):
            variable.assign(array)

    return assign


def _restore_tf(name: str, part: Part, target: Any) -> None:
    import tensorflow as tf

    files = part.meta.get("files")
    if not isinstance(files, list) or len(files) != len(part.blobs) or not all(
        isinstance(f, str) and f.startswith("part") and "/" not in f and os.sep not in f for f in files
    ):
        raise CorruptCheckpointError(f"part {name!r}: its list of TensorFlow checkpoint files is damaged")
    checkpoint = target if isinstance(target, tf.train.Checkpoint) else tf.train.Checkpoint(root=target)
    with tempfile.TemporaryDirectory(prefix="pipestate-tf-") as tmp:
        for file, blob in zip(files, part.blobs):
            with open(os.path.join(tmp, file), "wb") as f:
                f.write(blob)
        try:
            status = checkpoint.read(os.path.join(tmp, "part"))
            status.assert_consumed()
        except AssertionError as exc:
            raise CheckpointMismatchError(
                f"part {name!r}: the TensorFlow state does not match the objects given ({exc}). Build them "
                "first (e.g. optimizer.build(model.trainable_variables)) and give the same structure as saved.",
                [f"part {name!r}: TensorFlow objects"],
            ) from exc
        except (tf.errors.OpError, ValueError) as exc:
            raise CorruptCheckpointError(f"part {name!r}: TensorFlow could not read it ({exc})") from exc


def _arrays_into(step: int, name: str, part: Part, template: Any) -> Any:
    paths, arrays = _load_arrays(part)
    mine, leaves, structure = _flatten(template)
    if mine != paths:
        raise CheckpointMismatchError(
            f"step {step}: part {name!r} has arrays at {_few(paths)}; the value given has {_few(mine)}: give a "
            "value of the structure that was saved",
            [f"part {name!r}: structure"],
        )
    out = []
    for path, saved, leaf in zip(paths, arrays, leaves):
        current = np.asarray(leaf) if not hasattr(leaf, "shape") else leaf
        if tuple(current.shape) != saved.shape or np.dtype(current.dtype) != saved.dtype:
            raise CheckpointMismatchError(
                f"step {step}: part {name!r}, array {path}: saved {saved.dtype}{list(saved.shape)}, the value "
                f"given is {np.dtype(current.dtype)}{list(current.shape)}",
                [f"part {name!r}: {path}"],
            )
        out.append(_like(leaf, saved))
    jax = sys.modules.get("jax")
    if jax is not None:
        return jax.tree_util.tree_unflatten(structure, out)
    return _rebuild(structure, iter(out))


def _like(leaf: Any, saved: np.ndarray) -> Any:
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(leaf, jax.Array):
        return jax.device_put(saved, leaf.sharding)
    if isinstance(leaf, np.generic):
        return saved[()]
    if isinstance(leaf, (bool, int, float, complex)):  # a Python number among the arrays: keep its type
        return type(leaf)(saved.item())
    return saved


def _rebuild(template: Any, leaves: Any) -> Any:
    if isinstance(template, dict):
        built = {k: _rebuild(template[k], leaves) for k in sorted(template)}  # the order _flatten walked
        return {k: built[k] for k in template}
    if isinstance(template, (list, tuple)):
        items = [_rebuild(v, leaves) for v in template]
        return type(template)(items) if isinstance(template, list) else tuple(items)
    return next(leaves)


def _few(paths: list[str]) -> str:
    shown = ", ".join(paths[:4]) or "(none)"
    return shown + (f" ... ({len(paths)} in all)" if len(paths) > 4 else "")


def describe_size(n: int) -> str:
    """``n`` bytes, human-readable (``"1.2 MB"``)."""
    if n < 1000:
        return f"{n} B"
    exp = min(int(math.log(n, 1000)), 4)
    return f"{n / 1000 ** exp:.1f} {['B', 'kB', 'MB', 'GB', 'TB'][exp]}"
