"""The ``fn`` namespace: one function per registered operator, e.g. ``fn.random.uniform``.

Built from the operator registry (``pipestate.operators``): an operator of type ``"a.b"`` is ``fn.a.b``.
"""

from __future__ import annotations

import types as _types

from pipestate.operators import REGISTRY, make_function


def _populate(namespace: dict) -> list[str]:
    top = []
    for op_type, cls in sorted(REGISTRY.items()):
        if op_type in ("arithmetic", "tensor_subscript"):
            continue  # created by DataNode operators, not called directly
        *path, leaf = op_type.split(".")
        target = namespace
        for i, part in enumerate(path):
            if part not in target:
                target[part] = _types.SimpleNamespace()
                if i == 0:
                    top.append(part)
            target = vars(target[part])
        target[leaf] = make_function(cls)
        if not path:
            top.append(leaf)
    return sorted(top)


__all__ = _populate(globals())
