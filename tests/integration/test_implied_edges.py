"""Implied relationships (``schema.IMPLIED``): PERFORMED, ABOUT and EVIDENCES follow the Event and
Evidence nodes' properties on both stores, whatever order the nodes arrive in."""

from __future__ import annotations

import pytest

from graph import schema
from graph.errors import StoreError
from graph.model import Deal, Event, Evidence, Rep, Skill
from graph.store import ChangeSet


def ends(store, rel: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(e.src, e.dst, e.key) for e in store.list_edges(rel)]


def graph() -> ChangeSet:
    c = ChangeSet().add_nodes([Rep(id="r1", name="Wang"), Rep(id="r2", name="Li")])
    c.add_nodes([Skill(id="s1", name="Closing"), Skill(id="s2", name="Discovery"), Deal(id="d1", name="Deal 1")])
    c.add_nodes([Event(id="e1", rep_id="r1", deal_id="d1", type="call"), Event(id="e2", rep_id="r2", type="chat")])
    c.add_nodes([Evidence(id="x1", event_id="e1", rep_id="r1", skill_id="s1", code="ask", level=3, confidence=0.8,
                          credibility=0.5, coder="text"),
                 Evidence(id="x2", event_id="e1", rep_id="r1", skill_id="s2", code="probe", level=2, coder="rules")])
    return c


