"""Property values both stores accept, converted once so both give back the same thing.

numpy scalars and arrays become Python values and lists, ``Decimal`` a float, tuples lists,
datetimes UTC ISO-8601 strings (``...Z``; naive ones are taken as UTC), dates ISO strings.
Maps, mixed lists, lists with nulls, integers beyond 64 bits and non-finite floats are refused
with a :class:`StoreError` naming the label, id and property.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from graph.errors import StoreError

_INT64 = (-(2**63), 2**63 - 1)
INT64_MAX = _INT64[1]
_NONE = type(None)
_PLAIN = frozenset({str, bool, _NONE})


def to_property(value: Any, where: str) -> Any:
    """``value`` as a Neo4j property the SQLite store would give back unchanged.

    numpy scalars and arrays become Python values and lists, ``Decimal`` a float, tuples lists,
    datetimes UTC ISO-8601 strings (``...Z``; naive ones are taken as UTC), dates ISO strings.
    ``where`` names the label, id and property for the error raised on anything else.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        if not _INT64[0] <= int(value) <= _INT64[1]:
            raise StoreError(f"{where}: integer {value} does not fit in 64 bits; store it as a string")
        return int(value)
    if isinstance(value, (numbers.Real, Decimal)):
        f = float(value)
        if not math.isfinite(f):
            raise StoreError(f"{where}: {value} is not a finite number")
        return f
    if isinstance(value, datetime):
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return _to_list(value, where)
    if isinstance(value, Mapping):
        raise StoreError(
            f"{where}: a map cannot be a Neo4j property; store it as JSON text (like Event.attrs_json)"
        )
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_property(value.tolist(), where)
    raise StoreError(f"{where}: {type(value).__name__} values cannot be stored; use str, int, float, bool or a list")


def _to_list(values: Sequence[Any], where: str) -> list[Any]:
    items = [to_property(v, where) for v in values]
    kinds = {type(v) for v in items}
    if kinds <= {str} or kinds <= {bool}:
        return items
    if kinds <= {int, float}:
        return [float(v) for v in items] if len(kinds) == 2 else items
    raise StoreError(
        f"{where}: a Neo4j list property holds only strings, only booleans or only numbers "
        f"(no nulls, lists or maps); got {sorted(k.__name__ for k in kinds)}"
    )


def plain_nulls(values: Iterable[Any]) -> bool | None:
    """``None`` unless every one of ``values`` is plain, that is a string, boolean, null, finite
    float or 64-bit integer (exact types, no subclasses), which :func:`to_property` returns
    unchanged; else whether a null is among them. One pass: the hot path of every row written.

    >>> plain_nulls(["a", 1, 2.5, True]), plain_nulls(["a", None]), plain_nulls([float("nan")])
    (False, True, None)
    """
    nulls = False
    lo, hi = _INT64
    isfinite = math.isfinite
    for v in values:
        t = type(v)
        if t is str or t is bool:
            continue
        if t is _NONE:
            nulls = True
        elif not ((t is float and isfinite(v)) or (t is int and lo <= v <= hi)):
            return None
    return nulls


def props_of(row: Mapping[str, Any], skip: tuple[str, ...], where: str | Callable[[], str]) -> dict[str, Any]:
    """A fresh dict of ``row``'s properties but ``skip``, each converted by :func:`to_property`.

    ``where`` names the row for an error (or makes that name: it is only needed for a value
    that is not a plain string, boolean, null, finite float or 64-bit integer).
    """
    out = dict(row)
    for k in skip:
        out.pop(k, None)
    if plain_nulls(out.values()) is not None:  # the common case: nothing to convert
        return out
    lo, hi = _INT64
    isfinite = math.isfinite
    for k, v in out.items():
        t = type(v)  # plain values skip the converter (and its error context string)
        if not (t in _PLAIN or (t is float and isfinite(v)) or (t is int and lo <= v <= hi)):
            name = where if isinstance(where, str) else where()
            out[k] = to_property(v, f"{name} property {k!r}")
    return out


def node_props(label: str, row: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``row``'s id and its other properties converted (see :func:`props_of`)."""
    node_id = row.get("id")
    if not isinstance(node_id, str) or not node_id:
        raise StoreError(f"{label} row without a string id: {dict(row)!r}")
    return node_id, props_of(row, ("id",), lambda: f"{label} {node_id!r}")


def node_row(label: str, row: Mapping[str, Any]) -> dict[str, Any]:
    node_id, props = node_props(label, row)
    return {"id": node_id, "props": props}


def edge_row(rel_type: str, row: Mapping[str, Any]) -> dict[str, Any]:
    if "src" not in row or "dst" not in row:
        raise StoreError(f"{rel_type} edge row without src and dst: {dict(row)!r}")
    src, dst, key = str(row["src"]), str(row["dst"]), str(row.get("key", ""))
    props = props_of(row, ("src", "dst", "key"), lambda: f"{rel_type} edge {src!r}->{dst!r} key {key!r}")
    return {"src": src, "dst": dst, "key": key, "props": props}
