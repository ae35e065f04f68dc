"""Conditional execution (``enable_conditionals=True``): ``if``/``elif``/``else``, ``and``, ``or``, ``not``
on per-sample DataNodes, with DALI's semantics.

:mod:`pipestate.conditionals_ast` rewrites the pipeline function so that each ``if`` statement, boolean
operator and ``not`` calls the helpers here (the module is ``ps__`` in the rewritten code). With a Python
value they behave as Python does. With a DataNode predicate both branches are traced, one after the
other: :class:`Scopes` tracks the branch being traced and splits (``fn._conditional.split``) every
DataNode an operator in the branch consumes into the branch's samples; after the statement, the
variables assigned in the branches are merged (``fn._conditional.merge``) back in sample order.

As in DALI: operators without inputs (random generators, readers, external sources, constants) run on
the whole batch and their outputs are split where used; a variable assigned in only one branch cannot
be used after the statement; numbers are promoted to constants when merged with DataNodes; tuples,
lists and dicts are merged element by element and must have the same structure in both branches.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipestate.graph import DataNode, Undefined
from pipestate.operators import schema as sch
from pipestate.operators.conditional import Merge, Not, Split, ValidateLogical
from pipestate.tracing import add_operator, constant_node, current_graph

RETURN = "ps__ret"  # the variable the rewritten function assigns instead of returning inside an `if`


def unbound(name: str) -> Undefined:
    """The value of ``name`` where it has not been assigned (a read raises ``UnboundLocalError``)."""
    return Undefined(UnboundLocalError, f"'{name}' is used before assignment")


def read(getter: Callable[[], Any], name: str) -> Any:
    """``getter()``, or :func:`unbound` if the variable or attribute does not exist (yet)."""
    try:
        return getter()
    except (NameError, AttributeError):
        return unbound(name)


def assign_attr(obj: Any, attr: str, value: Any) -> None:
    """Set ``obj.attr`` to ``value``, or delete it when ``value`` is :func:`unbound` (restoring a branch)."""
    if isinstance(value, Undefined) and value.error is UnboundLocalError:
        if hasattr(obj, attr):
            delattr(obj, attr)
    else:
        setattr(obj, attr, value)


# ---- branch tracking ----------------------------------------------------------------------------------


class _Scope:
    __slots__ = ("parent", "frame", "branch")

    def __init__(self, parent: _Scope | None, frame: _Frame | None, branch: bool | None) -> None:
        self.parent, self.frame, self.branch = parent, frame, branch


class _Frame:
    """One traced ``if`` (or ``and``/``or``): its predicate (in the enclosing scope) and its two branches."""

    def __init__(self, parent: _Scope, predicate: DataNode) -> None:
        self.parent = parent
        self.predicate = predicate
        self.children = {True: _Scope(parent, self, True), False: _Scope(parent, self, False)}
        self.splits: dict[tuple[int, int], tuple[DataNode, DataNode]] = {}


def _key(node: DataNode) -> tuple[int, int]:
    return id(node.op), node.index


class Scopes:
    """The branch being traced, and where each DataNode was produced (``Graph.conditionals``).

    Operators with an input are placed in the current branch, their inputs split down to it; operators
    without inputs in the whole batch (DALI's rule).
    """

    def __init__(self) -> None:
        self.root = _Scope(None, None, None)
        self.current = self.root
        self._where: dict[tuple[int, int], _Scope] = {}
        self._busy = False

    def scope_inputs(
        self, nodes: list[DataNode], config: sch.Config, kwargs: dict[str, Any]
    ) -> tuple[list[DataNode], sch.Config, dict[str, Any]]:
        """The inputs and argument inputs of a new operator, split into the current branch."""
        if self._busy or self.current is self.root:
            return nodes, config, kwargs
        nodes = [self.here(n) for n in nodes]
        changed = {k: self.here(v) for k, v in config.items() if isinstance(v, DataNode)}
        if changed:
            config = sch.Config({**config, **changed})
            kwargs = {**kwargs, **{k: v for k, v in changed.items() if k in kwargs}}
        return nodes, config, kwargs

    def register(self, outputs: Sequence[DataNode], has_inputs: bool) -> None:
        """Record where a new operator's outputs live (the current branch, or the whole batch)."""
        if self._busy:
            return
        scope = self.current if has_inputs else self.root
        for node in outputs:
            self._where[_key(node)] = scope

    def here(self, node: DataNode) -> DataNode:
        """``node`` as seen from the current branch: split (once per branch level) if produced outside it.

        Raises:
            ValueError: ``node`` was produced in a branch that does not enclose the current one.
        """
        origin = self._where.get(_key(node), self.root)
        chain = []
        scope = self.current
        while scope is not origin:
            if scope is None:
                raise ValueError(
                    f"{node!r} was produced inside a branch of an `if` on a DataNode and is used outside it; "
                    "assign it to a variable in every branch (variables are merged after the `if`)"
                )
            chain.append(scope)
            scope = scope.parent
        for scope in reversed(chain):
            frame = scope.frame
            pair = frame.splits.get(_key(node))
            if pair is None:
                pair = tuple(self._quietly(add_operator, Split, [node], {"predicate": frame.predicate}))
                frame.splits[_key(node)] = pair
                self._where[_key(pair[0])] = frame.children[True]
                self._where[_key(pair[1])] = frame.children[False]
            node = pair[0] if scope.branch else pair[1]
        return node

    def _quietly(self, func: Callable[..., Any], *args: Any) -> Any:
        self._busy = True
        try:
            return func(*args)
        finally:
            self._busy = False

    def push(self, predicate: DataNode) -> _Frame:
        """Start tracing an ``if`` on ``predicate`` (split into the current branch)."""
        return _Frame(self.current, self.here(predicate))

    def enter(self, frame: _Frame, branch: bool) -> None:
        """Trace the ``branch`` (True: ``if``, False: ``else``) of ``frame``."""
        self.current = frame.children[branch]

    def leave(self, frame: _Frame) -> None:
        """Return to the scope enclosing ``frame``."""
        self.current = frame.parent

    def merge(self, frame: _Frame, true: DataNode, false: DataNode) -> DataNode:
        """Merge ``true`` (of the ``if`` branch) and ``false`` (of the ``else`` branch) in sample order."""
        merged = self._quietly(add_operator, Merge, [true, false], {"predicate": frame.predicate})
        self._where[_key(merged)] = frame.parent
        return merged

    def in_branch(self, frame: _Frame, branch: bool, value: Any) -> DataNode:
        """``value`` (a DataNode or a number) as a DataNode of ``branch`` of ``frame``."""
        if not isinstance(value, DataNode):
            value = constant_node(value)
        saved, self.current = self.current, frame.children[branch]
        try:
            return self.here(value)
        finally:
            self.current = saved


def _scopes() -> Scopes | None:
    graph = current_graph()
    if graph is None:
        raise RuntimeError("a conditional on a DataNode is only possible inside a pipeline definition")
    return graph.conditionals


# ---- `if` statements ----------------------------------------------------------------------------------

_BRANCH_NAMES = {True: "if", False: "else"}


class IfStmt:
    """One ``if`` statement of a rewritten function (see the module documentation).

    The rewritten code is::

        s = ps__.IfStmt(test, names, getters)
        if s.enter(True):
            <body>
            s.leave(True)
        if s.enter(False):
            if s.traced:
                <names> = s.initial     # the values from before the statement
            <orelse>
            s.leave(False)
        if s.traced:
            <names> = s.merged(live)

    Args:
        test: The condition: a DataNode traces both branches, anything else is Python's ``if``.
        names: The variables (and ``obj.attr`` paths) the branches assign.
        getters: One function per name returning its current value.
        unsupported: An assignment target the rewrite cannot merge (e.g. ``d[k]``), or ``None``.
    """

    def __init__(
        self,
        test: Any,
        names: tuple[str, ...],
        getters: tuple[Callable[[], Any], ...],
        unsupported: str | None = None,
    ) -> None:
        self.traced = isinstance(test, DataNode) and _scopes() is not None
        if not self.traced:
            self.value = bool(test)
            return
        if unsupported:
            raise TypeError(
                f"`{unsupported} = ...` inside an `if` on a DataNode: pipestate merges variables and attributes "
                "(x = ..., obj.x = ...) assigned in branches, not items; assign to a variable instead"
            )
        self.names, self.getters = names, getters
        self.scopes = _scopes()
        self.initial = tuple(read(g, n) for g, n in zip(getters, names))
        self.frame = self.scopes.push(test)
        self.values: dict[bool, tuple] = {}

    def enter(self, branch: bool) -> bool:
        """Whether to run ``branch``; a traced statement runs both (and traces each in its scope)."""
        if not self.traced:
            return self.value is branch
        self.scopes.enter(self.frame, branch)
        return True

    def leave(self, branch: bool) -> None:
        """End ``branch``: record the values of the assigned variables."""
        if self.traced:
            self.values[branch] = tuple(read(g, n) for g, n in zip(self.getters, self.names))
            self.scopes.leave(self.frame)

    def merged(self, live: tuple[bool, ...]) -> tuple:
        """The values of the assigned variables after the statement (``live``: merge it, else drop it).

        Raises:
            TypeError: a value cannot be merged (e.g. a DataNode of unmergeable structure at trace time).
        """
        out = []
        for name, used, t, f in zip(self.names, live, self.values[True], self.values[False]):
            if not used:
                out.append(
                    Undefined(
                        RuntimeError,
                        f"'{name}' was assigned in a branch of an `if` on a DataNode and looked unused after it, "
                        "so it was not merged; please report this",
                    )
                )
                continue
            out.append(self._merge(name, t, f))
        return tuple(out)

    def _merge(self, name: str, t: Any, f: Any) -> Any:
        if t is f:
            return t
        missing = [b for b, v in ((True, t), (False, f)) if isinstance(v, Undefined)]
        if missing:
            where = _BRANCH_NAMES[missing[0]]
            what = (
                f"The `{where}` branch must also have a return statement."
                if name == RETURN
                else f"Variable '{name}' must also be initialized in the `{where}` branch."
            )
            return Undefined(
                RuntimeError,
                "Encountered inconsistent outputs out of the `if/else` control flow statement. Variables need to "
                f"be initialized in every code path (both `if` branches). {what}",
            )
        if _structure(t) != _structure(f):
            return Undefined(
                ValueError,
                "Divergent data found in different branches of `if/else` control flow statement. Variables in all "
                "code paths are merged into common output batches. The values assigned to a given variable need "
                "to have the same nesting structure in every code path (both `if` branches).\n"
                f"'If' output structure: {_structure(t)}\n'Else' output structure: {_structure(f)}",
            )
        if isinstance(t, dict):
            return {k: self._merge(name, t[k], f[k]) for k in t}
        if isinstance(t, (tuple, list)):
            items = [self._merge(name, a, b) for a, b in zip(t, f)]
            return type(t)(*items) if hasattr(t, "_fields") else type(t)(items)
        if _mergeable(t) and _mergeable(f):
            true = self.scopes.in_branch(self.frame, True, t)
            false = self.scopes.in_branch(self.frame, False, f)
            return self.scopes.merge(self.frame, true, false)
        try:
            equal = bool(t == f)
        except Exception:  # noqa: BLE001 - objects without a usable ==
            equal = False
        if equal:
            return t
        return Undefined(
            TypeError,
            f"variable '{name}' holds different Python values in the branches of an `if` on a DataNode ({t!r} and "
            f"{f!r}); only DataNodes and numbers are merged into per-sample values",
        )


def _mergeable(value: Any) -> bool:
    if isinstance(value, DataNode):
        return True
    if isinstance(value, (numbers.Number, np.generic, np.ndarray)) and not isinstance(value, Undefined):
        return np.asarray(value).dtype.kind in "biuf"
    return False


def _structure(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _structure(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value).__name__, tuple(_structure(v) for v in value)
    return "*"


def returned(value: Any) -> Any:
    """The function's return value (``None`` where a Python branch fell off the end)."""
    if isinstance(value, Undefined) and value.error is UnboundLocalError:
        return None
    return value


# ---- logical expressions ------------------------------------------------------------------------------


def not_(value: Any) -> Any:
    """``not value``: a ``fn._conditional.not_`` operator for a DataNode (DALI), else Python's."""
    if isinstance(value, DataNode):
        return add_operator(Not, [value], {})
    return not value


def and_(*operands: Callable[[], Any]) -> Any:
    """``a and b and ...`` with lazily evaluated operands (a DataNode operand evaluates the rest only on
    the samples where it is true, as DALI)."""
    return _logical("and", operands)


def or_(*operands: Callable[[], Any]) -> Any:
    """``a or b or ...`` with lazily evaluated operands (see :func:`and_`)."""
    return _logical("or", operands)


def _logical(kind: str, operands: Sequence[Callable[[], Any]]) -> Any:
    value = operands[0]()
    for operand in operands[1:]:
        scopes = _scopes() if isinstance(value, DataNode) else None
        if scopes is None:
            if bool(value) is (kind == "or"):
                return value
            value = operand()
        else:
            value = _traced_logical(scopes, kind, value, operand)
    return value


def _validated(value: Any, kind: str, side: str) -> DataNode:
    return add_operator(ValidateLogical, [value], {"expression_name": kind, "expression_side": side})


def _traced_logical(scopes: Scopes, kind: str, left: DataNode, right: Callable[[], Any]) -> DataNode:
    # `a and b` is `b if a else a`; `a or b` is `a if a else b`: b is evaluated on its branch only.
    frame = scopes.push(_validated(left, kind, "left"))
    lazy = kind == "and"
    values = {}
    for branch in (True, False):
        scopes.enter(frame, branch)
        if branch is lazy:
            values[branch] = scopes.here(_validated(right(), kind, "right"))
        else:
            values[branch] = scopes.here(frame.predicate)
        scopes.leave(frame)
    return scopes.merge(frame, values[True], values[False])
