"""A strict parser of the dictionary in a ``.npy`` header, without :mod:`ast`.

numpy parses the header with ``ast.literal_eval``, which is not thread-safe on CPython 3.11 (parsing in
several threads at once can fail with ``SystemError: AST constructor recursion depth mismatch``), and the
numpy reader parses headers in its worker threads. The header is a tiny fixed grammar, so it is parsed
here with a regular-expression tokenizer and a few lines of descent:

    {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }

Accepted: a dict of exactly the keys ``descr`` (a string), ``fortran_order`` (``True``/``False``) and
``shape`` (a tuple of ints, Python 2's ``3L`` too; the caller checks their range), in any order, quoted
with ``'`` or ``"``, with trailing commas and whitespace. Anything else (structured dtypes, whose
``descr`` is a list; escapes; expressions) is a ``ValueError``.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'[^'\\]*'|"[^"\\]*")
      | (?P<int>-?\d+)L?
      | (?P<bool>True|False)
      | (?P<punct>[{}():,\[\]])
    )""",
    re.VERBOSE,
)
_KEYS = {"descr", "fortran_order", "shape"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"unexpected {text[pos : pos + 20].strip()!r} in the header")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse_header_dict(text: str) -> dict[str, Any]:
    """Parse the header dictionary ``text`` of a ``.npy`` file.

    Returns:
        ``{"descr": str, "fortran_order": bool, "shape": tuple[int, ...]}``.

    Raises:
        ValueError: anything but such a dictionary (naming what is wrong).
    """
    tokens = _tokens(text)
    pos = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][0] != kind or (value is not None and tokens[pos][1] != value):
            got = tokens[pos][1] if pos < len(tokens) else "the end"
            raise ValueError(f"expected {value or kind} in the header, got {got!r}")
        pos += 1
        return tokens[pos - 1][1]

    def peek(value: str) -> bool:
        return pos < len(tokens) and tokens[pos] == ("punct", value)

    def shape() -> tuple[int, ...]:
        take("punct", "(")
        dims: list[int] = []
        while not peek(")"):
            dims.append(int(take("int")))
            if not peek(")"):
                take("punct", ",")
        take("punct", ")")
        return tuple(dims)

    result: dict[str, Any] = {}
    take("punct", "{")
    while not peek("}"):
        key = take("str")[1:-1]
        if key not in _KEYS or key in result:
            raise ValueError(f"unexpected key {key!r} in the header (it holds descr, fortran_order and shape once)")
        take("punct", ":")
        if key == "descr":
            if peek("["):
                raise ValueError("structured dtypes are not supported")
            result[key] = take("str")[1:-1]
        elif key == "fortran_order":
            result[key] = take("bool") == "True"
        else:
            result[key] = shape()
        if not peek("}"):
            take("punct", ",")
    take("punct", "}")
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos][1]!r} after the header's dictionary")
    if set(result) != _KEYS:
        raise ValueError(f"the header lacks {sorted(_KEYS - set(result))}")
    return result