def test_implied_relationships_follow_the_nodes(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(graph())
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.ABOUT) == [("e1", "d1", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2")]
    assert (store.count_edges(schema.PERFORMED), store.count_edges(schema.EVIDENCES)) == (2, 2)
    x1 = store.list_edges(schema.EVIDENCES, dst="s1")[0]
    assert x1.props == {"code": "ask", "level": 3, "confidence": 0.8, "weight": 0.4, "coder": "text"}
    assert [(e.dst, n["type"]) for e, n in store.neighbours("r1", schema.PERFORMED)] == [("e1", "call")]
    assert [(e.key, n["id"]) for e, n in store.neighbours("s2", schema.EVIDENCES, "in")] == [("x2", "e1")]
    assert [e.dst for e in store.list_edges(schema.EVIDENCES, src="e1")] == ["s1", "s2"]
    assert store.list_edges(schema.PERFORMED, src="r1", dst="e2") == []

    # the owner's property moves: the relationship moves with it; a removed property removes it
    store.apply(ChangeSet().add_rows(schema.EVENT, [{"id": "e2", "rep_id": "r1"}, {"id": "e1", "deal_id": None}]))
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r1", "e2", "")]
    assert ends(store, schema.ABOUT) == []
    # deleting an owner or an end removes it
    store.apply(ChangeSet(delete_nodes=[(schema.EVIDENCE, ["x2"]), (schema.REP, ["r2"])]))
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1")]
    store.apply(ChangeSet(delete_nodes=[(schema.SKILL, ["s1"])]))
    assert ends(store, schema.EVIDENCES) == []

    store.apply(graph())  # idempotent: the same graph again gives the same relationships
    store.apply(graph())
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2")]
    assert ends(store, schema.ABOUT) == [("e1", "d1", "")]


def test_an_end_that_arrives_later_completes_the_relationship(store) -> None:  # type: ignore[no-untyped-def]
    c = graph()
    late = {schema.REP: c.nodes.pop(schema.REP), schema.DEAL: c.nodes.pop(schema.DEAL)}
    skills = c.nodes.pop(schema.SKILL)
    events = c.nodes.pop(schema.EVENT)
    store.apply(c)  # evidence first: no event, no skill yet
    assert ends(store, schema.EVIDENCES) == []
    store.apply(ChangeSet(nodes={schema.EVENT: events}))
    assert ends(store, schema.PERFORMED) == [] and ends(store, schema.ABOUT) == []
    store.apply(ChangeSet(nodes={schema.SKILL: skills, **late}))
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.ABOUT) == [("e1", "d1", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2")]


@pytest.mark.parametrize("rel", sorted(schema.IMPLIED))
def test_a_change_cannot_write_an_implied_relationship(store, rel: str) -> None:  # type: ignore[no-untyped-def]
    imp = schema.IMPLIED[rel]
    with pytest.raises(StoreError, match=f"implied by {imp.owner} nodes"):
        ChangeSet().add_edges(rel, imp.src_label, imp.dst_label, [{"src": "a", "dst": "b"}])
    store.apply(graph())
    with pytest.raises(StoreError, match=f"{rel} relationships are implied"):
        store.apply(ChangeSet(delete_edges=[(rel, imp.src_label, ["e1", "r1"])]))
    assert store.count_edges(schema.EVIDENCES) == 2 and store.count_edges(schema.PERFORMED) == 2


def test_rows_for_one_owner_in_one_change_apply_in_order(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(graph())
    c = ChangeSet().add_rows(schema.EVENT, [{"id": "e2", "rep_id": "r1"}, {"id": "e2", "rep_id": None},
                                            {"id": "e2", "rep_id": "r2", "deal_id": "d1"}])
    c.add_rows(schema.EVIDENCE, [{"id": "x1", "event_id": "e2"}, {"id": "x1", "skill_id": "s2", "code": "probe"},
                                 {"id": "x1", "level": None}, {"id": "x3", "event_id": "e2", "skill_id": "s1"}])
    store.apply(c)
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.ABOUT) == [("e1", "d1", ""), ("e2", "d1", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s2", "x2"), ("e2", "s1", "x3"), ("e2", "s2", "x1")]
    moved = store.list_edges(schema.EVIDENCES, src="e2", dst="s2")[0]
    assert moved.props == {"code": "probe", "confidence": 0.8, "weight": 0.4, "coder": "text"}


def test_writing_an_end_again_keeps_one_relationship_each(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(graph())
    again = ChangeSet().add_nodes([Skill(id="s1", name="Closing 2"), Rep(id="r1", name="Wang")])
    again.add_nodes([Deal(id="d1", name="Deal 1"), Event(id="e1", rep_id="r1", deal_id="d1", type="call")])
    for _ in range(2):
        store.apply(again)
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.ABOUT) == [("e1", "d1", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2")]
    # an owner property no statement can spell still reaches the node, and the owner its ends
    store.apply(ChangeSet().add_rows(schema.EVIDENCE, [{"id": "x3", "event_id": "e2", "skill_id": "s1",
                                                         "code": "ask", "odd name": 1}]))
    assert store.get_node(schema.EVIDENCE, "x3")["odd name"] == 1
    assert [(e.src, e.props) for e in store.list_edges(schema.EVIDENCES, dst="s1")] == [
        ("e1", {"code": "ask", "level": 3, "confidence": 0.8, "weight": 0.4, "coder": "text"}),
        ("e2", {"code": "ask"})]



def test_a_node_that_comes_to_name_an_end_gets_one_relationship(store) -> None:  # type: ignore[no-untyped-def]
    """A node that named no end before a write has no relationship (Neo4j creates it without a
    search); one that named it keeps or moves its one relationship, its properties following."""
    store.apply(graph())
    store.apply(ChangeSet().add_rows(schema.EVIDENCE, [{"id": "x3", "event_id": "e2", "code": "ask"}]))
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2")]
    for _ in range(2):  # e2 comes to name d1, x3 a skill: made once, then kept
        store.apply(ChangeSet().add_rows(schema.EVENT, [{"id": "e2", "deal_id": "d1"}])
                    .add_rows(schema.EVIDENCE, [{"id": "x3", "skill_id": "s2", "level": 1}]))
        assert ends(store, schema.ABOUT) == [("e1", "d1", ""), ("e2", "d1", "")]
        assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2"), ("e2", "s2", "x3")]
    store.apply(ChangeSet().add_rows(schema.EVIDENCE, [{"id": "x3", "event_id": "e2", "skill_id": "s2", "level": 4}]))
    assert [(e.key, e.props) for e in store.list_edges(schema.EVIDENCES, src="e2")] == [
        ("x3", {"code": "ask", "level": 4})]
    assert (store.count_edges(schema.ABOUT), store.count_edges(schema.EVIDENCES)) == (2, 3)

def test_a_prepared_change_keeps_them_too(store) -> None:  # type: ignore[no-untyped-def]
    """``prepare`` runs in an import's worker process: its result crosses a pipe (pickled)."""
    import pickle

    c = graph()
    c.delete_nodes.append((schema.EVENT, ["e9"]))
    store.apply(pickle.loads(pickle.dumps(store.prepare(c))))
    assert ends(store, schema.PERFORMED) == [("r1", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1"), ("e1", "s2", "x2")]
    moved = ChangeSet(delete_nodes=[(schema.EVIDENCE, ["x2"])]).add_rows(schema.EVENT, [{"id": "e1", "rep_id": "r2"}])
    store.apply(store.prepare(moved))
    assert ends(store, schema.PERFORMED) == [("r2", "e1", ""), ("r2", "e2", "")]
    assert ends(store, schema.EVIDENCES) == [("e1", "s1", "x1")]


@pytest.mark.neo4j
def test_neo4j_writes_are_index_seeks_even_planned_on_an_empty_database(neo4j_server) -> None:  # type: ignore[no-untyped-def]
    """Writes keep their first plan (``replan=skip``); one made on a young database must not
    scan, or every row of a large import scans an index (one did, under a plain ``USING INDEX``
    hint: it allows a scan; ``USING INDEX SEEK`` does not)."""
    import dataclasses

    from neo4j import GraphDatabase

    from graph import cypher, model
    from graph.neo4j_store import Neo4jStore

    classes = [c for c in vars(model).values()
               if isinstance(c, type) and issubclass(c, model.Node) and c is not model.Node]
    driver = GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, neo4j_server.password))
    try:
        driver.execute_query("MATCH (n) DETACH DELETE n", database_="neo4j")
        Neo4jStore(driver, "neo4j")  # its constraints and indexes
        statements = [cypher.delete_edges(schema.HAS_CAPABILITY, schema.REP),
                      cypher.merge_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, ["level"])]
        for cls in classes:
            keys = sorted(f.name for f in dataclasses.fields(cls) if f.name != "id")
            statements += [cypher.merge_nodes(cls.LABEL, keys, more=True), cypher.delete_nodes(cls.LABEL)]
        scans = ("NodeByLabelScan", "AllNodesScan", "NodeIndexScan", "RelationshipTypeScan", "AllRelationshipsScan")

        def operators(plan: dict) -> list[str]:
            return [plan["operatorType"], *(o for child in plan.get("children", []) for o in operators(child))]

        for state in ("empty", "reps and deals, no events yet"):
            if state != "empty":  # where a scan of the reps once looked cheaper than a seek
                Neo4jStore(driver, "neo4j").apply(ChangeSet().add_nodes(
                    [Rep(id=f"r{i}") for i in range(1000)] + [Deal(id=f"d{i}") for i in range(1000)]))
            for q in statements:
                _, summary, _ = driver.execute_query(f"EXPLAIN {q} // {state}", database_="neo4j", rows=[])
                assert not [o for o in operators(summary.plan) if any(s in o for s in scans)], (state, q)
    finally:
        driver.close()
