"""The rewrite behind ``enable_conditionals=True``: a pipeline function's ``if``, ``and``, ``or`` and ``not``
become calls of :mod:`pipestate.conditionals` (DALI does the same with a fork of AutoGraph).

:func:`convert` parses the function's source with :mod:`ast` and rewrites, in it and in the functions
defined in it:

- ``if``/``elif``/``else`` into :class:`~pipestate.conditionals.IfStmt` (see there for the code);
  ``return`` inside an ``if`` becomes an assignment of a variable returned after the statement, the
  statements following an ``if`` whose branch returns moving into its other branch first;
- ``a and b``/``a or b`` into ``and_``/``or_`` with lazily evaluated operands, ``not a`` into ``not_``;
- every call ``f(...)`` into ``call(f, ...)``, which converts ``f`` first when it is a plain Python
  function of the user's (not of pipestate, numpy, the standard library or an installed package), as
  DALI converts the functions a pipeline calls.

Which assigned variables are merged after an ``if`` is decided by a conservative liveness analysis:
those read later in the function (or anywhere in an enclosing loop, or by a nested function).
"""

from __future__ import annotations

import ast
import copy
import inspect
import sys
import textwrap
import types
import warnings
from collections.abc import Callable
from typing import Any

from pipestate import conditionals as _runtime

_MODULE = "ps__"


class _Runtime:
    """What rewritten code calls as ``ps__.<name>``: the helpers of :mod:`pipestate.conditionals`, and
    :meth:`call`, which needs the rewriter (so the helpers' module does not import this one)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_runtime, name)

    @staticmethod
    def call(func: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``func``, rewritten first if it is a user's function (every call in rewritten code)."""
        return convert(func)(*args, **kwargs)


_RUNTIME = _Runtime()
_RETURN = _runtime.RETURN
_NOT_WRAPPED = frozenset({"locals", "vars", "globals", "super", "eval", "exec", "dir"})
_SKIP_MODULES = frozenset({"pipestate", "numpy", "nvidia", "builtins"}) | frozenset(sys.stdlib_module_names)
_CONVERTED_PACKAGE = "pipestate.auto_aug"
_converted: dict[types.CodeType, types.CodeType | None] = {}
_CONVERTED_CODE: set[types.CodeType] = set()


# ---- analysis -----------------------------------------------------------------------------------------


