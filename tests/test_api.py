"""The public API: a sorted __all__, docstrings everywhere, lazy optional imports."""

import inspect
import subprocess
import sys

import pipestate
from pipestate import _names, fn


def test_all_is_sorted_and_complete():
    assert pipestate.__all__ == sorted(pipestate.__all__)
    for name in pipestate.__all__:
        assert hasattr(pipestate, name), name


def test_every_public_name_has_a_docstring():
    for name in pipestate.__all__:
        obj = getattr(pipestate, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name
            for member_name, member in vars(obj).items():
                if not member_name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                    assert member.__doc__, f"{name}.{member_name}"


def test_every_fn_operator_has_a_docstring():
    from pipestate.operators import REGISTRY

    checked = []

    def walk(ns, prefix):
        for key, value in vars(ns).items():
            if key.startswith("_") or key in ("annotations",):
                continue
            if callable(value) and hasattr(value, "__qualname__") and value.__qualname__.startswith("fn."):
                assert value.__doc__ and "Args:" in value.__doc__, prefix + key
                checked.append(prefix + key)
            elif inspect.ismodule(value) and value.__name__.startswith("pipestate.fn."):
                walk(value, prefix + key + ".")

    walk(fn, "fn.")
    public = [t for t, cls in REGISTRY.items() if not cls.internal and not t.startswith("_")]
    aliases = [f"fn.{a.fn}" for a in _names.ALIASES if a.target in public]  # DALI's deprecated names
    assert sorted(checked) == sorted([*(f"fn.{t}" for t in public), *aliases])


def test_core_import_does_not_import_heavy_frameworks():
    heavy = "('tensorflow', 'torch', 'nvidia.dali', 'fsspec')"
    code = f"import sys, pipestate; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_operator_names_itself_and_points_to_the_migration_table():
    import pytest

    with pytest.raises(AttributeError, match=r"pipestate has no operator fn\.optical_flow\. If it is a DALI "
                                             r"operator.*docs/migrating-from-dali\.md#dali-features-and-their-status"):
        fn.optical_flow  # noqa: B018
    with pytest.raises(AttributeError, match=r"no operator fn\.random\.unifrom\. Did you mean fn\.random\.uniform\?"):
        fn.random.unifrom  # noqa: B018
    assert not hasattr(fn.readers, "no_such_reader") and getattr(fn, "no_such_op", 7) == 7
    with pytest.raises(AttributeError, match="has no attribute '__wrapped__'"):  # dunders: the usual error
        fn.random.__wrapped__  # noqa: B018
