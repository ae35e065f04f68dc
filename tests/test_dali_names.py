"""pipestate derives DALI's ``ops`` class names and deprecated aliases exactly as DALI has them.

DALI names an operator by its class and snake-cases it for ``fn`` (``nvidia.dali.fn._to_snake_case``);
pipestate goes from the ``fn`` path back to the class (:func:`pipestate._names.class_path`). The rule is
checked on every operator of the installed DALI, and the alias table on DALI's deprecated schemas.
"""

from __future__ import annotations

import inspect

import pytest

from pipestate import _names

dali_ops = pytest.importorskip("nvidia.dali.ops", reason="DALI's names come from DALI")
from nvidia.dali import backend as dali_backend  # noqa: E402
from nvidia.dali.ops import _names as dali_names  # noqa: E402


def _dali_classes(module=dali_ops, path=()):
    for name in dir(module):
        obj = getattr(module, name)
        if name.startswith("_") or name == "hidden":
            continue
        if inspect.ismodule(obj) and obj.__name__.startswith(module.__name__ + "."):
            yield from _dali_classes(obj, (*path, name))
        elif inspect.isclass(obj) and isinstance(getattr(obj, "schema_name", None), str):
            yield path, name, obj.schema_name


CLASSES = sorted(set(_dali_classes()))


def test_the_walk_sees_dalis_operators():
    assert len(CLASSES) > 150
    assert (("readers",), "File", "readers__File") in CLASSES and ((), "FileReader", "FileReader") in CLASSES


@pytest.mark.parametrize("path, name, schema", CLASSES, ids=[".".join([*p, n]) for p, n, _ in CLASSES])
def test_class_name_from_the_fn_path_is_dalis(path, name, schema):
    fn_path = dali_names._op_name(schema, "fn")
    *fn_module, _ = fn_path.split(".")
    if list(path) != fn_module:  # an operator DALI shows in another module than its schema's (none today)
        pytest.skip(f"{'.'.join(path)}.{name} lives outside its fn module {fn_path}")
    assert _names.class_path(fn_path) == (list(path), name)


def _deprecated_same_operator() -> dict[str, str]:
    """DALI's deprecated class names whose schema names the operator replacing them: {alias: target fn path}."""
    out = {}
    for path, name, schema_name in CLASSES:
        schema = dali_backend.TryGetSchema(schema_name)
        if schema is not None and schema.IsDeprecated() and schema.DeprecatedInFavorOf():
            out[".".join([*path, name])] = dali_names._op_name(schema.DeprecatedInFavorOf(), "fn")
    return out


# DALI's deprecated operators that are distinct implementations, not the same operator under another name.
DISTINCT = {"FastResizeCropMirror", "SSDRandomCrop"}


def test_alias_table_is_dalis():
    dali = {alias: target for alias, target in _deprecated_same_operator().items() if alias not in DISTINCT}
    ours = {a.ops: a.target for a in _names.ALIASES}
    assert ours == dali
    fn_names = {a.ops: a.fn for a in _names.ALIASES}
    for alias in ours:
        *_, name = alias.split(".")
        schema = next(s for p, n, s in CLASSES if ".".join([*p, n]) == alias)
        assert fn_names[alias] == dali_names._op_name(schema, "fn"), alias
