"""The production store: Neo4j through the official ``neo4j`` driver (6.x).

Behaves like :class:`graph.sqlite_store.SqliteStore` for every method of the store port (same
row shapes, same ordering, same merge semantics); one conformance suite runs on both. Nodes
carry their label and an ``id`` property under a uniqueness constraint; an edge is a
relationship keyed by its ``key`` property within its type and endpoints.

The implied relationships (``schema.IMPLIED``: ``PERFORMED``, ``ABOUT``, ``EVIDENCES``, ...) are
real relationships here, kept by the writes of the nodes that imply them: writing an owner
(an ``Event``, an ``Evidence``) creates, moves or removes its relationship; writing a new end (a
``Rep``, a ``Skill``) links it to the owners already naming it; deleting either removes it.
Reads see them like any other relationship; a change cannot write or delete them directly.

All Cypher lives in :mod:`graph.cypher`. A :class:`ChangeSet` is applied in one managed write
transaction (retried by the driver on transient errors and deadlocks) as ``UNWIND`` batches of
at most ``batch_size`` rows. Rows are validated and converted into those statements before the
transaction opens (by :meth:`Neo4jStore.prepare`, which an import's worker process may run), so
a bad row fails fast and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from neo4j import Driver, GraphDatabase, ManagedTransaction, NotificationDisabledClassification, Record, Session
from neo4j.exceptions import DriverError, Neo4jError

from graph import cypher, schema
from graph.errors import ConfigError, StoreError
from graph.store import ChangeSet, Edge, Row, explicit_rel
from graph.values import INT64_MAX, edge_row, node_row, to_property

log = logging.getLogger(__name__)

Step = tuple[str, list[Any]]  # (Cypher with $rows, rows)


@dataclass(frozen=True)
class _Prepared:
    """A change as the statements that write it (see :meth:`Neo4jStore.prepare`)."""

    steps: list[Step]


def _groups(rows: Iterable[Row]) -> dict[tuple[tuple[str, ...], bool], list[list[Any]]]:
    """``rows`` from ``values.node_row`` or ``values.edge_row`` as the list rows of
    :mod:`graph.cypher`: those for one node (edge) merged in order, grouped by the properties
    they set (plain names, and whether a map of others follows), each group sorted by key."""
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in rows:
        key: tuple[str, ...] = (r["id"],) if "id" in r else (r["src"], r["dst"], r["key"])
        props = merged.get(key)
        if props is None:
            merged[key] = r["props"]  # a fresh dict from values.props_of: ours to update
        else:
            props.update(r["props"])
    shapes: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    groups: dict[tuple[tuple[str, ...], bool], list[list[Any]]] = {}
    for key in sorted(merged):
        props = merged[key]
        shape = tuple(props)
        split = shapes.get(shape)
        if split is None:
            split = shapes[shape] = (tuple(sorted(k for k in shape if cypher.plain(k))),
                                     tuple(k for k in shape if not cypher.plain(k)))
        names, others = split
        row = [*key, *map(props.__getitem__, names)]
        if others:
            row.append({k: props[k] for k in others})
        groups.setdefault((names, bool(others)), []).append(row)
    return groups


def _indexed() -> list[tuple[str, str]]:
    """(label, property) of every range index: ``schema.INDEXED_PROPS``, and the owner
    properties naming the ends of implied relationships (the writes seek them by index)."""
    pairs = [(label, p) for label, props in schema.INDEXED_PROPS.items() for p in props]
    for imp in schema.IMPLIED.values():
        pairs += [(imp.owner, p) for p in (imp.src, imp.dst) if p != "id"]
    return list(dict.fromkeys(pairs))


def _known(label: str) -> bool:
    return label in schema.NODE_LABELS


def _run_steps(tx: ManagedTransaction, steps: Sequence[Step]) -> None:
    for query, rows in steps:
        tx.run(query, rows=rows).consume()


def _fetch(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> list[Record]:
    return list(tx.run(query, params))


def _node(props: Mapping[str, Any]) -> Row:
    row: Row = {"id": props["id"]}
    row.update(sorted((k, v) for k, v in props.items() if k != "id"))
    return row


def _edge(rel_type: str, rec: Record) -> Edge:
    props = {k: v for k, v in sorted(rec["props"].items()) if k != "key"}
    return Edge(rel_type, rec["src"], rec["dst"], rec["key"], props)


class Neo4jStore:
    """A :class:`graph.store.GraphStore` on a Neo4j database.

    Parameters
    ----------
    driver:
        A ready driver; build one with :meth:`connect` to let the store own (and close) it.
    database:
        The database every session names explicitly (``"neo4j"`` on Community Edition).
    batch_size:
        Rows per ``UNWIND`` statement; larger lists are split, all in one transaction.
    owns_driver:
        Close ``driver`` in :meth:`close`.
    """

    name = "neo4j"

    def __init__(self, driver: Driver, database: str, *, batch_size: int = 5000, owns_driver: bool = False) -> None:
        if not database:
            raise ConfigError("Neo4jStore needs a database name, e.g. 'neo4j'")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self._driver = driver
        self.database = database
        self.batch_size = batch_size
        self._owns_driver = owns_driver
        self.setup()

    @classmethod
    def connect(
        cls, uri: str, user: str, password: str, *, database: str, batch_size: int = 5000, **driver_config: Any
    ) -> Neo4jStore:
        """Open a driver on ``uri``, check it answers, and return a store that owns it."""
        try:
            driver = GraphDatabase.driver(uri, auth=(user, password), **driver_config)
        except (DriverError, Neo4jError, ValueError) as e:
            raise StoreError(f"cannot create a Neo4j driver for {uri}: {e}") from e
        try:
            driver.verify_connectivity()
            return cls(driver, database, batch_size=batch_size, owns_driver=True)
        except (DriverError, Neo4jError) as e:
            driver.close()
            raise StoreError(f"cannot connect to Neo4j at {uri} as {user!r}: {e}") from e
        except BaseException:
            driver.close()
            raise

    def __repr__(self) -> str:
        return f"Neo4jStore(database={self.database!r}, batch_size={self.batch_size})"

    # -- plumbing -----------------------------------------------------------------------------
    def _session(self) -> Session:
        return self._driver.session(
            database=self.database,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
            notifications_disabled_classifications=[NotificationDisabledClassification.UNRECOGNIZED],
        )

    @contextmanager
    def _wrapped(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (Neo4jError, DriverError) as e:
            raise StoreError(f"Neo4j {operation} failed on database {self.database!r}: {e}") from e

    def _read(self, operation: str, query: str, **params: Any) -> list[Record]:
        with self._wrapped(operation), self._session() as session:
            return session.execute_read(_fetch, query, params)

    def _chunks(self, rows: Sequence[Any]) -> Iterator[list[Any]]:
        for i in range(0, len(rows), self.batch_size):
            yield list(rows[i : i + self.batch_size])

    # -- set-up -------------------------------------------------------------------------------
    def setup(self) -> None:
        statements = [cypher.create_constraint(x) for x in schema.NODE_LABELS]
        statements += [cypher.create_index(x, p) for x, p in _indexed()]
        with self._wrapped("set-up (constraints and indexes)"), self._session() as session:
            for statement in statements:
                session.run(statement).consume()
            session.run(cypher.await_indexes(), timeout_s=300).consume()
        log.debug("Neo4j %r: %d constraints and indexes in place", self.database, len(statements))

    # -- writes -------------------------------------------------------------------------------
    def prepare(self, change: ChangeSet) -> ChangeSet:
        """``change`` as the statements :meth:`apply` runs, every row checked and converted. Pure:
        an import's worker process runs it (on a copy of this store) and sends the result here."""
        if change.encoded is not None:
            return change
        return ChangeSet(delete_edges=change.delete_edges, delete_nodes=change.delete_nodes,
                         encoded=_Prepared(self._plan(change)), encoded_rows=change.n_rows)

    def apply(self, change: ChangeSet) -> None:
        if change.encoded is None:
            steps = self._plan(change)
        elif isinstance(change.encoded, _Prepared):
            steps = change.encoded.steps  # the deletions included
        else:
            raise StoreError(f"this change was prepared for another store ({type(change.encoded).__name__})")
        if not steps:
            return
        with self._wrapped(f"apply of {change.n_rows} rows"), self._session() as session:
            session.execute_write(_run_steps, steps)
        log.debug("Neo4j %r: applied %d statements", self.database, len(steps))

    def _plan(self, change: ChangeSet) -> list[Step]:
        """Every statement of ``change`` in the SQLite store's order, rows validated.

        Rows for one node (or edge) are merged into one, in order, as setting them one after
        the other would; rows setting the same properties share a statement, sorted by key:
        writers running at once then lock nodes in the same order and deadlock less. A node
        statement also keeps the implied relationships of its nodes (``cypher.merge_nodes``);
        a change naming an implied relationship type is refused, as in SQLite. Deletions naming
        an unknown label delete nothing, as in SQLite; so do edge batches whose endpoint label
        is unknown (no such endpoint can exist)."""
        steps: list[Step] = []
        for rel_type, src_label, ids in change.delete_edges:
            explicit_rel(rel_type)
            if _known(src_label):
                q = cypher.delete_edges(rel_type, src_label)
                steps += [(q, chunk) for chunk in self._chunks(sorted(str(i) for i in ids))]
        for label, ids in change.delete_nodes:
            if _known(label):
                q = cypher.delete_nodes(label)
                steps += [(q, chunk) for chunk in self._chunks(sorted(str(i) for i in ids))]
        for label, rows in change.nodes.items():
            schema.check_label(label)
            for (keys, more), group in _groups(node_row(label, r) for r in rows).items():
                q = cypher.merge_nodes(label, keys, more)
                steps += [(q, chunk) for chunk in self._chunks(group)]
        for batch in change.edges:
            explicit_rel(batch.rel_type)
            if _known(batch.src_label) and _known(batch.dst_label):
                for (keys, more), group in _groups(edge_row(batch.rel_type, r) for r in batch.rows).items():
                    q = cypher.merge_edges(batch.rel_type, batch.src_label, batch.dst_label, keys, more)
                    steps += [(q, chunk) for chunk in self._chunks(group)]
        return [(q, rows) for q, rows in steps if rows]

    # -- reads --------------------------------------------------------------------------------
    def get_node(self, label: str, node_id: str) -> Row | None:
        recs = self._read(f"get_node({label}, {node_id!r})", cypher.get_nodes(label), ids=[str(node_id)])
        return _node(recs[0]["props"]) if recs else None

    def get_nodes(self, label: str, ids: Sequence[str]) -> dict[str, Row]:
        q = cypher.get_nodes(label)
        out: dict[str, Row] = {}
        for chunk in self._chunks([str(i) for i in dict.fromkeys(ids)]):
            for rec in self._read(f"get_nodes({label})", q, ids=chunk):
                row = _node(rec["props"])
                out[row["id"]] = row
        return out

    @staticmethod
    def _filter(where: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        condition, params = cypher.node_filter(where)
        return condition, {k: to_property(v, f"filter value {k}") for k, v in params.items()}

    def list_nodes(
        self,
        label: str,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        condition, params = self._filter(where)
        limited = limit is not None and limit >= 0  # a negative limit means none, as in SQLite
        q = cypher.list_nodes(label, condition, limited)
        recs = self._read(f"list_nodes({label})", q, offset=max(offset, 0), limit=limit, **params)
        return [_node(r["props"]) for r in recs]

    def iter_nodes(self, label: str, where: Mapping[str, Any] | None = None, batch_size: int = 5000) -> Iterator[Row]:
        condition, params = self._filter(where)
        q = cypher.page_nodes(label, condition)
        after, page = "", batch_size if batch_size >= 0 else INT64_MAX
        while True:
            recs = self._read(f"iter_nodes({label})", q, after=after, limit=page, **params)
            if not recs:
                return
            rows = [_node(r["props"]) for r in recs]
            yield from rows
            after = rows[-1]["id"]

    def count_nodes(self, label: str, where: Mapping[str, Any] | None = None) -> int:
        condition, params = self._filter(where)
        recs = self._read(f"count_nodes({label})", cypher.count_nodes(label, condition), **params)
        return int(recs[0]["n"])

    def list_edges(
        self,
        rel_type: str,
        src: str | None = None,
        dst: str | None = None,
        limit: int | None = None,
    ) -> list[Edge]:
        limited = limit is not None and limit >= 0
        q = cypher.list_edges(rel_type, src is not None, dst is not None, limited)
        ends = {k: None if v is None else str(v) for k, v in (("src", src), ("dst", dst))}
        recs = self._read(f"list_edges({rel_type})", q, limit=limit, **ends)
        return [_edge(rel_type, r) for r in recs]

    def count_edges(self, rel_type: str) -> int:
        return int(self._read(f"count_edges({rel_type})", cypher.count_edges(rel_type))[0]["n"])

    def neighbours(self, node_id: str, rel_type: str, direction: str = "out") -> list[tuple[Edge, Row]]:
        q = cypher.neighbours(schema.check_rel(rel_type), direction)
        recs = self._read(f"neighbours({node_id!r}, {rel_type}, {direction})", q, id=str(node_id))
        return [(_edge(rel_type, r), _node(r["node"])) for r in recs]

    def close(self) -> None:
        if self._owns_driver:
            self._driver.close()

