"""JSON as people write it by hand: a key given twice in one object is found, never resolved.

``json.loads`` keeps the last of two equal keys without a word (``{"rep": "a", "rep": "b"}`` is
rep b). :func:`loads` keeps the first and marks the object, and :func:`duplicate_key` names the
key (as a dotted path) so the record can be refused naming its field, the rest of the file kept.
"""

from __future__ import annotations

import json
from typing import Any

from graph.errors import InputError

_MARK = "\x00duplicate key"  # a key no JSON text can hold unescaped; never stored


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            out.setdefault(_MARK, k)
        else:
            out[k] = v
    return out


def loads(text: str | bytes) -> Any:
    """``json.loads`` that marks every object holding a key twice (see :func:`duplicate_key`).

    Raises
    ------
    json.JSONDecodeError
        As ``json.loads``, and for a document nested deeper than Python's recursion allows
        (``json.loads`` raises ``RecursionError`` there).
    """
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except RecursionError:
        doc = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise json.JSONDecodeError("nested too deeply (objects or arrays inside one another)", doc, 0) from None


def duplicate_key(value: Any) -> str | None:
    """The first key given twice in one object of ``value`` (parsed by :func:`loads`), as a
    dotted path (``actor.mbox``; a list item by its index), else None; depth-first, in order,
    without recursion (a document may be nested as deep as the parser allows)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        at, v = stack.pop()
        if isinstance(v, dict):
            if _MARK in v:
                return f"{at}{v[_MARK]}"
            stack.extend((f"{at}{k}.", x) for k, x in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((f"{at}{i}.", x) for i, x in reversed(list(enumerate(v))))
    return None


def twice_error(value: Any, file: str, line: int | None, what: str = "") -> InputError | None:
    """The error refusing ``value`` (parsed by :func:`loads`) when one of its objects gives a key
    twice, naming the key's path as the field; else None."""
    key = duplicate_key(value)
    if key is None:
        return None
    return InputError(file, line, key, f"{what}is given twice in one object: capmap never keeps just one of them; "
                      "remove one")
