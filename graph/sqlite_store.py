"""The embedded default store: one SQLite file, standard library only.

Nodes live in one table keyed by ``(label, id)`` with their properties as JSON; edges in
another keyed by ``(type, src, dst, key)``. Properties listed in ``schema.INDEXED_PROPS`` are
also kept in columns of their own (a copy of the JSON value, written with the row) with a
partial index per label, so neither a write nor a filtered read parses the JSON for them. Every
:meth:`SqliteStore.apply` is one ``BEGIN IMMEDIATE`` transaction, so a change is written whole or
not at all, and two processes writing at once serialise on the file lock (WAL mode, busy
timeout) instead of failing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from graph import schema
from graph.errors import StoreError
from graph.store import ChangeSet, Edge, Row, explicit_rel
from graph.values import edge_row, node_props, plain_nulls

log = logging.getLogger(__name__)


def _column(name: str) -> str:
    """``name`` quoted as a column of the nodes table (an indexed property)."""
    if not name.replace("_", "").isalnum():
        raise StoreError(f"property name {name!r} is not an identifier")
    return f'"{name}"'


# one column per property any label indexes (shared by the labels indexing the same name);
# a row's column holds the property only when its label indexes it, else NULL
_INDEXED_COLUMNS = tuple(dict.fromkeys(p for props in schema.INDEXED_PROPS.values() for p in props))

# a rowid table: rows are appended in rowid order and (label, id) is a small unique index, which
# writes fewer pages than a WITHOUT ROWID table keyed by (label, id) holding the JSON
_NODES_DDL = (
    "CREATE TABLE IF NOT EXISTS nodes (label TEXT NOT NULL, id TEXT NOT NULL, props TEXT NOT NULL, "
    + "".join(f"{_column(c)}, " for c in _INDEXED_COLUMNS)
    + "UNIQUE (label, id))"
)
_EDGES_DDL = """
CREATE TABLE IF NOT EXISTS edges (
    type      TEXT NOT NULL,
    src       TEXT NOT NULL,
    dst       TEXT NOT NULL,
    key       TEXT NOT NULL DEFAULT '',
    src_label TEXT NOT NULL,
    dst_label TEXT NOT NULL,
    props     TEXT NOT NULL,
    PRIMARY KEY (type, src, dst, key, src_label, dst_label)
) WITHOUT ROWID
"""
_DDL = (
    _NODES_DDL,
    _EDGES_DDL,
    # edges by either end without their type, for deleting a node's edges; with the type, for listing
    "DROP INDEX IF EXISTS edges_by_dst",
    "CREATE INDEX IF NOT EXISTS edges_by_dst_end ON edges (dst, type, src, key)",
    "CREATE INDEX IF NOT EXISTS edges_by_src_end ON edges (src, src_label)",
)

SCHEMA_VERSION = 3
"""2: edges keyed by both ends' labels; 3: nodes a rowid table with the indexed properties as
columns (2 had expression indexes on the JSON)."""

_UPSERT_EDGE = (
    "INSERT INTO edges (type, src, dst, key, src_label, dst_label, props) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?8 "
    "WHERE EXISTS (SELECT 1 FROM nodes WHERE label = ?5 AND id = ?2) "
    "AND EXISTS (SELECT 1 FROM nodes WHERE label = ?6 AND id = ?3) "
    "ON CONFLICT (type, src, dst, key, src_label, dst_label) DO UPDATE SET props = json_patch(edges.props, ?7)"
)


@cache
def _upsert_node(label: str) -> str:
    """The upsert of one ``label`` row: parameters label, id, properties (with nulls, as the
    patch of an existing row), properties without nulls (a new row: Neo4j cannot hold a null),
    then the label's indexed properties. A null in the patch removes the property, as
    ``SET n += $props`` does in Neo4j; an indexed column follows its property when the patch
    names it and is kept otherwise."""
    cols = schema.INDEXED_PROPS.get(label, ())
    names = "".join(f", {_column(c)}" for c in cols)
    values = "".join(f", ?{i}" for i in range(5, 5 + len(cols)))
    keep = "".join(
        f", {_column(c)} = iif(json_type(?3, '$.{c}') IS NULL, nodes.{_column(c)}, ?{i})"
        for i, c in enumerate(cols, 5)
    )
    return (f"INSERT INTO nodes (label, id, props{names}) VALUES (?1, ?2, ?4{values}) "
            f"ON CONFLICT (label, id) DO UPDATE SET props = json_patch(nodes.props, ?3){keep}")


_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _dumps_both(props: Mapping[str, Any], nulls: bool | None = None) -> tuple[str, str]:
    """(properties as given, properties without nulls) as JSON; one string when there is no null
    (``nulls``: whether there is one, when the caller knows)."""
    try:
        full = orjson.dumps(props, option=_OPTS).decode()
        if not (None in props.values() if nulls is None else nulls):
            return full, full
        return full, orjson.dumps({k: v for k, v in props.items() if v is not None}, option=_OPTS).decode()
    except TypeError as e:
        raise StoreError(f"a property value cannot be stored: {e} (in {dict(props)!r:.200})") from e


def _prop_expr(label: str, name: str, table: str = "nodes") -> str:
    """Property ``name`` of a ``label`` row of ``table`` (a name or alias of the nodes table):
    its column when the label indexes it, else extracted from the JSON."""
    column = _column(name)
    if name in schema.INDEXED_PROPS.get(label, ()):
        return f"{table}.{column}"
    return f"json_extract({table}.props, '$.{name}')"


def _column_value(value: Any) -> Any:
    """An indexed property's value as its column holds it: as it is, but a list as JSON text
    (which is what ``json_extract`` gives for a list, numbers in a list aside: SQLite may format
    a float in it otherwise)."""
    return orjson.dumps(value).decode() if type(value) is list else value


def _implied_end(owner: str, prop: str) -> str:
    return "o.id" if prop == "id" else _prop_expr(owner, prop, "o")


def _implied_query(imp: schema.Implied, src: str | None, dst: str | None) -> tuple[str, list[Any]]:
    """SELECT src, dst, key, props of the implied relationships ``imp`` (optionally from ``src``
    and/or to ``dst``): one per owner node whose ends both exist."""
    for p in (imp.src, imp.dst, imp.key or "id", *imp.props):
        _column(p)
    s_expr, d_expr = _implied_end(imp.owner, imp.src), _implied_end(imp.owner, imp.dst)
    key = _implied_end(imp.owner, imp.key) if imp.key else "''"
    # json_patch drops the nulls, as a Neo4j relationship has no null properties
    pairs = ", ".join(f"'{p}', json_extract(o.props, '$.{p}')" for p in imp.props)
    props = f"json_patch('{{}}', json_object({pairs}))" if imp.props else "'{}'"
    q = f"SELECT {s_expr} AS src, {d_expr} AS dst, {key} AS key, {props} AS props FROM nodes o"
    for end, lab, expr in (("a", imp.src_label, s_expr), ("b", imp.dst_label, d_expr)):
        if expr != "o.id" or lab != imp.owner:
            q += f" JOIN nodes {end} ON {end}.label = '{schema.check_label(lab)}' AND {end}.id = {expr}"
    q += f" WHERE o.label = '{schema.check_label(imp.owner)}'"
    params: list[Any] = []
    for value, expr in ((src, s_expr), (dst, d_expr)):
        if value is not None:
            q += f" AND {expr} = ?"
            params.append(value)
    return q, params


@dataclass(frozen=True)
class _Encoded:
    """A change's upserts as statement parameters (see :meth:`SqliteStore.prepare`): each
    label's node rows for :func:`_upsert_node`, each batch's edge rows for ``_UPSERT_EDGE``."""

    nodes: list[tuple[str, list[tuple[Any, ...]]]]
    edges: list[list[tuple[str, ...]]]


class SqliteStore:
    """A :class:`graph.store.GraphStore` in one SQLite file.

    Parameters
    ----------
    path:
        The database file (created with its folder if missing), or ``":memory:"``.
    timeout_s:
        How long a writer waits for another process's lock before failing.
    """

    name = "sqlite"

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:  # pragma: no cover - depends on the file system
            raise StoreError(f"cannot open SQLite store at {self.path}: {e}") from e
        self._lock = threading.RLock()
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise StoreError(f"{self.path} is not a capmap store (SQLite says: {e}); name another file") from e
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        # checkpoint the write-ahead log every 32 MiB rather than 4: fewer fsyncs in a bulk import
        self._conn.execute("PRAGMA wal_autocheckpoint=8192")
        self._conn.execute("PRAGMA analysis_limit=1000")  # ANALYZE samples: fast on large files
        self._rows_since_analyze = 0
        self._rows_at_analyze = 0
        self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        try:
            self.setup()
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # -- set-up -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the tables and indexes, migrating a file of an older store schema; one
        transaction, so a file is never left half-migrated."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                self._migrate(cur)
                for ddl in _DDL:
                    cur.execute(ddl)
                self._index_props(cur)
                cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _migrate(self, cur: sqlite3.Cursor) -> None:
        """Bring a file written by an older capmap up to ``SCHEMA_VERSION`` (in the caller's
        transaction)."""
        version = int(cur.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer capmap (store schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade capmap or use another file"
            )
        tables = {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, needed in (("nodes", {"label", "id", "props"}), ("edges", {"type", "src", "dst", "props"})):
            if table in tables:  # another program's database, with a table named like ours
                missing = needed - {r[1] for r in cur.execute(f"PRAGMA table_info({table})")}
                if missing:
                    raise StoreError(f"{self.path} is not a capmap store (its {table} table has no column "
                                     f"{', '.join(sorted(missing))}); name another file")
        if version < 2 and "edges" in tables:
            # schema 0 keyed edges by (type, src, dst, key), schema 1 by (type, src_label, src,
            # dst_label, dst, key): rebuild the edge table with schema 2's key
            log.info("migrating %s: edge table from store schema %d to %d", self.path, version, SCHEMA_VERSION)
            cur.execute("ALTER TABLE edges RENAME TO edges_v0")
            for index in ("edges_by_dst", "edges_by_dst_end", "edges_by_src", "edges_by_src_end"):
                cur.execute(f"DROP INDEX IF EXISTS {index}")
            cur.execute(_EDGES_DDL)
            cur.execute("INSERT OR IGNORE INTO edges SELECT type, src, dst, key, src_label, dst_label, props FROM edges_v0")
            cur.execute("DROP TABLE edges_v0")
        if version < 3 and "nodes" in tables:
            # schemas 0-2 kept nodes in a WITHOUT ROWID table with expression indexes on the JSON:
            # copy them into schema 3's table (its indexed columns are filled by _index_props)
            log.info("migrating %s: node table from store schema %d to %d", self.path, version, SCHEMA_VERSION)
            cur.execute("ALTER TABLE nodes RENAME TO nodes_v2")
            cur.execute(_NODES_DDL)
            cur.execute("INSERT INTO nodes (label, id, props) SELECT label, id, props FROM nodes_v2")
            cur.execute("DROP TABLE nodes_v2")  # and its expression indexes

    @staticmethod
    def _index_props(cur: sqlite3.Cursor) -> None:
        """Index every ``schema.INDEXED_PROPS`` property not indexed yet: add its column if
        missing, fill it for the label's rows already there, create the label's partial index
        (which an insert maintains only for rows of its own label)."""
        columns = {r[1] for r in cur.execute("PRAGMA table_info(nodes)")}
        indexes = {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'nodes'")}
        for label, props in schema.INDEXED_PROPS.items():
            for p in props:
                if f"nodes_{label}_{p}" in indexes:
                    continue
                if p not in columns:
                    cur.execute(f"ALTER TABLE nodes ADD COLUMN {_column(p)}")
                    columns.add(p)
                cur.execute(f"UPDATE nodes SET {_column(p)} = json_extract(props, '$.{p}') WHERE label = ?", (label,))
                cur.execute(f"CREATE INDEX nodes_{label}_{p} ON nodes ({_column(p)}, id) WHERE label = '{label}'")

    # -- writes -------------------------------------------------------------------------------
    def prepare(self, change: ChangeSet) -> ChangeSet:
        if change.encoded is not None:
            return change
        return ChangeSet(delete_edges=change.delete_edges, delete_nodes=change.delete_nodes,
                         encoded=self._encode(change), encoded_rows=change.n_rows)

    @classmethod
    def _encode(cls, change: ChangeSet) -> _Encoded:
        """The statement parameters of ``change``'s upserts; a bad row raises here, before any write."""
        nodes = [(label, cls._node_params(schema.check_label(label), rows)) for label, rows in change.nodes.items()]
        edges = [cls._edge_params(explicit_rel(b.rel_type), b.src_label, b.dst_label, b.rows) for b in change.edges]
        return _Encoded(nodes, edges)

    def apply(self, change: ChangeSet) -> None:
        if change.encoded is None:
            enc = self._encode(change)
        elif isinstance(change.encoded, _Encoded):
            enc = change.encoded
        else:
            raise StoreError(f"this change was prepared for another store ({type(change.encoded).__name__})")
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                for rel_type, src_label, ids in change.delete_edges:
                    explicit_rel(rel_type)
                    cur.executemany(
                        "DELETE FROM edges WHERE type = ? AND src = ? AND src_label = ?",
                        ((rel_type, i, src_label) for i in ids),
                    )
                for label, ids in change.delete_nodes:
                    present = self._present(cur, label, ids)  # most deletions name what is not there
                    cur.executemany("DELETE FROM edges WHERE src = ? AND src_label = ?", ((i, label) for i in present))
                    cur.executemany("DELETE FROM edges WHERE dst = ? AND dst_label = ?", ((i, label) for i in present))
                    cur.executemany("DELETE FROM nodes WHERE label = ? AND id = ?", ((label, i) for i in present))
                for label, params in enc.nodes:
                    cur.executemany(_upsert_node(label), params)
                for params in enc.edges:
                    cur.executemany(_UPSERT_EDGE, params)
                cur.execute("COMMIT")
                self._maybe_analyze(cur, change.n_rows)
            except BaseException as e:
                cur.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"SQLite write failed and was rolled back: {e}") from e
                raise

    @staticmethod
    def _present(cur: sqlite3.Cursor, label: str, ids: Sequence[str]) -> list[str]:
        out: list[str] = []
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT id FROM nodes WHERE label = ? AND id IN ({','.join('?' * len(chunk))})"
            out.extend(r[0] for r in cur.execute(q, (label, *chunk)))
        return out

    def _maybe_analyze(self, cur: sqlite3.Cursor, n_rows: int) -> None:
        """Refresh the planner's statistics when the data grew by half since the last time, so
        it picks the per-label partial indexes; sampled, so it stays cheap."""
        self._rows_since_analyze += n_rows
        if self._rows_since_analyze >= max(5000, self._rows_at_analyze // 2):
            cur.execute("ANALYZE")
            self._rows_at_analyze += self._rows_since_analyze
            self._rows_since_analyze = 0

    @staticmethod
    def _node_params(label: str, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """The :func:`_upsert_node` parameters of ``label``'s ``rows`` (values converted, or an
        error naming the row, by :func:`graph.values.node_props`). A row with a string id and
        plain values only (:func:`graph.values.plain_nulls`: nothing to convert, no list for a
        column), nearly every row, skips the calls (about 0.7x the encoding time)."""
        cols = schema.INDEXED_PROPS.get(label, ())
        out: list[tuple[Any, ...]] = []
        for row in rows:
            node_id = row.get("id")
            if type(node_id) is str and node_id and (nulls := plain_nulls(row.values())) is not None:
                props = dict(row)
                del props["id"]
                columns = tuple(map(props.get, cols))
            else:
                nulls = None
                node_id, props = node_props(label, row)
                columns = tuple(map(props.get, cols))
                if list in map(type, columns):
                    columns = tuple(map(_column_value, columns))
            out.append((label, node_id, *_dumps_both(props, nulls), *columns))
        return out

    @staticmethod
    def _edge_params(rel: str, src_label: str, dst_label: str, rows: Sequence[Row]) -> list[tuple[str, ...]]:
        """The ``_UPSERT_EDGE`` parameters of a batch of ``rel`` edge ``rows`` (a row with string
        ends and key and plain values skips :func:`graph.values.edge_row`'s checks, as above)."""
        out: list[tuple[str, ...]] = []
        for row in rows:
            src, dst, key = row.get("src"), row.get("dst"), row.get("key", "")
            if type(src) is str and type(dst) is str and type(key) is str and \
                    (nulls := plain_nulls(row.values())) is not None:
                props = dict(row)
                del props["src"], props["dst"]
                props.pop("key", None)
            else:
                r = edge_row(rel, row)
                src, dst, key, props, nulls = r["src"], r["dst"], r["key"], r["props"], None
            out.append((rel, src, dst, key, src_label, dst_label, *_dumps_both(props, nulls)))
        return out

    # -- reads --------------------------------------------------------------------------------
    @staticmethod
    def _row(node_id: str, props: str) -> Row:
        row: Row = {"id": node_id}
        row.update(orjson.loads(props))
        return row

    def get_node(self, label: str, node_id: str) -> Row | None:
        schema.check_label(label)
        with self._lock:
            hit = self._conn.execute(
                "SELECT id, props FROM nodes WHERE label = ? AND id = ?", (label, node_id)
            ).fetchone()
        return self._row(*hit) if hit else None

    def get_nodes(self, label: str, ids: Sequence[str]) -> dict[str, Row]:
        schema.check_label(label)
        out: dict[str, Row] = {}
        ids = list(dict.fromkeys(ids))
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = f"SELECT id, props FROM nodes WHERE label = ? AND id IN ({','.join('?' * len(chunk))})"
                for node_id, props in self._conn.execute(q, (label, *chunk)):
                    out[node_id] = self._row(node_id, props)
        return out

    def _where(self, label: str, where: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        # the label is checked against the schema, so it can stand as a literal, which lets
        # SQLite use the label's partial indexes
        sql = f"label = '{schema.check_label(label)}'"
        params: list[Any] = []
        for k, v in (where or {}).items():
            if k == "id":
                sql += " AND id = ?"
                params.append(v)
            elif v is None:
                sql += f" AND {_prop_expr(label, k)} IS NULL"
            else:
                sql += f" AND {_prop_expr(label, k)} = ?"
                params.append(v)
        return sql, params

    def list_nodes(
        self,
        label: str,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        schema.check_label(label)
        cond, params = self._where(label, where)
        q = f"SELECT id, props FROM nodes WHERE {cond} ORDER BY id LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._conn.execute(q, (*params, -1 if limit is None else limit, offset)).fetchall()
        return [self._row(i, p) for i, p in rows]

    def iter_nodes(self, label: str, where: Mapping[str, Any] | None = None, batch_size: int = 5000) -> Iterator[Row]:
        schema.check_label(label)
        cond, params = self._where(label, where)
        last = ""
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT id, props FROM nodes WHERE {cond} AND id > ? ORDER BY id LIMIT ?",
                    (*params, last, batch_size),
                ).fetchall()
            if not rows:
                return
            for i, p in rows:
                yield self._row(i, p)
            last = rows[-1][0]

    def count_nodes(self, label: str, where: Mapping[str, Any] | None = None) -> int:
        schema.check_label(label)
        cond, params = self._where(label, where)
        with self._lock:
            return int(self._conn.execute(f"SELECT count(*) FROM nodes WHERE {cond}", params).fetchone()[0])

    def list_edges(
        self,
        rel_type: str,
        src: str | None = None,
        dst: str | None = None,
        limit: int | None = None,
    ) -> list[Edge]:
        if schema.check_rel(rel_type) in schema.IMPLIED:
            iq, iparams = _implied_query(schema.IMPLIED[rel_type], src, dst)
            with self._lock:
                found = self._conn.execute(iq + " ORDER BY 1, 2, 3 LIMIT ?", (*iparams, -1 if limit is None else limit))
                return [Edge(rel_type, s, d, k, orjson.loads(p)) for s, d, k, p in found]
        q = "SELECT src, dst, key, props FROM edges WHERE type = ?"
        params: list[Any] = [rel_type]
        if src is not None:
            q += " AND src = ?"
            params.append(src)
        if dst is not None:
            q += " AND dst = ?"
            params.append(dst)
        q += " ORDER BY src, dst, key LIMIT ?"
        params.append(-1 if limit is None else limit)
        with self._lock:
            rows = self._conn.execute(q, params).fetchall()
        return [Edge(rel_type, s, d, k, orjson.loads(p)) for s, d, k, p in rows]

    def count_edges(self, rel_type: str) -> int:
        if schema.check_rel(rel_type) in schema.IMPLIED:
            q, params = _implied_query(schema.IMPLIED[rel_type], None, None)
            with self._lock:
                return int(self._conn.execute(f"SELECT count(*) FROM ({q})", params).fetchone()[0])
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM edges WHERE type = ?", (rel_type,)).fetchone()[0])

    def neighbours(self, node_id: str, rel_type: str, direction: str = "out") -> list[tuple[Edge, Row]]:
        if schema.check_rel(rel_type) in schema.IMPLIED and direction in ("out", "in"):
            imp = schema.IMPLIED[rel_type]
            out = direction == "out"
            q, params = _implied_query(imp, node_id if out else None, None if out else node_id)
            other = imp.dst_label if out else imp.src_label
            q = (f"SELECT x.src, x.dst, x.key, x.props, n.id, n.props FROM ({q}) x JOIN nodes n "
                 f"ON n.label = '{other}' AND n.id = x.{'dst' if out else 'src'} ORDER BY 5, 3")
            with self._lock:
                rows = self._conn.execute(q, params).fetchall()
            return [(Edge(rel_type, s, d, k, orjson.loads(p)), self._row(ni, npr)) for s, d, k, p, ni, npr in rows]
        if direction == "out":
            q = (
                "SELECT e.src, e.dst, e.key, e.props, n.id, n.props FROM edges e JOIN nodes n "
                "ON n.label = e.dst_label AND n.id = e.dst WHERE e.type = ? AND e.src = ? ORDER BY e.dst, e.key"
            )
        elif direction == "in":
            q = (
                "SELECT e.src, e.dst, e.key, e.props, n.id, n.props FROM edges e JOIN nodes n "
                "ON n.label = e.src_label AND n.id = e.src WHERE e.type = ? AND e.dst = ? ORDER BY e.src, e.key"
            )
        else:
            raise StoreError(f"direction must be 'out' or 'in', not {direction!r}")
        with self._lock:
            rows = self._conn.execute(q, (rel_type, node_id)).fetchall()
        return [(Edge(rel_type, s, d, k, orjson.loads(p)), self._row(ni, npr)) for s, d, k, p, ni, npr in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
