"""Capability-label ids across recomputes, and HR's rename and approval surviving them — on a real
SQLite file and a real Neo4j (the ``store`` fixture)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from api import jobs
from api.graphql_schema import schema as gql
from graph import schema
from graph.model import Capability, CapabilityLabel, Evidence, Rep, Run, Skill
from graph.store import ChangeSet

RUN = "run:cap:test"
HIGH = {"A": "capmap:a", "B": "capmap:b", "C": "capmap:c"}
MIN_EVIDENCE, MIN_CLUSTER = 5, 8


def add_reps(store: Any, group: str, n: int, start: int = 0, seed: int = 0) -> list[str]:
    """``n`` reps strong in the group's skill (L3.5), weak elsewhere (L1.5), with its code."""
    rng = np.random.default_rng([seed, ord(group), start])
    reps = [f"rep:{group}{i:03d}" for i in range(start, start + n)]
    change = ChangeSet().add_nodes([Rep(id=r, name=r) for r in reps])
    caps, ev = [], []
    for r in reps:
        for s in HIGH.values():
            score = round((3.5 if s == HIGH[group] else 1.5) + float(rng.normal(0, 0.05)), 4)
            caps.append(Capability(r, s, round(score), score, score - 0.3, score + 0.3, 6, 3.0, False, RUN).to_edge())
        ev.append(Evidence(id=f"ev:{r}", event_id=f"event:{r}", rep_id=r, skill_id=HIGH[group], code=f"code-{group}", level=3))
    change.add_edges(schema.HAS_CAPABILITY, schema.REP, schema.SKILL, caps).add_nodes(ev)
    store.apply(change)
    return reps


def seed(store: Any) -> None:
    store.apply(ChangeSet().add_nodes([Skill(id=s, name=f"Skill {s[-1].upper()}", name_zh=f"技能{s[-1]}", kind="sales")
                                       for s in HIGH.values()] +
                                      [Run(id=RUN, kind="capabilities", manifest_json=json.dumps({"priors": {s: 2.0 for s in HIGH.values()}}))]))
    add_reps(store, "A", 20)
    add_reps(store, "B", 20)


def recompute(store: Any) -> dict[str, Any]:
    return jobs.cluster_labels(store, RUN, MIN_EVIDENCE, MIN_CLUSTER, 0)


def by_skill(result: dict[str, Any]) -> dict[str, str]:
    return {lb["top_skills"][0]: lb["id"] for lb in result["labels"]}


def memberships(store: Any) -> list[tuple[str, str]]:
    return sorted((e.src, e.dst) for e in store.list_edges(schema.IN_LABEL))


def test_two_recomputes_on_unchanged_data_give_identical_label_ids(store: Any) -> None:
    seed(store)
    first = recompute(store)
    edges = memberships(store)
    second = recompute(store)
    assert first["n_labels"] == 2 and first["outlier_share"] == 0.0 and first["lineage"] == {"new": 2}
    assert [lb["id"] for lb in second["labels"]] == [lb["id"] for lb in first["labels"]]
    assert second["lineage"] == {"matched": 2} and memberships(store) == edges and len(edges) == 40
    third = recompute(store)
    assert third == second  # the same run again: the same run id, nothing new
    assert store.count_nodes(schema.CAPABILITY_LABEL) == 2
    run = store.get_node(schema.RUN, second["run_id"])
    manifest = json.loads(run["manifest_json"])
    assert manifest["outlier_share"] == 0.0 and {e["event"] for e in manifest["lineage"]} == {"matched"}
    label = store.get_node(schema.CAPABILITY_LABEL, first["labels"][0]["id"])
    assert len(label["centroid"]) == len(label["feature_names"]) == 6
    assert json.loads(label["lineage_json"])["event"] == "matched"


def test_a_recompute_after_new_data_keeps_the_ids_of_labels_that_persist(store: Any) -> None:
    seed(store)
    before = by_skill(recompute(store))
    add_reps(store, "A", 6, start=20)
    add_reps(store, "C", 20)
    after = recompute(store)
    ids = by_skill(after)
    assert ids["capmap:a"] == before["capmap:a"] and ids["capmap:b"] == before["capmap:b"]
    assert ids["capmap:c"] not in before.values()
    assert {lb["top_skills"][0]: lb["event"] for lb in after["labels"]} == {"capmap:a": "matched", "capmap:b": "matched",
                                                                               "capmap:c": "new"}
    assert {e.src for e in store.list_edges(schema.IN_LABEL, dst=ids["capmap:a"])} == {f"rep:A{i:03d}" for i in range(26)}


