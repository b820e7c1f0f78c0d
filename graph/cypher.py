"""Every Cypher statement the Neo4j store runs, as named builders.

Values always travel as parameters. Labels, relationship types and property names cannot be
parameters in Cypher, so each builder validates them first (``schema.check_label``,
``schema.check_rel``, :func:`prop`) and then interpolates them back-quoted. Every write is one
``UNWIND $rows AS row`` batch of list rows, planned once with every index seek hinted (see the
writes below), and every key match names its label, so the uniqueness constraint's index serves
it (an unlabelled ``{id: ...}`` match scans every node). A node write also keeps the implied
relationships (``schema.IMPLIED``) of the nodes it writes: see :func:`merge_nodes`.

>>> merge_nodes("Role", ["name"])
'CYPHER replan=skip UNWIND $rows AS row MERGE (n:`Role` {id: row[0]}) SET n.`name` = row[1]'
>>> node_filter({"function": "sales", "team": None})
('n.`function` = $w0 AND n.`team` IS NULL', {'w0': 'sales'})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
# Writes are planned once and kept (``replan=skip``): a growing database would otherwise make
# Cypher plan them again and again (a third of the server's time in an import). That is safe
# because every match is a seek forced by a hint (``USING INDEX SEEK``; a plain ``USING INDEX``
# allows a scan, which a plan made on a young database picks, to scan the index for every row). Rows travel as lists (``[id, value, ...]``), not maps, and properties
# are set by name (``SET n.`x` = row[1]``), never from a map: the planner types a parameter as
# ANY, so ``row.x`` might read a node's property, and ``SET n += map`` might set ``id``; either
# makes it buffer every row (an Eager operator) before a later clause may read what it wrote.
WRITE = "CYPHER replan=skip "


def plain(name: str) -> bool:
    """Whether the property ``name`` can be spelled in a statement (the rule of :func:`prop`)."""
    return name.replace("_", "").isalnum()


def _seek(var: str, node_label: str, value: str) -> tuple[str, str]:
    """A node pattern matching ``node_label`` by id, and the hint that makes it a seek."""
    return f"({var}:{label(node_label)} {{id: {value}}})", f"USING INDEX SEEK {var}:{label(node_label)}(id)"


def _set(var: str, keys: Sequence[str], first: int, more: bool) -> str:
    """`` SET var.k = row[i]`` for ``keys`` from row position ``first``, then ``var += row[j]``
    after them when there are ``more`` (``""`` for nothing to set)."""
    sets = [f"{var}.{prop(k)} = row[{first + i}]" for i, k in enumerate(keys)]
    sets += [f"{var} += row[{first + len(keys)}]"] if more else []
    return f" SET {', '.join(sets)}" if sets else ""


def delete_edges(rel_type: str, src_label: str) -> str:
    """``$rows``: source ids. Deletes every ``rel_type`` edge leaving them.

    >>> delete_edges("HAS_CAPABILITY", "Rep")  # doctest: +NORMALIZE_WHITESPACE
    'CYPHER replan=skip UNWIND $rows AS id MATCH (a:`Rep` {id: id})-[r:`HAS_CAPABILITY`]->()
     USING INDEX SEEK a:`Rep`(id) DELETE r'
    """
    a, hint = _seek("a", src_label, "id")
    return f"{WRITE}UNWIND $rows AS id MATCH {a}-[r:{rel(rel_type)}]->() {hint} DELETE r"


def delete_nodes(node_label: str) -> str:
    """``$rows``: ids. Deletes the nodes with all their edges, and the implied relationships
    they own between two other nodes (an ``Evidence``'s ``EVIDENCES``)."""
    n, hint = _seek("n", node_label, "id")
    unlink = "".join(f"CALL (n) {{ {_match_implied(imp, {})} DELETE r }} "
                     for imp in schema.implied_by(node_label) if "id" not in (imp.src, imp.dst))
    return f"{WRITE}UNWIND $rows AS id MATCH {n} {hint} {unlink}DETACH DELETE n"


def merge_nodes(node_label: str, keys: Sequence[str], more: bool = False) -> str:
    """``$rows``: ``[id, value of keys[0], value of keys[1], ...]``, one row per id, ending with
    a map of further properties (names :func:`plain` refuses) when ``more``. Creates missing
    nodes and sets the properties on each (a null removes the property).

    It also keeps the implied relationships (``schema.IMPLIED``) of the nodes written. Where the
    label owns some and ``keys`` name their ends, key or properties: deletes each one whose end
    the row moves (the ends read before the write), then creates the one the node now names, if
    both ends exist, and sets its properties. Where the label is an end named by owners (an
    ``Event`` for ``Evidence.event_id``): a node with no relationship of that type yet gets
    one from each owner naming it. A node that has one has them all (each is made with its
    owner or with its last end and removed with one of them), so writing an existing ``Skill``
    again costs a degree check, not a pass over its tens of thousands of ``EVIDENCES``. And a
    node that named no end of a relationship it owns before the write (a node just created) has
    none: it is created without MERGE's search of the ends' relationships (half the database
    hits of a bulk import's node statements).

    >>> merge_nodes("Rep", ["name", "team"])  # doctest: +NORMALIZE_WHITESPACE
    'CYPHER replan=skip UNWIND $rows AS row MERGE (n:`Rep` {id: row[0]}) SET n.`name` = row[1],
     n.`team` = row[2] WITH n CALL (n) { WITH n WHERE NOT EXISTS { (n)-[:`PERFORMED`]->() } MATCH
     (o:`Event` {`rep_id`: n.id}) USING INDEX SEEK o:`Event`(`rep_id`) MERGE
     (n)-[r:`PERFORMED`]->(o) }'
    >>> merge_nodes("Event", ["rep_id"])  # doctest: +NORMALIZE_WHITESPACE
    'CYPHER replan=skip UNWIND $rows AS row MERGE (n:`Event` {id: row[0]}) WITH n, row,
     n.`rep_id` AS old0 SET n.`rep_id` = row[1] WITH n, row, old0 CALL (n, row, old0) { UNWIND
     CASE WHEN old0 IS NOT NULL AND NOT coalesce(old0 = row[1], false) THEN [1] ELSE [] END AS
     moved MATCH (a:`Rep` {id: old0})-[r:`PERFORMED`]->(n) USING INDEX SEEK a:`Rep`(id) DELETE r
     } CALL (n, row, old0) { UNWIND CASE WHEN old0 IS NULL THEN [1] ELSE [] END AS fresh MATCH
     (a:`Rep` {id: row[1]}) USING INDEX SEEK a:`Rep`(id) CREATE (a)-[r:`PERFORMED`]->(n) } CALL
     (n, row, old0) { UNWIND CASE WHEN NOT (old0 IS NULL) THEN [1] ELSE [] END AS kept MATCH
     (a:`Rep` {id: row[1]}) USING INDEX SEEK a:`Rep`(id) MERGE (a)-[r:`PERFORMED`]->(n) } CALL
     (n) { WITH n WHERE NOT EXISTS { (n)-[:`EVIDENCES`]->() } MATCH (o:`Evidence` {`event_id`:
     n.id}) USING INDEX SEEK o:`Evidence`(`event_id`) MATCH (b:`Skill` {id: o.`skill_id`}) USING
     INDEX SEEK b:`Skill`(id) MERGE (n)-[r:`EVIDENCES` {key: o.`id`}]->(b) SET r.`code` =
     o.`code`, r.`level` = o.`level`, r.`confidence` = o.`confidence`, r.`weight` = o.`weight`,
     r.`coder` = o.`coder` }'
    """
    at = {k: f"row[{1 + i}]" for i, k in enumerate(keys)}
    owned = [imp for imp in schema.implied_by(node_label) if _depends_on(imp) & set(keys)]
    moved = [imp for imp in owned if _ends(imp) & set(keys)]
    old = {k: f"old{i}" for i, k in enumerate(k for k in keys if any(k in _ends(imp) for imp in moved))}
    ends = ends_of(node_label)
    q = f"{WRITE}UNWIND $rows AS row MERGE (n:{label(node_label)} {{id: row[0]}})"
    if old:
        q += " WITH n, row" + "".join(f", n.{prop(k)} AS {v}" for k, v in old.items())
    q += _set("n", keys, 1, more)
    if not (owned or ends):
        return q
    scope = ", ".join(["n", "row", *old.values()] if owned else ["n"])
    q += f" WITH {scope}"
    for imp in moved:
        changed = [k for k in (imp.src, imp.dst, imp.key) if k in old]
        known = " AND ".join(f"{old[k]} IS NOT NULL" for k in changed)
        same = " AND ".join(f"{old[k]} = {at[k]}" for k in changed)
        # an UNWIND of an empty list ends the row before the seek (a WHERE would be applied
        # after it): a node just created, or whose ends did not move, costs no lookup
        q += (f" CALL ({scope}) {{ UNWIND CASE WHEN {known} AND NOT coalesce({same}, false) THEN [1] ELSE [] END"
              f" AS moved {_match_implied(imp, old)} DELETE r }}")

    def value(k: str) -> str:
        return "row[0]" if k == "id" else at.get(k) or f"n.{prop(k)}"

    for imp in owned:
        before = [old[p] for p in (imp.src, imp.dst) if p in old]  # the ends named before the write
        if not before:
            q += f" CALL (n, row) {{ {_link(imp, 'n', value, {})} }}"
            continue
        # A relationship exists only while its owner names both ends: where the node named no
        # end before this write (just created, mostly) there is none, and CREATE makes it
        # without MERGE's search of the ends' relationships; elsewhere MERGE finds or makes it.
        fresh = " OR ".join(f"{v} IS NULL" for v in before)
        for test, create in ((fresh, True), (f"NOT ({fresh})", False)):
            q += (f" CALL ({scope}) {{ UNWIND CASE WHEN {test} THEN [1] ELSE [] END AS"
                  f" {'fresh' if create else 'kept'} {_link(imp, 'n', value, {}, create=create)} }}")
    for rel_type, side in ends:
        imp = schema.IMPLIED[rel_type]
        named = imp.src if side == "src" else imp.dst
        arrow = f"(n)-[:{rel(rel_type)}]->()" if side == "src" else f"(n)<-[:{rel(rel_type)}]-()"
        owner = label(imp.owner)
        q += (f" CALL (n) {{ WITH n WHERE NOT EXISTS {{ {arrow} }} "
              f"MATCH (o:{owner} {{{prop(named)}: n.id}}) USING INDEX SEEK o:{owner}({prop(named)}) "
              f"{_link(imp, 'o', lambda k: f'o.{prop(k)}', {side: 'n'})} }}")
    return q


def ends_of(node_label: str) -> list[tuple[str, str]]:
    """``(rel_type, "src" | "dst")`` for each implied relationship whose end of that side is a
    ``node_label`` named by a property of the owner.

    >>> ends_of("Event")
    [('EVIDENCES', 'src')]
    """
    return [(imp.rel_type, side) for imp in schema.IMPLIED.values()
            for side, p, lab in (("src", imp.src, imp.src_label), ("dst", imp.dst, imp.dst_label))
            if lab == node_label and p != "id"]


def merge_edges(rel_type: str, src_label: str, dst_label: str, keys: Sequence[str], more: bool = False) -> str:
    """``$rows``: ``[src, dst, key, value of keys[0], ...]``, one row per edge, ending with a map
    of further properties when ``more`` (as in :func:`merge_nodes`). Rows whose endpoints do not
    both exist are skipped.

    >>> merge_edges("TEACHES", "LearningResource", "Skill", ["hours"])  # doctest: +NORMALIZE_WHITESPACE
    'CYPHER replan=skip UNWIND $rows AS row MATCH (a:`LearningResource` {id: row[0]}) USING
     INDEX SEEK a:`LearningResource`(id) MATCH (b:`Skill` {id: row[1]}) USING INDEX SEEK
     b:`Skill`(id) MERGE (a)-[r:`TEACHES` {key: row[2]}]->(b) SET r.`hours` = row[3]'
    """
    a, hint_a = _seek("a", src_label, "row[0]")
    b, hint_b = _seek("b", dst_label, "row[1]")
    return (f"{WRITE}UNWIND $rows AS row MATCH {a} {hint_a} MATCH {b} {hint_b} "
            f"MERGE (a)-[r:{rel(rel_type)} {{key: row[2]}}]->(b){_set('r', keys, 3, more)}")


def _ends(imp: schema.Implied) -> set[str]:
    """The owner properties naming an implied relationship's ends and key."""
    return {imp.src, imp.dst, imp.key or "id"} - {"id"}


def _depends_on(imp: schema.Implied) -> set[str]:
    """The owner properties an implied relationship follows: its ends, key and properties."""
    return _ends(imp) | set(imp.props)


def _link(imp: schema.Implied, owner: str, value: Callable[[str], str], bound: dict[str, str],
          create: bool = False) -> str:
    """MATCH the ends of ``owner``'s implied relationship (``value(k)``: the owner's property
    ``k``; ``bound``: ends already matched, by side) and MERGE it with its properties (CREATE
    with ``create``: the caller knows it does not exist)."""
    clauses, ends = [], {}
    for side, p, lab, var in (("src", imp.src, imp.src_label, "a"), ("dst", imp.dst, imp.dst_label, "b")):
        if p == "id":
            ends[side] = owner
        elif side in bound:
            ends[side] = bound[side]
        else:
            node, hint = _seek(var, lab, value(p))
            clauses.append(f"MATCH {node} {hint}")
            ends[side] = var
    key = f" {{key: {value(imp.key)}}}" if imp.key else ""
    clauses.append(f"{'CREATE' if create else 'MERGE'} ({ends['src']})-[r:{rel(imp.rel_type)}{key}]->({ends['dst']})")
    if imp.props:
        clauses.append("SET " + ", ".join(f"r.{prop(p)} = {value(p)}" for p in imp.props))
    return " ".join(clauses)


def _match_implied(imp: schema.Implied, old: Mapping[str, str]) -> str:
    """MATCH the implied relationship ``r`` that the node ``n`` owns, with ``old`` naming the
    variables that hold its ends' values before a write (else its properties as they stand)."""
    patterns, hints = [], []
    for p, lab, var in ((imp.src, imp.src_label, "a"), (imp.dst, imp.dst_label, "b")):
        if p == "id":
            patterns.append("(n)")
        else:
            node, hint = _seek(var, lab, old.get(p) or f"n.{prop(p)}")
            patterns.append(node)
            hints.append(hint)
    key = f" {{key: {old.get(imp.key) or f'n.{prop(imp.key)}'}}}" if imp.key else ""
    return f"MATCH {patterns[0]}-[r:{rel(imp.rel_type)}{key}]->{patterns[1]} {' '.join(hints)}"


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