def _target_symbols(target: ast.AST, names: list[str], unsupported: list[str]) -> None:
    if isinstance(target, ast.Name):
        names.append(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            _target_symbols(elt, names, unsupported)
    elif isinstance(target, ast.Starred):
        _target_symbols(target.value, names, unsupported)
    elif isinstance(target, ast.Attribute) and _dotted(target):
        names.append(_dotted(target))
    else:
        unsupported.append(ast.unparse(target))


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Assigned(ast.NodeVisitor):
    """The symbols a block assigns (not looking into nested functions, lambdas and comprehensions)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.unsupported: list[str] = []

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            _target_symbols(t, self.names, self.unsupported)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        _target_symbols(node.target, self.names, self.unsupported)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            _target_symbols(node.target, self.names, self.unsupported)
            self.visit(node.value)

    def visit_For(self, node: ast.For) -> None:
        _target_symbols(node.target, self.names, self.unsupported)
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            _target_symbols(node.optional_vars, self.names, self.unsupported)
        self.visit(node.context_expr)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.names.append(node.target.id)
        self.visit(node.value)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.names.append(node.name)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names += [(a.asname or a.name).split(".")[0] for a in node.names]

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.names.append(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        pass

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda


def _assigned(stmts: list[ast.stmt]) -> tuple[list[str], list[str]]:
    finder = _Assigned()
    for s in stmts:
        finder.visit(s)
    return list(dict.fromkeys(finder.names)), finder.unsupported


def _loads(nodes: list[ast.AST]) -> set[str]:
    out = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                out.add(sub.id)
    return out


class _Liveness:
    """For each ``if``, the names possibly read after it (conservative)."""

    def __init__(self, func: ast.FunctionDef) -> None:
        self.after: dict[int, set[str]] = {}
        self.always = {_RETURN}
        for sub in ast.walk(func):
            if sub is not func and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                self.always |= _loads([sub])
        self.everything = bool(_loads([func]) & {"locals", "vars", "eval", "exec"})
        self._block(func.body, set())

    def _block(self, stmts: list[ast.stmt], live_out: set[str]) -> None:
        for i, s in enumerate(stmts):
            after = _loads(stmts[i + 1 :]) | live_out
            if isinstance(s, ast.If):
                self.after[id(s)] = after
                self._block(s.body, after)
                self._block(s.orelse, after)
            elif isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
                loop = after | _loads([s])
                self._block(s.body, loop)
                self._block(s.orelse, after)
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                self._block(s.body, after)
            elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
                wide = after | _loads([s])
                for block in (s.body, s.orelse, s.finalbody, *[h.body for h in s.handlers]):
                    self._block(block, wide)

    def live(self, node: ast.If, name: str) -> bool:
        if self.everything or name in self.always:
            return True
        return name.split(".")[0] in self.after.get(id(node), set()) or name.split(".")[0] in self.always


# ---- returns ------------------------------------------------------------------------------------------


def _has_return(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        if isinstance(s, ast.Return):
            return True
        if isinstance(s, ast.If) and (_has_return(s.body) or _has_return(s.orelse)):
            return True
    return False


def _always_returns(stmts: list[ast.stmt]) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    return isinstance(last, ast.Return) or (
        isinstance(last, ast.If) and _always_returns(last.body) and _always_returns(last.orelse)
    )


def _normalize_returns(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """Drop code after a ``return``; move the statements after an ``if`` that returns into its branches
    that do not (equivalent in Python; it makes every path through a returning ``if`` end in a return)."""
    for i, s in enumerate(stmts):
        if isinstance(s, ast.Return):
            return stmts[: i + 1]
        if isinstance(s, ast.If) and (_has_return(s.body) or _has_return(s.orelse)):
            rest = stmts[i + 1 :]
            for field in ("body", "orelse"):
                block = _normalize_returns(getattr(s, field))
                if not _always_returns(block) and rest:
                    block = _normalize_returns(block + copy.deepcopy(rest))
                setattr(s, field, block)
            return stmts[: i + 1]
    return stmts


# ---- the rewrite --------------------------------------------------------------------------------------


def _name(id_: str, store: bool = False) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def _helper(attr: str) -> ast.Attribute:
    return ast.Attribute(value=_name(_MODULE), attr=attr, ctx=ast.Load())


def _call(func: ast.expr, *args: ast.expr) -> ast.Call:
    return ast.Call(func=func, args=list(args), keywords=[])


def _getter(symbol: str) -> ast.Lambda:
    body = ast.parse(symbol, mode="eval").body
    return ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=body
    )


def _assign_symbols(symbols: list[str], value: ast.expr) -> list[ast.stmt]:
    """``symbols = value`` (a tuple), attributes through ``assign_attr`` (which can delete)."""
    tmp = "ps__values"
    out: list[ast.stmt] = [ast.Assign(targets=[_name(tmp, store=True)], value=value)]
    for i, symbol in enumerate(symbols):
        item = ast.Subscript(value=_name(tmp), slice=ast.Constant(i), ctx=ast.Load())
        if "." in symbol:
            base, attr = symbol.rsplit(".", 1)
            target = ast.parse(base, mode="eval").body
            out.append(ast.Expr(_call(_helper("assign_attr"), target, ast.Constant(attr), item)))
        else:
            out.append(ast.Assign(targets=[_name(symbol, store=True)], value=item))
    return out


class _Rewriter(ast.NodeTransformer):
    """Rewrites one function body (nested functions get their own rewriter)."""

    def __init__(self, func: ast.FunctionDef) -> None:
        self.func = func
        self.count = 0
        func.body = _normalize_returns(func.body)
        # Returns inside `if` statements become assignments (returned after the outermost such `if`),
        # unless a return sits in a loop, `with` or `try`: then returns keep Python's meaning.
        self.returns_in_if = _has_return([s for s in func.body if isinstance(s, ast.If)]) and not any(
            isinstance(s, ast.Return)
            for block in ast.walk(func)
            if isinstance(block, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try))
            for s in ast.walk(block)
        )
        self.liveness = _Liveness(func)

    def rewrite(self) -> ast.FunctionDef:
        self.func.body = self._stmts(self.func.body)
        return self.func

    def _stmts(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            result = self.visit(s)
            out += result if isinstance(result, list) else [result]
        return out

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        if node is self.func:
            return node
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        return _Rewriter(node).rewrite()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        return node  # class bodies are left as written

    def visit_Return(self, node: ast.Return) -> Any:
        if not self.returns_in_if:
            return self.generic_visit(node)
        value = self.visit(node.value) if node.value is not None else ast.Constant(None)
        return ast.Assign(targets=[_name(_RETURN, store=True)], value=value)

    def visit_If(self, node: ast.If) -> Any:
        self.count += 1
        tag = f"ps__if{self.count}"
        symbols, unsupported = _assigned(node.body + node.orelse)
        returns = self.returns_in_if and (_has_return(node.body) or _has_return(node.orelse))
        if returns and _RETURN not in symbols:
            symbols.append(_RETURN)
        live = [self.liveness.live(node, s) for s in symbols]
        test = self.visit(node.test)
        body = self._stmts(node.body)
        orelse = self._stmts(node.orelse)
        getters = ast.Tuple(elts=[_getter(s) for s in symbols], ctx=ast.Load())
        names = ast.Tuple(elts=[ast.Constant(s) for s in symbols], ctx=ast.Load())
        stmt = _call(_helper("IfStmt"), test, names, getters, ast.Constant(unsupported[0] if unsupported else None))
        enter = lambda b: _call(ast.Attribute(_name(tag), "enter", ast.Load()), ast.Constant(b))  # noqa: E731
        leave = lambda b: ast.Expr(_call(ast.Attribute(_name(tag), "leave", ast.Load()), ast.Constant(b)))  # noqa: E731
        traced = ast.Attribute(_name(tag), "traced", ast.Load())
        restore = _assign_symbols(symbols, ast.Attribute(_name(tag), "initial", ast.Load())) if symbols else []
        out: list[ast.stmt] = [
            ast.Assign(targets=[_name(tag, store=True)], value=stmt),
            ast.If(test=enter(True), body=[*body, leave(True)], orelse=[]),
            ast.If(
                test=enter(False),
                body=[*([ast.If(test=traced, body=restore, orelse=[])] if restore else []), *orelse, leave(False)],
                orelse=[],
            ),
        ]
        if symbols:
            merged = _call(
                ast.Attribute(_name(tag), "merged", ast.Load()),
                ast.Tuple(elts=[ast.Constant(v) for v in live], ctx=ast.Load()),
            )
            out.append(ast.If(test=traced, body=_assign_symbols(symbols, merged), orelse=[]))
        if returns and not any(_has_return([p]) for p in self._parents_if(node)):
            out.append(ast.Return(value=_call(_helper("returned"), _name(_RETURN))))
        return out

    def _parents_if(self, node: ast.If) -> list[ast.If]:
        """The ``if`` statements enclosing ``node`` in this function."""
        parents = []
        for sub in ast.walk(self.func):
            if isinstance(sub, ast.If) and sub is not node:
                if any(child is node for child in ast.walk(sub)):
                    parents.append(sub)
        return parents

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        self.generic_visit(node)
        if any(isinstance(n, (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(node)):
            return node
        helper = "and_" if isinstance(node.op, ast.And) else "or_"
        thunks = [
            ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=v)
            for v in node.values
        ]
        return _call(_helper(helper), *thunks)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return _call(_helper("not_"), node.operand)
        return node

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in _NOT_WRAPPED:
            return node
        return ast.Call(func=_helper("call"), args=[node.func, *node.args], keywords=node.keywords)


# ---- converting functions -----------------------------------------------------------------------------


def do_not_convert(func: Callable[..., Any] | None = None) -> Any:
    """DALI's ``pipeline.do_not_convert``: leave ``func`` (and the functions defined in it) as written when
    a pipeline with ``enable_conditionals=True`` calls it, e.g. a factory of a parallel external source's
    ``source`` (which must stay picklable). Usable bare or as ``@do_not_convert()``.

    Args:
        func: The function to leave unconverted.

    Returns:
        ``func`` itself, marked.
    """
    if func is None:
        return do_not_convert
    func.__pipestate_do_not_convert__ = True
    return func


def _should_convert(func: types.FunctionType) -> bool:
    if getattr(func, "__pipestate_do_not_convert__", False):
        return False
    if func.__code__ in _CONVERTED_CODE or func.__name__ == "<lambda>" or "__class__" in func.__code__.co_freevars:
        return False  # already converted, a lambda, or a method using super() (needs its class cell)
    path = getattr(func, "__module__", None) or ""
    if path == _CONVERTED_PACKAGE or path.startswith(_CONVERTED_PACKAGE + "."):
        return True  # pipestate's auto_aug branches on DataNodes, as DALI converts nvidia.dali.auto_aug
    if path.split(".")[0] in _SKIP_MODULES:
        return False
    filename = func.__code__.co_filename
    return not ("site-packages" in filename or "dist-packages" in filename or filename.startswith("<"))


def _rewrite_code(func: types.FunctionType) -> types.CodeType:
    source = textwrap.dedent(inspect.getsource(func))
    tree = ast.parse(source)
    fdef = tree.body[0]
    if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)) or fdef.name != func.__name__:
        raise ValueError(f"the source of {func.__qualname__} is not a function definition")
    fdef.decorator_list = []
    fdef = _Rewriter(fdef).rewrite()
    freevars = [_MODULE, *func.__code__.co_freevars]
    factory = ast.FunctionDef(
        name="ps__factory",
        args=ast.arguments(
            posonlyargs=[], args=[ast.arg(arg=v) for v in freevars], kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=[fdef, ast.Return(value=_name(fdef.name))],
        decorator_list=[],
        returns=None,
        **({"type_params": []} if sys.version_info >= (3, 12) else {}),
    )
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, func.__code__.co_firstlineno - 1)
    code = compile(module, func.__code__.co_filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in factory_code.co_consts if isinstance(c, types.CodeType) and c.co_name == func.__name__)
    _CONVERTED_CODE.add(inner)
    return inner


def convert(func: Callable[..., Any], strict: bool = False) -> Callable[..., Any]:
    """Return ``func`` rewritten for conditionals (see the module documentation), or ``func`` itself
    when it is not a user's Python function or its source is not available.

    Args:
        func: The function.
        strict: Warn (``UserWarning``) when the source cannot be rewritten.
    """
    if isinstance(func, types.MethodType):
        converted = convert(func.__func__, strict)
        return func if converted is func.__func__ else types.MethodType(converted, func.__self__)
    if type(func) is not types.FunctionType or not _should_convert(func):
        return func
    code = func.__code__
    if code not in _converted:
        try:
            _converted[code] = _rewrite_code(func)
        except (OSError, TypeError, ValueError, SyntaxError, StopIteration) as exc:
            _converted[code] = None
            if strict:
                warnings.warn(
                    f"enable_conditionals=True: {func.__qualname__} cannot be rewritten ({exc}); `if` on a "
                    "DataNode will not work in it. Define it in a source file.",
                    stacklevel=3,
                )
    inner = _converted[code]
    if inner is None:
        return func
    cells = dict(zip(code.co_freevars, func.__closure__ or ()))
    cells[_MODULE] = types.CellType(_RUNTIME)
    itself = cells.setdefault(func.__name__, types.CellType())  # a recursive call names the rewritten function
    try:
        closure = tuple(cells[name] for name in inner.co_freevars)
    except KeyError:
        return func
    new = types.FunctionType(inner, func.__globals__, func.__name__, func.__defaults__, closure or None)
    if func.__name__ in inner.co_freevars and func.__name__ not in code.co_freevars:
        itself.cell_contents = new
    new.__kwdefaults__ = func.__kwdefaults__
    new.__qualname__ = func.__qualname__
    new.__doc__ = func.__doc__
    new.__module__ = func.__module__
    return new
