"""Neo4jStore against SqliteStore: the same ChangeSets must give the same reads.

Runs on a real Neo4j server (the session fixture ``neo4j_server`` in conftest.py; skipped when
Neo4j cannot start outside CI) and a real SQLite file. The Neo4j store gets a tiny batch size so
every write is split into several ``UNWIND`` statements inside its one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph import cypher, schema
from graph.errors import StoreError
from graph.model import Rep, Skill
from graph.neo4j_store import Neo4jStore
from graph.sqlite_store import SqliteStore
from graph.store import ChangeSet, EdgeBatch

pytestmark = pytest.mark.neo4j

BATCH = 7
LABELS = (schema.REP, schema.SKILL, schema.EVENT)
RELS = (schema.HAS_CAPABILITY, schema.TEACHES, schema.COLLABORATED)


@pytest.fixture
def neo(neo4j_server: Any) -> Iterator[Neo4jStore]:
    from neo4j import GraphDatabase

    driver = GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, neo4j_server.password))
    driver.execute_query("MATCH (n) DETACH DELETE n", database_="neo4j")
    st = Neo4jStore(driver, "neo4j", batch_size=BATCH, owns_driver=True)
    yield st
    st.close()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path / "store.sqlite")
    yield st
    st.close()


def both(lite: SqliteStore, neo: Neo4jStore, change: ChangeSet) -> None:
    lite.apply(change)
    neo.apply(change)


def snapshot(st: Any) -> dict[str, Any]:
    """Every read of the port, on every label and relationship type the tests write."""
    snap: dict[str, Any] = {}
    for label in LABELS:
        rows = st.list_nodes(label)
        snap[f"list {label}"] = rows
        snap[f"count {label}"] = st.count_nodes(label)
        snap[f"get_nodes {label}"] = st.get_nodes(label, [r["id"] for r in rows][::-1] + ["ghost"])
        snap[f"get_node {label}"] = [st.get_node(label, r["id"]) for r in rows] + [st.get_node(label, "ghost")]
    snap["where"] = [
        st.list_nodes(schema.REP, where={"function": "sales"}),
        st.list_nodes(schema.REP, where={"office": None}),
        st.list_nodes(schema.REP, where={"function": "legal", "office": None}, limit=2, offset=1),
        st.list_nodes(schema.REP, limit=3, offset=2),
        st.list_nodes(schema.REP, limit=0),
        st.list_nodes(schema.REP, limit=-1, offset=-3),
        st.count_nodes(schema.REP, where={"function": "legal"}),
        st.count_nodes(schema.REP, where={"level": 2}),
    ]
    for rel in RELS:
        snap[f"edges {rel}"] = st.list_edges(rel)
        snap[f"edges {rel} limited"] = st.list_edges(rel, limit=2)
        snap[f"count {rel}"] = st.count_edges(rel)
        for node_id in ("r0", "r1", "r2", "s1", "s2", "ghost"):
            snap[f"{rel} from {node_id}"] = st.list_edges(rel, src=node_id)
            snap[f"{rel} to {node_id}"] = st.list_edges(rel, dst=node_id)
            snap[f"{rel} out {node_id}"] = st.neighbours(node_id, rel, "out")
            snap[f"{rel} in {node_id}"] = st.neighbours(node_id, rel, "in")
        snap[f"{rel} r1->s1"] = st.list_edges(rel, src="r1", dst="s1")
    return snap


def assert_same(lite: SqliteStore, neo: Neo4jStore) -> dict[str, Any]:
    a, b = snapshot(lite), snapshot(neo)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k
    return a


def base() -> ChangeSet:
    c = ChangeSet().add_nodes(
        [Rep(id=f"r{i}", name=f"Rep {i}", function="sales" if i % 3 == 0 else "legal", departments=("a", "b")) for i in range(12)]
    )
    c.add_nodes([Skill(id=f"s{i}", name=f"Skill {i}", kind="sales") for i in range(1, 4)])
    c.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL,
                [{"src": f"r{i}", "dst": f"s{1 + i % 3}", "level": i % 5, "score": i / 3} for i in range(12)]
                + [{"src": "r1", "dst": "s3", "level": 1, "score": 0.5}])
    c.add_edges(schema.TEACHES, schema.REP, schema.SKILL,
                [{"src": "r1", "dst": "s1", "key": f"ev{k}", "weight": k} for k in (3, 1, 2)] + [{"src": "r2", "dst": "s1"}])
    c.add_edges(schema.COLLABORATED, schema.REP, schema.REP,
                [{"src": "r1", "dst": "r2", "n_deals": 2}, {"src": "r2", "dst": "r1", "n_deals": 2}, {"src": "r0", "dst": "r1"}])
    return c


def test_a_sequence_of_changes_reads_the_same(lite: SqliteStore, neo: Neo4jStore) -> None:
    both(lite, neo, base())
    first = assert_same(lite, neo)
    assert first["count Rep"] == 12 and first["count HAS_CAPABILITY"] == 13 and first["count TEACHES"] == 4

    both(lite, neo, base())  # idempotent
    assert assert_same(lite, neo) == first

    # properties merge by id; a None in an update removes the property (json_patch / SET +=)
    both(lite, neo, ChangeSet().add_rows(schema.REP, [{"id": "r1", "office": "Shanghai", "level": 2},
                                                      {"id": "r2", "name": None, "departments": ["x"]}]))
    both(lite, neo, ChangeSet().add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL,
                                          [{"src": "r1", "dst": "s2", "score": None, "low": 0.1}]))
    snap = assert_same(lite, neo)
    assert neo.get_node(schema.REP, "r1") == {"id": "r1", "name": "Rep 1", "function": "legal", "source": "",
                                              "departments": ["a", "b"], "office": "Shanghai", "level": 2}
    assert "name" not in snap["get_nodes Rep"]["r2"]

    # an edge whose endpoint is missing is skipped; so is a batch whose endpoint label is unknown
    c = ChangeSet().add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL,
                              [{"src": "r1", "dst": "ghost"}, {"src": "ghost", "dst": "s1"}, {"src": "r6", "dst": "s2"}])
    c.edges.append(EdgeBatch(schema.HAS_CAPABILITY, "Person", schema.SKILL, [{"src": "r1", "dst": "s1"}]))
    both(lite, neo, c)
    assert assert_same(lite, neo)["count HAS_CAPABILITY"] == 14

    # delete a node's edges then re-add some in the same change: replaced
    c = ChangeSet(delete_edges=[(schema.HAS_CAPABILITY, schema.REP, ["r1", "r4"]), (schema.TEACHES, "Person", ["r1"])])
    c.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, [{"src": "r1", "dst": "s3", "level": 4}])
    both(lite, neo, c)
    snap = assert_same(lite, neo)
    assert [(e.dst, e.props) for e in snap["HAS_CAPABILITY from r1"]] == [("s3", {"level": 4})]

    # deleting nodes removes their edges, in and out; unknown labels delete nothing
    both(lite, neo, ChangeSet(delete_nodes=[(schema.REP, ["r2", "ghost"]), (schema.SKILL, ["s1"]), ("Person", ["r1"])]))
    snap = assert_same(lite, neo)
    assert snap["count Rep"] == 11 and snap["count COLLABORATED"] == 1 and snap["count TEACHES"] == 0

    # several rows for one id in one change (split over statements): applied in order
    rows = [{"id": "r5", "v": i, f"k{i}": i} for i in range(2 * BATCH)] + [{"id": "r5", "k0": None}]
    both(lite, neo, ChangeSet().add_rows(schema.REP, rows[::2] + [{"id": "r0"}] * BATCH + rows[1::2]))
    assert assert_same(lite, neo)["get_nodes Rep"]["r5"]["v"] == 2 * BATCH - 1

    # delete then upsert the same node in one change: a fresh node, no old properties or edges
    c = ChangeSet(delete_nodes=[(schema.REP, ["r3"])]).add_rows(schema.REP, [{"id": "r3", "name": "again"}])
    both(lite, neo, c)
    assert assert_same(lite, neo)["get_nodes Rep"]["r3"] == {"id": "r3", "name": "again"}


def test_iter_nodes_pages_past_the_batch_size(lite: SqliteStore, neo: Neo4jStore) -> None:
    rows = [{"id": f"e{i:04d}", "rep_id": f"r{i % 3}", "n": i, "w": i / 7} for i in range(1000)]
    c = ChangeSet().add_rows(schema.EVENT, rows[::-1])
    both(lite, neo, c)
    for kwargs in ({"batch_size": 128}, {"batch_size": 1000}, {"batch_size": 5000}, {"where": {"rep_id": "r1"}, "batch_size": 50}):
        got = list(neo.iter_nodes(schema.EVENT, **kwargs))  # type: ignore[arg-type]
        assert got == list(lite.iter_nodes(schema.EVENT, **kwargs)), kwargs  # type: ignore[arg-type]
    assert [r["id"] for r in neo.iter_nodes(schema.EVENT, batch_size=128)] == [f"e{i:04d}" for i in range(1000)]
    assert neo.count_nodes(schema.EVENT, where={"rep_id": "r1"}) == lite.count_nodes(schema.EVENT, where={"rep_id": "r1"}) == 333
    assert neo.get_nodes(schema.EVENT, [f"e{i:04d}" for i in range(0, 1000, 3)]) == lite.get_nodes(
        schema.EVENT, [f"e{i:04d}" for i in range(0, 1000, 3)])


def test_a_failing_change_writes_nothing(lite: SqliteStore, neo: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    both(lite, neo, base())
    before = assert_same(lite, neo)
    bad = ChangeSet(delete_nodes=[(schema.REP, ["r0"])]).add_rows(schema.REP, [{"id": "new1"}] * 20 + [{"name": "no id"}])
    for st in (lite, neo):
        with pytest.raises(StoreError, match="without a string id"):
            st.apply(bad)
    assert assert_same(lite, neo) == before

    # a failure inside the server, after earlier statements of the transaction already ran
    monkeypatch.setattr(cypher, "merge_edges", lambda *a: "UNWIND $rows AS row RETURN row.src +")
    c = ChangeSet(delete_nodes=[(schema.REP, ["r0"])]).add_rows(schema.REP, [{"id": f"n{i}"} for i in range(30)])
    c.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, [{"src": "r1", "dst": "s1"}])
    with pytest.raises(StoreError, match="apply of 31 rows failed") as err:
        neo.apply(c)
    assert err.value.__cause__ is not None and type(err.value.__cause__).__module__.startswith("neo4j")
    assert snapshot(neo) == before


def test_values_are_converted_before_the_driver(neo: Neo4jStore) -> None:
    cet = timezone(timedelta(hours=1))
    row = {"id": "r1", "i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "arr": np.array([1, 2]),
           "mixed": [1, 2.5], "d": Decimal("2.25"), "t": ("a", "b"), "empty": [],
           "at": datetime(2024, 1, 2, 4, 4, 5, tzinfo=cet), "naive": datetime(2024, 1, 2, 3, 4, 5, 600)}
    neo.apply(ChangeSet().add_rows(schema.REP, [row]))
    assert neo.get_node(schema.REP, "r1") == {
        "id": "r1", "arr": [1, 2], "at": "2024-01-02T03:04:05Z", "b": True, "d": 2.25, "empty": [], "f": 0.5,
        "i": 3, "mixed": [1.0, 2.5], "naive": "2024-01-02T03:04:05.000600Z", "t": ["a", "b"]}
    assert neo.count_nodes(schema.REP, where={"i": np.int64(3)}) == 1
    for bad, match in (({"attrs": {"a": 1}}, "Rep 'r2' property 'attrs': a map"),
                       ({"xs": [1, None]}, "Rep 'r2' property 'xs'"), ({"xs": ["a", 1]}, "only strings"),
                       ({"big": 2**64}, "64 bits"), ({"o": object()}, "object values")):
        with pytest.raises(StoreError, match=match):
            neo.apply(ChangeSet().add_rows(schema.REP, [{"id": "r2", **bad}]))
    with pytest.raises(StoreError, match="without src and dst"):
        neo.apply(ChangeSet().add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, [{"src": "r1"}]))
    assert neo.count_nodes(schema.REP) == 1


def test_errors_are_wrapped_once() -> None:
    with pytest.raises(StoreError, match="cannot connect to Neo4j at bolt://127.0.0.1:1") as err:
        Neo4jStore.connect("bolt://127.0.0.1:1", "neo4j", "x", database="neo4j", connection_timeout=2)
    assert err.value.__cause__ is not None


def test_connect_owns_and_closes_its_driver(neo4j_server: Any) -> None:
    st = Neo4jStore.connect(neo4j_server.uri, neo4j_server.user, neo4j_server.password, database="neo4j", batch_size=3)
    assert st.name == "neo4j" and st.count_nodes(schema.TEAM) == 0
    st.close()
    with pytest.raises(StoreError):
        st.count_nodes(schema.TEAM)
    with pytest.raises(StoreError, match="database 'nope'"):
        Neo4jStore.connect(neo4j_server.uri, neo4j_server.user, neo4j_server.password, database="nope")


# -- differences found while writing Neo4jStore, fixed in SqliteStore: regression tests -------
def test_none_on_first_insert(lite: SqliteStore, neo: Neo4jStore) -> None:
    both(lite, neo, ChangeSet().add_rows(schema.REP, [{"id": "r1", "office": None, "name": "A"}]))
    assert lite.get_node(schema.REP, "r1") == neo.get_node(schema.REP, "r1") == {"id": "r1", "name": "A"}


def test_where_on_id(lite: SqliteStore, neo: Neo4jStore) -> None:
    both(lite, neo, base())
    assert [r["id"] for r in lite.list_nodes(schema.REP, where={"id": "r1"})] == ["r1"]
    assert lite.list_nodes(schema.REP, where={"id": "r1"}) == neo.list_nodes(schema.REP, where={"id": "r1"})


@pytest.mark.parametrize("bad", [{"m": {"a": 1}}, {"m": [1, None]}, {"m": float("nan")}, {"m": 2**70}, {"m": object()}])
def test_unstorable_values_are_refused_by_both(lite: SqliteStore, neo: Neo4jStore, bad: dict) -> None:
    row = {"id": "r9", **bad}
    for st in (lite, neo):
        with pytest.raises(StoreError, match="Rep 'r9' property 'm'"):
            st.apply(ChangeSet().add_rows(schema.REP, [row]))
        assert st.get_node(schema.REP, "r9") is None


def test_same_id_under_two_labels_gives_two_edges(lite: SqliteStore, neo: Neo4jStore) -> None:
    c = ChangeSet().add_rows(schema.SCENARIO, [{"id": "x"}]).add_rows(schema.ROLE, [{"id": "x"}])
    c.add_rows(schema.SKILL, [{"id": "s"}])
    c.add_edges(schema.REQUIRES, schema.SCENARIO, schema.SKILL, [{"src": "x", "dst": "s", "level": 2}])
    c.add_edges(schema.REQUIRES, schema.ROLE, schema.SKILL, [{"src": "x", "dst": "s", "level": 3}])
    both(lite, neo, c)
    assert lite.count_edges(schema.REQUIRES) == neo.count_edges(schema.REQUIRES) == 2


def test_edge_row_without_ends_is_a_store_error(lite: SqliteStore, neo: Neo4jStore) -> None:
    for st in (lite, neo):
        with pytest.raises(StoreError, match="without src and dst"):
            st.apply(ChangeSet().add_edges(schema.REQUIRES, schema.ROLE, schema.SKILL, [{"src": "x"}]))