def test_a_label_that_disappears_is_retired_with_its_edges(store: Any) -> None:
    seed(store)
    add_reps(store, "C", 20)
    before = by_skill(recompute(store))
    store.apply(ChangeSet(delete_nodes=[(schema.REP, [f"rep:C{i:03d}" for i in range(20)])]))
    after = recompute(store)
    assert set(by_skill(after).values()) == {before["capmap:a"], before["capmap:b"]}
    assert [r["label_id"] for r in after["retired"]] == [before["capmap:c"]]
    assert store.get_node(schema.CAPABILITY_LABEL, before["capmap:c"]) is None


def _gql(store: Any, query: str) -> dict[str, Any]:
    res = gql.execute_sync(query, context_value={"store": store})
    assert res.errors is None, res.errors
    assert res.data is not None
    return res.data


def test_rename_and_approval_survive_recomputes(store: Any) -> None:
    seed(store)
    ids = by_skill(recompute(store))
    a, b = ids["capmap:a"], ids["capmap:b"]
    renamed = _gql(store, f'mutation {{ renameLabel(id: "{a}", name: "  Closers ", nameZh: "成交高手") '
                          '{ __typename ... on CapabilityLabel { id name nameZh approved } } }')["renameLabel"]
    assert renamed == {"__typename": "CapabilityLabel", "id": a, "name": "Closers", "nameZh": "成交高手", "approved": False}
    approved = _gql(store, f'mutation {{ approveLabel(id: "{b}") {{ ... on CapabilityLabel {{ id name approved }} }} }}')
    b_name = approved["approveLabel"]["name"]
    assert approved["approveLabel"]["approved"] is True
    add_reps(store, "A", 5, start=20)
    add_reps(store, "C", 20)
    after = recompute(store)
    recompute(store)
    la, lb = store.get_node(schema.CAPABILITY_LABEL, a), store.get_node(schema.CAPABILITY_LABEL, b)
    assert (la["name"], la["name_zh"], la["renamed"], la["approved"]) == ("Closers", "成交高手", True, False)
    assert la["auto_name"].startswith("Strong in Skill A") and la["n_members"] == 25
    assert (lb["name"], lb["approved"], lb["status"]) == (b_name, True, "approved")
    assert {x["id"]: x["approved"] for x in after["labels"]} == {a: False, b: True, by_skill(after)["capmap:c"]: False}
    listed = {x["id"]: x for x in _gql(store, "{ labels { id name approved } }")["labels"]}
    assert listed[a]["name"] == "Closers" and listed[b]["approved"] is True


def test_unknown_label_and_blank_name(store: Any) -> None:
    seed(store)
    recompute(store)
    got = _gql(store, 'mutation { approveLabel(id: "label:nope") { __typename ... on NotFoundError { message } } }')
    assert got["approveLabel"] == {"__typename": "NotFoundError", "message": "no CapabilityLabel with id 'label:nope'"}
    lid = store.list_nodes(schema.CAPABILITY_LABEL)[0]["id"]
    res = gql.execute_sync(f'mutation {{ renameLabel(id: "{lid}", name: "  ") {{ __typename }} }}', context_value={"store": store})
    assert res.errors and "name" in res.errors[0].message and "blank" in res.errors[0].message


def test_too_few_reps_gives_a_message_and_keeps_the_labels(store: Any) -> None:
    seed(store)
    first = recompute(store)
    res = jobs.cluster_labels(store, RUN, MIN_EVIDENCE, 100, 0)
    assert res["n_labels"] == 0 and "40 reps with evidence" in res["message"] and "min_cluster_size=100" in res["message"]
    assert sorted(x["id"] for x in store.list_nodes(schema.CAPABILITY_LABEL)) == sorted(lb["id"] for lb in first["labels"])
    low = jobs.cluster_labels(store, RUN, 1000, MIN_CLUSTER, 0)
    assert low["excluded_low_evidence"] == 40 and "0 reps" in low["message"]


def test_reps_without_evidence_are_reported_not_clustered(store: Any) -> None:
    seed(store)
    store.apply(ChangeSet().add_nodes([Rep(id="rep:silent", name="no evidence")]))
    res = recompute(store)
    assert res["excluded_no_evidence"] == 1 and res["n_clustered"] == 40
    assert not store.list_edges(schema.IN_LABEL, src="rep:silent")


def test_emergent_labels_are_left_alone(store: Any) -> None:
    seed(store)
    store.apply(ChangeSet().add_nodes([CapabilityLabel(id="emergent:x", name="Proposed", kind="emergent")]))
    recompute(store)
    recompute(store)
    assert store.get_node(schema.CAPABILITY_LABEL, "emergent:x")["name"] == "Proposed"
