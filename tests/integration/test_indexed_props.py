"""Indexed properties (``schema.INDEXED_PROPS``): filters and implied relationships see every
write, on both stores; the SQLite store keeps them in columns of their own, and a file of its
older layout (expression indexes on the JSON) is migrated on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from graph import schema
from graph.model import Deal, Event, Evidence, Rep, Skill
from graph.sqlite_store import SCHEMA_VERSION, SqliteStore
from graph.store import ChangeSet


def _graph() -> ChangeSet:
    c = ChangeSet().add_nodes([Rep(id="r1", name="A"), Rep(id="r2", name="B", function="legal")])
    c.add_nodes([Skill(id="s1", name="Closing", kind="sales"), Deal(id="d1", outcome="won", account_id="a1")])
    c.add_nodes([Event(id="e1", rep_id="r1", type="chat", source="crm", deal_id="d1"),
                 Event(id="e2", rep_id="r1", type="chat", source="crm")])
    c.add_nodes([Evidence(id="x1", event_id="e1", rep_id="r1", skill_id="s1", code="c", level=2)])
    return c


def _ids(store, label: str, **where: object) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["id"] for r in store.list_nodes(label, where=where)]


def test_filters_follow_partial_updates_and_nulls(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(_graph())
    assert _ids(store, schema.EVENT, rep_id="r1", source="crm") == ["e1", "e2"]
    # a row without the property keeps it; a null removes it; a new value replaces it
    store.apply(ChangeSet().add_rows(schema.EVENT, [{"id": "e1", "text": "hello"}]))
    store.apply(ChangeSet().add_rows(schema.EVENT, [{"id": "e2", "deal_id": "d1"}, {"id": "e2", "rep_id": None}]))
    store.apply(ChangeSet().add_rows(schema.DEAL, [{"id": "d1", "outcome": "lost"}]))
    assert _ids(store, schema.EVENT, rep_id="r1") == ["e1"]
    assert _ids(store, schema.EVENT, rep_id=None) == ["e2"]
    assert _ids(store, schema.EVENT, deal_id="d1") == ["e1", "e2"]
    assert store.get_node(schema.EVENT, "e1")["rep_id"] == "r1"
    assert "rep_id" not in store.get_node(schema.EVENT, "e2")
    assert _ids(store, schema.DEAL, outcome="won") == []
    assert store.count_nodes(schema.DEAL, where={"outcome": "lost", "account_id": "a1"}) == 1
    # the implied relationships follow the same properties
    assert [(e.src, e.dst) for e in store.list_edges(schema.PERFORMED)] == [("r1", "e1")]
    assert [(e.src, e.dst) for e in store.list_edges(schema.ABOUT, dst="d1")] == [("e1", "d1"), ("e2", "d1")]
    assert [(e.src, e.dst, e.key) for e in store.list_edges(schema.EVIDENCES)] == [("e1", "s1", "x1")]


def test_same_property_name_is_filtered_per_label(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(_graph())
    # Event and Evidence both index rep_id; Rep does not index name (filtered from the JSON)
    assert _ids(store, schema.EVIDENCE, rep_id="r1") == ["x1"]
    assert _ids(store, schema.REP, name="B", function="legal") == ["r2"]
    assert _ids(store, schema.REP, function="sales") == ["r1"]


def _write_schema_2_file(path: Path) -> None:
    """A store file as capmap wrote it with store schema 2 (nodes WITHOUT ROWID, expression
    indexes on their JSON)."""
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE nodes (label TEXT NOT NULL, id TEXT NOT NULL, props TEXT NOT NULL, PRIMARY KEY (label, id)) WITHOUT ROWID;"
        "CREATE TABLE edges (type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, key TEXT NOT NULL DEFAULT '',"
        " src_label TEXT NOT NULL, dst_label TEXT NOT NULL, props TEXT NOT NULL,"
        " PRIMARY KEY (type, src, dst, key, src_label, dst_label)) WITHOUT ROWID;"
        "CREATE INDEX edges_by_dst_end ON edges (dst, type, src, key);"
        "CREATE INDEX edges_by_src_end ON edges (src, src_label);"
        "CREATE INDEX nodes_Event_rep_id ON nodes (json_extract(props, '$.rep_id'), id) WHERE label = 'Event';"
        "CREATE INDEX nodes_Rep_function ON nodes (json_extract(props, '$.function'), id) WHERE label = 'Rep';"
        """INSERT INTO nodes VALUES ('Rep', 'r1', '{"function":"sales","name":"A"}'),
             ('Skill', 's1', '{"kind":"sales","name":"Closing"}'),
             ('Event', 'e1', '{"rep_id":"r1","source":"crm","type":"chat"}'),
             ('Event', 'e2', '{"source":"crm","tags":["a","b"]}');"""
        """INSERT INTO edges VALUES ('HAS_CAPABILITY', 'r1', 's1', '', 'Rep', 'Skill', '{"level":2}');"""
        "PRAGMA user_version = 2;"
    )
    con.close()


def test_sqlite_file_of_schema_2_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    _write_schema_2_file(path)
    st = SqliteStore(path)
    assert st.get_node(schema.EVENT, "e1") == {"id": "e1", "rep_id": "r1", "source": "crm", "type": "chat"}
    assert st.get_node(schema.EVENT, "e2") == {"id": "e2", "source": "crm", "tags": ["a", "b"]}
    assert _ids(st, schema.EVENT, rep_id="r1") == ["e1"]
    assert _ids(st, schema.EVENT, source="crm") == ["e1", "e2"]
    assert _ids(st, schema.EVENT, rep_id=None) == ["e2"]
    assert _ids(st, schema.REP, function="sales") == ["r1"]
    assert [(e.src, e.dst) for e in st.list_edges(schema.PERFORMED)] == [("r1", "e1")]
    assert [e.props for e in st.list_edges(schema.HAS_CAPABILITY)] == [{"level": 2}]
    st.apply(_graph())
    assert _ids(st, schema.EVENT, rep_id="r1") == ["e1", "e2"]
    st.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert not con.execute("SELECT name FROM sqlite_master WHERE name LIKE '%_v2' OR name LIKE '%_v0'").fetchall()
    con.close()
    # opening it again changes nothing
    st = SqliteStore(path)
    assert st.count_nodes(schema.EVENT) == 2
    assert _ids(st, schema.EVENT, rep_id="r1") == ["e1", "e2"]
    st.close()


def test_filters_use_the_column_indexes(sqlite_store: SqliteStore) -> None:
    sqlite_store.apply(_graph())
    for label, props in schema.INDEXED_PROPS.items():
        for p in props:
            cond, params = sqlite_store._where(label, {p: "x"})
            plan = " ".join(r[-1] for r in sqlite_store._conn.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM nodes WHERE {cond} ORDER BY id", params))
            assert f"USING INDEX nodes_{label}_{p} " in plan, plan


def test_filters_on_a_large_store_use_the_column_indexes_after_analyze(sqlite_store: SqliteStore) -> None:
    """Regression: with the planner's statistics (the store runs ANALYZE as it grows), filters
    on an expression index (store schema 2) were planned as a scan of the whole label."""
    events = [Event(id=f"e{i:05d}", rep_id=f"r{i % 500}", type="chat", source="crm", deal_id=f"d{i % 2000}")
              for i in range(6000)]
    sqlite_store.apply(ChangeSet().add_nodes(events))
    sqlite_store._conn.execute("ANALYZE")
    for p in ("rep_id", "deal_id"):
        cond, params = sqlite_store._where(schema.EVENT, {p: "x"})
        plan = " ".join(r[-1] for r in sqlite_store._conn.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM nodes WHERE {cond} ORDER BY id", params))
        assert f"USING INDEX nodes_Event_{p} " in plan, plan
    assert len(sqlite_store.list_nodes(schema.EVENT, where={"rep_id": "r7"})) == 12
