"""DALI's public modules and names exist under the same paths in pipestate (``nvidia.dali.X`` -> ``pipestate.X``).

The test walks every public module of the installed DALI and checks each public name it defines (names DALI
imports from elsewhere, such as ``numpy`` or ``typing.List``, are not its API) against pipestate's module of
the same path. The exceptions are explicit, each with its reason:

- :data:`ABSENT_MODULES` and :data:`ABSENT_NAMES`: deliberate absences (GPU-only, DALI's C++ internals,
  features pipestate does not have);
- operators: a name of DALI's ``fn``/``ops`` (or an ``ops`` deprecated alias, or a sub-namespace such as
  ``fn.noise``) may be missing only while pipestate's registry has no such operator, so this list shrinks
  by itself as operators are registered; once registered, the name must be there under DALI's name.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil

import pytest

from pipestate import _names
from pipestate.operators import REGISTRY

dali = pytest.importorskip("nvidia.dali", reason="the comparison needs DALI installed (as in CI)")

# DALI modules (and everything below them) that pipestate deliberately does not have.
ABSENT_MODULES = {
    "nvidia.dali.backend": "DALI's C++ binding; its user-facing classes (TensorListCPU, ...) are pipestate.tensors",
    "nvidia.dali.backend_impl": "DALI's C++ binding (see nvidia.dali.backend)",
    "nvidia.dali.experimental": "DALI's experimental dynamic (eager) mode and torchvision-style API: not supported",
    "nvidia.dali.internal": "DALI's helpers for building its own module tree",
    "nvidia.dali.pickling": "DALI's callback pickler; pipestate's py_callback_pickler takes any pickler module",
    "nvidia.dali.reducers": "DALI's callback pickler (see nvidia.dali.pickling)",
    "nvidia.dali.plugin_manager": "loads DALI's C++ operator libraries",
    "nvidia.dali.python_function_plugin": "C++ DLPack helpers of DALI's python_function",
    "nvidia.dali.sysconfig": "compile and link flags of DALI's C++ library",
    "nvidia.dali.plugin.triton": "Triton Inference Server's DALI backend",
    "nvidia.dali.plugin.jax.fn": "jax_function: an operator not implemented",
    "nvidia.dali.plugin.jax.integration": "GPU tensors (TensorGPU) for JAX",
    "nvidia.dali.plugin.jax.iterator": "the module of DALI's JAX iterator: its names are in pipestate.plugin.jax",
    "nvidia.dali.plugin.pytorch.fn": "torch_python_function: an operator not implemented",
    "nvidia.dali.plugin.pytorch.experimental": "DALI's DataLoader proxy (DALIServer): not implemented",
    "nvidia.dali.plugin.pytorch.loader_evaluator": "DALI's benchmarking helper for PyTorch data loaders",
    "nvidia.dali.plugin.pytorch.torch_utils": "DALI's conversion helpers: pipestate.plugin.pytorch has to_torch_tensor",
}

# Names missing from modules pipestate has.
_DALI_TYPE_TAGS = "DALI's tags of argument types and of non-numeric data; pipestate's data is numeric tensors"
ABSENT_NAMES = {
    "nvidia.dali": {"newaxis": "x[None] works; DALI's named form newaxis('C') is not implemented"},
    "nvidia.dali.data_node": {
        "newaxis": "x[None] works; DALI's named form newaxis('C') is not implemented",
        "not_iterable": "DALI's internal class decorator",
    },
    "nvidia.dali.fn": {"hidden": "DALI's documentation artefact (operators hidden from its docs)"},
    "nvidia.dali.ops": {
        "hidden": "DALI's documentation artefact (operators hidden from its docs)",
        "Reload": "reloads DALI's C++ operator registry",
        "python_op_factory": "builds classes from DALI's C++ schemas (pipestate builds them from its registry)",
        "register_cpu_op": "registers C++ operators (pipestate registers with pipestate.operators.register)",
        "register_gpu_op": "registers C++ GPU operators",
    },
    "nvidia.dali.plugin.pytorch": {
        "TensorCPU": "DALI's tensor class re-exported; it is pipestate.tensors.TensorCPU",
        "TensorGPU": "GPU tensors",
        "TensorListGPU": "GPU tensors",
        "TorchPythonFunction": "an operator not implemented",
        "to_torch_type": "DALI's type table of its conversion helpers: not implemented",
    },
    "nvidia.dali.tensors": {
        "PipelineBatchAdapter": "DALI's repr helper",
        "PipelineTensorAdapter": "DALI's repr helper",
        "format_batch": "DALI's repr helper",
        "format_tensor": "DALI's repr helper",
    },
    "nvidia.dali.types": {
        "CUDAStream": "GPU",
        "dali_type_converters": "DALI's hook list for framework type converters",
        **{
            tag: _DALI_TYPE_TAGS
            for tag in ("DATA_TYPE", "FEATURE", "IMAGE_TYPE", "INTERP_TYPE", "NO_TYPE", "PYTHON_OBJECT", "STRING")
        },
        "TENSOR_LAYOUT": _DALI_TYPE_TAGS,
    },
}

# Modules written on other branches: expected failures until pipestate has them, then checked in full.
_OPERATOR_NAMESPACES = ("nvidia.dali.fn", "nvidia.dali.ops")


def _under(name: str, prefixes) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def _spec(name: str):
    """``importlib.util.find_spec``, or None when a parent is not a package."""
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


def _dali_modules() -> list[str]:
    """DALI's public modules, but those deliberately absent (checked by the allowlist test)."""
    names = ["nvidia.dali"]
    for info in pkgutil.walk_packages(dali.__path__, "nvidia.dali."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or parts[2].startswith("libdali") or _under(info.name, ABSENT_MODULES):
            continue
        names.append(info.name)
    return names


def _public(module) -> dict[str, object]:
    """The public names ``module`` defines or re-exports from DALI (submodules included)."""
    out = {}
    for name in getattr(module, "__all__", None) or dir(module):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if inspect.ismodule(obj):
            if obj.__name__.startswith(module.__name__ + "."):
                out[name] = obj
            continue
        owner = obj if inspect.isclass(obj) or callable(obj) else type(obj)
        origin = getattr(owner, "__module__", None) or ""
        if origin == "builtins" or origin.startswith("nvidia.dali"):
            out[name] = obj
    return out


def _implemented(fn_path: str) -> bool:
    """Whether pipestate's registry has the operator at ``fn_path`` (or the operator a DALI alias names)."""
    return fn_path in REGISTRY or any(a.fn == fn_path and a.target in REGISTRY for a in _names.ALIASES)


def _operator_path(obj) -> str | None:
    """The ``fn`` path of a DALI ``fn`` function or ``ops`` class, or None for other names."""
    from nvidia.dali.ops import _names as dali_names

    schema = getattr(obj, "_schema_name", None) or getattr(obj, "schema_name", None)
    return dali_names._op_name(schema, "fn") if isinstance(schema, str) else None


def _allowed(module_name: str, name: str, obj) -> bool:
    if name in ABSENT_NAMES.get(module_name, {}):
        return True
    if inspect.ismodule(obj) and _under(obj.__name__, ABSENT_MODULES):
        return True
    namespace = _under(module_name, _OPERATOR_NAMESPACES)
    if namespace is None:
        return False
    if inspect.ismodule(obj):  # a family (fn.noise): missing while no operator of pipestate's is in it
        prefix = obj.__name__[len(namespace) + 1 :] + "."
        return not any(t.startswith(prefix) for t in REGISTRY)
    path = _operator_path(obj)
    return path is not None and not _implemented(path)


MODULES = _dali_modules()


def _ours(dali_name: str) -> str:
    return "pipestate" + dali_name[len("nvidia.dali") :]


@pytest.mark.parametrize("dali_module", MODULES)
def test_dali_module_exists_in_pipestate_with_its_names(dali_module):
    try:
        theirs = importlib.import_module(dali_module)
    except ImportError as exc:  # a plugin whose framework is not installed (paddle, numba, DALI's TF plugin)
        pytest.skip(f"DALI's {dali_module} cannot be imported here: {exc}")
    module = importlib.import_module(_ours(dali_module))
    missing = [
        name
        for name, obj in sorted(_public(theirs).items())
        if not (hasattr(module, name) or _allowed(dali_module, name, obj))
        and _spec(f"{module.__name__}.{name}") is None
    ]
    assert not missing, f"{module.__name__} lacks DALI's {missing}: add them, or list them with the reason here"


def test_allowlists_name_only_what_dali_has_and_pipestate_lacks():
    """A stale entry (DALI dropped the name, or pipestate gained it) is removed from the lists."""
    for module_name in ABSENT_MODULES:
        assert _spec(module_name) is not None, module_name
        assert _spec(_ours(module_name)) is None, module_name
    for module_name, names in ABSENT_NAMES.items():
        theirs = _public(importlib.import_module(module_name))
        ours = importlib.import_module(_ours(module_name))
        for name in names:
            assert name in theirs, f"DALI's {module_name} has no {name}"
            assert not hasattr(ours, name), f"pipestate has {name} now: remove it from ABSENT_NAMES"


def test_the_walk_covers_dalis_api():
    """The comparison is not vacuous: it sees DALI's main modules and their operators."""
    assert {"nvidia.dali.fn", "nvidia.dali.ops", "nvidia.dali.types", "nvidia.dali.plugin.base_iterator"} <= set(
        MODULES
    )
    fn_names = _public(importlib.import_module("nvidia.dali.fn"))
    assert _operator_path(fn_names["cast"]) == "cast" and _operator_path(fn_names["file_reader"]) == "file_reader"
    ops_names = _public(importlib.import_module("nvidia.dali.ops"))
    assert _operator_path(ops_names["CoinFlip"]) == "coin_flip" and "readers" in ops_names


# private DALI modules that DALI's own tests import (the port imports them through the same path)
_DALI_TESTS_PRIVATE = ("pipestate.auto_aug.core._args",)
_INTERNAL = ("operators", "graph", "tracing", "runtime", "executor", "checkpoint", "rng", "options", "define_graph")


def test_ported_dali_tests_import_only_public_paths():
    """DALI's tests, ported, import what DALI's import through the same public paths: no private module and
    no pipestate internals (the module name check above makes those paths DALI's)."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).parent
    files = [*(root / "dali_ported").glob("*.py"), *(root / "plugin" / "checkpointing").glob("*.py")]
    files += [*(root / "dali_examples" / "dali_code").glob("*.py")]
    assert len(files) > 8
    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if name.startswith(_DALI_TESTS_PRIVATE):
                    continue
                if parts[0] == "pipestate" and (
                    any(p.startswith("_") for p in parts) or (len(parts) > 1 and parts[1] in _INTERNAL)
                ):
                    bad.append(f"{path.relative_to(root)}: {name}")
    assert not bad, bad
