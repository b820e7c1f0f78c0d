"""JSON as people write it by hand: a key given twice in one object is found, never resolved.

``json.loads`` keeps the last of two equal keys without a word (``{"rep": "a", "rep": "b"}`` is
rep b). :func:`loads` keeps the first and marks the object, and :func:`duplicate_key` names the
key (as a dotted path) so the record can be refused naming its field, the rest of the file kept.
"""

from __future__ import annotations

import json
from typing import Any

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
    """``json.loads`` that marks every object holding a key twice (see :func:`duplicate_key`)."""
    return json.loads(text, object_pairs_hook=_pairs)


def duplicate_key(value: Any, at: str = "") -> str | None:
    """The first key given twice in one object of ``value`` (parsed by :func:`loads`), as a
    dotted path (``actor.mbox``; a list item by its index), else None."""
    if isinstance(value, dict):
        if _MARK in value:
            return f"{at}{value[_MARK]}"
        for k, v in value.items():
            found = duplicate_key(v, f"{at}{k}.")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = duplicate_key(v, f"{at}{i}.")
            if found:
                return found
    return None


TWICE = "is given twice in one object: capmap never keeps just one of them; remove one"
