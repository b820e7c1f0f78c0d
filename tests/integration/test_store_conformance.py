"""One conformance suite for the store port, run on a real SQLite file and a real Neo4j."""

from __future__ import annotations

import pytest

from graph import schema
from graph.errors import StoreError, UnknownLabel
from graph.model import Rep, Skill
from graph.store import ChangeSet


def base() -> ChangeSet:
    c = ChangeSet().add_nodes([Rep(id=f"r{i}", name=f"Rep {i}", function="sales" if i % 2 else "legal") for i in range(5)])
    c.add_nodes([Skill(id="s1", name="Closing", kind="sales"), Skill(id="s2", name="Discovery", kind="sales")])
    c.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL,
                [{"src": "r1", "dst": "s1", "level": 3, "score": 3.2}, {"src": "r1", "dst": "s2", "level": 1, "score": 1.1},
                 {"src": "r2", "dst": "s1", "level": 2, "score": 2.0}])
    return c


def test_upsert_is_idempotent(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    store.apply(base())
    assert store.count_nodes(schema.REP) == 5
    assert store.count_nodes(schema.SKILL) == 2
    assert store.count_edges(schema.HAS_CAPABILITY) == 3


def test_properties_merge_by_id(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    store.apply(ChangeSet().add_rows(schema.REP, [{"id": "r1", "office": "Shanghai"}]))
    r = store.get_node(schema.REP, "r1")
    assert r == {"id": "r1", "name": "Rep 1", "function": "sales", "office": "Shanghai", "source": "", "departments": []}
    assert store.get_node(schema.REP, "nope") is None


def test_listing_filters_orders_and_pages(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    assert [r["id"] for r in store.list_nodes(schema.REP, where={"function": "sales"})] == ["r1", "r3"]
    assert [r["id"] for r in store.list_nodes(schema.REP, limit=2, offset=1)] == ["r1", "r2"]
    assert store.count_nodes(schema.REP, where={"function": "legal"}) == 3
    assert [r["id"] for r in store.list_nodes(schema.REP, where={"office": None})] == ["r0", "r1", "r2", "r3", "r4"]
    assert sorted(store.get_nodes(schema.REP, ["r4", "r0", "zz"])) == ["r0", "r4"]


def test_iter_nodes_pages_through_everything(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(ChangeSet().add_rows(schema.EVENT, [{"id": f"e{i:05d}", "rep_id": "r", "n": i} for i in range(2500)]))
    ids = [r["id"] for r in store.iter_nodes(schema.EVENT, batch_size=700)]
    assert ids == [f"e{i:05d}" for i in range(2500)]
    assert store.count_nodes(schema.EVENT, where={"rep_id": "r"}) == 2500


def test_edges_and_neighbours(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    edges = store.list_edges(schema.HAS_CAPABILITY, src="r1")
    assert [(e.src, e.dst, e.props["level"]) for e in edges] == [("r1", "s1", 3), ("r1", "s2", 1)]
    assert [e.src for e in store.list_edges(schema.HAS_CAPABILITY, dst="s1")] == ["r1", "r2"]
    out = store.neighbours("r1", schema.HAS_CAPABILITY, "out")
    assert [(e.props["score"], n["name"]) for e, n in out] == [(3.2, "Closing"), (1.1, "Discovery")]
    inn = store.neighbours("s1", schema.HAS_CAPABILITY, "in")
    assert [n["id"] for _, n in inn] == ["r1", "r2"]
    with pytest.raises(StoreError):
        store.neighbours("r1", schema.HAS_CAPABILITY, "sideways")


def test_edge_to_a_missing_node_is_skipped(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    store.apply(ChangeSet().add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, [{"src": "r1", "dst": "ghost"}]))
    assert store.count_edges(schema.HAS_CAPABILITY) == 3


def test_keyed_edges_are_distinct(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    rows = [{"src": "r1", "dst": "s1", "key": k, "hours": float(k)} for k in ("2", "3")]
    store.apply(ChangeSet().add_edges(schema.TEACHES, schema.REP, schema.SKILL, rows))
    assert [(e.key, e.props["hours"]) for e in store.list_edges(schema.TEACHES)] == [("2", 2.0), ("3", 3.0)]


def test_replace_edges_in_one_change(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    c = ChangeSet(delete_edges=[(schema.HAS_CAPABILITY, schema.REP, ["r1"])])
    c.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, [{"src": "r1", "dst": "s2", "level": 4, "score": 3.9}])
    store.apply(c)
    assert [(e.src, e.dst, e.props["level"]) for e in store.list_edges(schema.HAS_CAPABILITY)] == [("r1", "s2", 4), ("r2", "s1", 2)]


def test_delete_nodes_removes_their_edges(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    store.apply(ChangeSet(delete_nodes=[(schema.SKILL, ["s1"])]))
    assert store.count_nodes(schema.SKILL) == 1
    assert [(e.src, e.dst) for e in store.list_edges(schema.HAS_CAPABILITY)] == [("r1", "s2")]


def test_a_failing_change_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(base())
    bad = ChangeSet().add_rows(schema.REP, [{"id": "new1", "name": "ok"}, {"name": "no id"}])
    with pytest.raises(StoreError):
        store.apply(bad)
    assert store.get_node(schema.REP, "new1") is None
    assert store.count_nodes(schema.REP) == 5


def test_unknown_label_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownLabel):
        store.list_nodes("Person")
    with pytest.raises(UnknownLabel):
        ChangeSet().add_edges("KNOWS", schema.REP, schema.REP, [])


def test_lists_and_unicode_round_trip(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(ChangeSet().add_nodes([Skill(id="zh", name="促成成交", name_zh="促成成交", kind="sales")]))
    store.apply(ChangeSet().add_rows(schema.CAPABILITY_LABEL, [{"id": "l1", "top_codes": ["a", "b"], "approved": True}]))
    assert store.get_node(schema.SKILL, "zh")["name"] == "促成成交"
    assert store.get_node(schema.CAPABILITY_LABEL, "l1") == {"id": "l1", "top_codes": ["a", "b"], "approved": True}
    assert store.count_nodes(schema.CAPABILITY_LABEL, where={"approved": True}) == 1


def test_sqlite_file_of_schema_0_is_migrated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Regression: a store file written before edge keys held endpoint labels failed every
    edge upsert ("ON CONFLICT clause does not match"); it is now migrated on open."""
    import sqlite3

    from graph.sqlite_store import SCHEMA_VERSION, SqliteStore

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE nodes (label TEXT NOT NULL, id TEXT NOT NULL, props TEXT NOT NULL, PRIMARY KEY (label, id)) WITHOUT ROWID;"
        "CREATE TABLE edges (type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, key TEXT NOT NULL DEFAULT '',"
        " src_label TEXT NOT NULL, dst_label TEXT NOT NULL, props TEXT NOT NULL, PRIMARY KEY (type, src, dst, key)) WITHOUT ROWID;"
        "CREATE INDEX edges_by_dst ON edges (type, dst);"
        "INSERT INTO nodes VALUES ('Rep', 'r1', '{}'), ('Skill', 's1', '{}');"
        "INSERT INTO edges VALUES ('HAS_CAPABILITY', 'r1', 's1', '', 'Rep', 'Skill', '{\"level\":2}');"
    )
    con.close()
    st = SqliteStore(path)
    assert [(e.src, e.dst, e.props) for e in st.list_edges(schema.HAS_CAPABILITY)] == [("r1", "s1", {"level": 2})]
    st.apply(base())
    assert st.count_edges(schema.HAS_CAPABILITY) == 3
    st.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer capmap"):
        SqliteStore(path)
