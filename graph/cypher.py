"""Every Cypher statement the Neo4j store runs, as named builders.

Values always travel as parameters. Labels, relationship types and property names cannot be
parameters in Cypher, so each builder validates them first (``schema.check_label``,
``schema.check_rel``, :func:`prop`) and then interpolates them back-quoted. Every write is one
``UNWIND $rows AS row`` batch, and every key match names its label, so the uniqueness
constraint's index serves it (an unlabelled ``{id: ...}`` match scans every node).

>>> merge_nodes("Rep")
'UNWIND $rows AS row MERGE (n:`Rep` {id: row.id}) SET n += row.props'
>>> node_filter({"function": "sales", "team": None})
('n.`function` = $w0 AND n.`team` IS NULL', {'w0': 'sales'})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph import schema
from graph.errors import StoreError

NODE = "properties(n) AS props"
EDGE = "a.id AS src, b.id AS dst, coalesce(r.key, '') AS key, properties(r) AS props"


def label(name: str) -> str:
    """A known node label, back-quoted; raises ``UnknownLabel`` for any other."""
    return f"`{schema.check_label(name)}`"


def rel(name: str) -> str:
    """A known relationship type, back-quoted; raises ``UnknownLabel`` for any other."""
    return f"`{schema.check_rel(name)}`"


def prop(name: str) -> str:
    """A property name, back-quoted; the same rule as the SQLite store's JSON paths."""
    if not name.replace("_", "").isalnum():
        raise StoreError(f"property name {name!r} is not an identifier")
    return f"`{name}`"


def any_label() -> str:
    """Every node label as a label disjunction (``Rep|Skill|...``): matching ``{id: ...}``
    on it is planned as a union of unique-index seeks, one per label."""
    return "|".join(label(x) for x in schema.NODE_LABELS)


# -- schema -------------------------------------------------------------------------------------
def create_constraint(node_label: str) -> str:
    name = f"capmap_{node_label.lower()}_id"
    return f"CREATE CONSTRAINT `{name}` IF NOT EXISTS FOR (n:{label(node_label)}) REQUIRE n.id IS UNIQUE"


def create_index(node_label: str, name: str) -> str:
    index = f"capmap_{node_label.lower()}_{name}"
    return f"CREATE RANGE INDEX `{index}` IF NOT EXISTS FOR (n:{label(node_label)}) ON (n.{prop(name)})"


def await_indexes() -> str:
    return "CALL db.awaitIndexes($timeout_s)"


# -- writes: each takes $rows ------------------------------------------------------------------
def delete_edges(rel_type: str, src_label: str) -> str:
    """``$rows``: source ids. Deletes every ``rel_type`` edge leaving them."""
    return f"UNWIND $rows AS id MATCH (:{label(src_label)} {{id: id}})-[r:{rel(rel_type)}]->() DELETE r"


def delete_nodes(node_label: str) -> str:
    """``$rows``: ids. Deletes the nodes with all their edges."""
    return f"UNWIND $rows AS id MATCH (n:{label(node_label)} {{id: id}}) DETACH DELETE n"


def merge_nodes(node_label: str) -> str:
    """``$rows``: ``{id, props}``. Creates missing nodes and merges ``props`` into each (a null
    property removes it)."""
    return f"UNWIND $rows AS row MERGE (n:{label(node_label)} {{id: row.id}}) SET n += row.props"


def merge_edges(rel_type: str, src_label: str, dst_label: str) -> str:
    """``$rows``: ``{src, dst, key, props}``. Rows whose endpoints do not both exist are skipped."""
    return (
        f"UNWIND $rows AS row "
        f"MATCH (a:{label(src_label)} {{id: row.src}}) "
        f"MATCH (b:{label(dst_label)} {{id: row.dst}}) "
        f"MERGE (a)-[r:{rel(rel_type)} {{key: row.key}}]->(b) SET r += row.props"
    )


# -- reads --------------------------------------------------------------------------------------
def node_filter(where: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A predicate on ``n`` for property equality (``None`` means IS NULL), and its parameters."""
    terms: list[str] = []
    params: dict[str, Any] = {}
    for i, (name, value) in enumerate((where or {}).items()):
        if value is None:
            terms.append(f"n.{prop(name)} IS NULL")
        else:
            terms.append(f"n.{prop(name)} = $w{i}")
            params[f"w{i}"] = value
    return " AND ".join(terms), params


def _where(*terms: str) -> str:
    kept = [t for t in terms if t]
    return f" WHERE {' AND '.join(kept)}" if kept else ""


def get_nodes(node_label: str) -> str:
    """``$ids``: the ids to fetch."""
    return f"UNWIND $ids AS id MATCH (n:{label(node_label)} {{id: id}}) RETURN {NODE}"


def list_nodes(node_label: str, condition: str = "", limited: bool = False) -> str:
    """``$offset`` (and ``$limit`` when ``limited``) plus the parameters of ``condition``."""
    tail = " LIMIT $limit" if limited else ""
    return f"MATCH (n:{label(node_label)}){_where(condition)} RETURN {NODE} ORDER BY n.id SKIP $offset{tail}"


def page_nodes(node_label: str, condition: str = "") -> str:
    """Keyset pagination: ``$after`` (the last id seen) and ``$limit``."""
    return (
        f"MATCH (n:{label(node_label)}){_where('n.id > $after', condition)} "
        f"RETURN {NODE} ORDER BY n.id LIMIT $limit"
    )


def count_nodes(node_label: str, condition: str = "") -> str:
    return f"MATCH (n:{label(node_label)}){_where(condition)} RETURN count(n) AS n"


def list_edges(rel_type: str, by_src: bool = False, by_dst: bool = False, limited: bool = False) -> str:
    """``$src`` / ``$dst`` when filtered, ``$limit`` when ``limited``."""
    a = f"(a:{any_label()} {{id: $src}})" if by_src else "(a)"
    b = f"(b:{any_label()} {{id: $dst}})" if by_dst else "(b)"
    tail = " LIMIT $limit" if limited else ""
    return f"MATCH {a}-[r:{rel(rel_type)}]->{b} RETURN {EDGE} ORDER BY src, dst, key{tail}"


def count_edges(rel_type: str) -> str:
    return f"MATCH ()-[r:{rel(rel_type)}]->() RETURN count(r) AS n"


def neighbours(rel_type: str, direction: str) -> str:
    """``$id``: the node. ``direction`` is ``"out"`` (other end = dst) or ``"in"``."""
    if direction == "out":
        pattern, other, order = f"(a:{any_label()} {{id: $id}})-[r:{rel(rel_type)}]->(b)", "b", "dst"
    elif direction == "in":
        pattern, other, order = f"(a)-[r:{rel(rel_type)}]->(b:{any_label()} {{id: $id}})", "a", "src"
    else:
        raise StoreError(f"direction must be 'out' or 'in', not {direction!r}")
    return f"MATCH {pattern} RETURN {EDGE}, properties({other}) AS node ORDER BY {order}, key"
