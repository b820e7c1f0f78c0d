"""Incremental, versioned recompute of the capability map, on both stores."""

from __future__ import annotations

import json

import pytest

from api import jobs
from clustering.scoring import ScoringParams, score_capabilities
from graph import schema
from graph.model import Capability
from graph.store import ChangeSet


def world(n_reps: int = 6, n_items: int = 4) -> ChangeSet:
    c = ChangeSet().add_rows(schema.SKILL, [{"id": "s1", "name": "Closing"}, {"id": "s2", "name": "Discovery"}])
    c.add_rows(schema.REP, [{"id": f"r{i}", "name": f"Rep {i}"} for i in range(n_reps)])
    ev = []
    for i in range(n_reps):
        for j in range(n_items):
            ev.append({"id": f"x{i}-{j}", "rep_id": f"r{i}", "skill_id": "s1" if j % 2 else "s2", "event_id": f"e{i}-{j}",
                       "code": "c", "level": (i + j) % 5, "confidence": 0.9, "credibility": 1.0,
                       "at": f"2024-0{1 + j}-01T00:00:00Z"})
    return c.add_rows(schema.EVIDENCE, ev)


def caps(store) -> dict[tuple[str, str], tuple]:  # type: ignore[no-untyped-def]
    out = {}
    for e in store.list_edges(schema.HAS_CAPABILITY):
        c = Capability.from_edge(e.row())
        out[(c.rep_id, c.skill_id)] = (c.level, c.score, c.low, c.high, c.n_evidence)
    return out


def test_incremental_touches_only_the_given_reps_and_matches_full(store) -> None:  # type: ignore[no-untyped-def]
    p = ScoringParams()
    store.apply(world())
    full_id, n = jobs.recompute_capabilities(store, p, "bec-test")
    assert n == 12
    before = caps(store)
    # new evidence for r1 only, no newer than the anchor: the population barely moves
    store.apply(ChangeSet().add_rows(schema.EVIDENCE, [
        {"id": "new1", "rep_id": "r1", "skill_id": "s1", "event_id": "e-new", "code": "c", "level": 4,
         "confidence": 1.0, "credibility": 1.0, "at": "2024-02-15T00:00:00Z"}]))
    inc_id, n_inc = jobs.recompute_capabilities(store, p, "bec-test", reps=["r1"])
    assert inc_id.startswith("run:capinc:") and n_inc == 2
    after = caps(store)
    assert {k: v for k, v in after.items() if k[0] != "r1"} == {k: v for k, v in before.items() if k[0] != "r1"}
    assert after[("r1", "s1")][4] == before[("r1", "s1")][4] + 1
    assert after[("r1", "s1")][1] > before[("r1", "s1")][1]
    manifest = json.loads(store.get_node(schema.RUN, inc_id)["manifest_json"])
    assert manifest["parent_run"] == full_id and manifest["kind"] == "capabilities-incremental"
    assert manifest["priors"] == json.loads(store.get_node(schema.RUN, full_id)["manifest_json"])["priors"]
    # a full recompute with the parent's priors and anchor gives r1 the same figures
    full = score_capabilities(list(store.iter_nodes(schema.EVIDENCE)), {}, "x", p, ref_ts=manifest["ref_ts"],
                                   priors=manifest["priors"])[0]
    assert [(c.level, c.score, c.n_evidence) for c in full if c.rep_id == "r1"] == [
        (after[("r1", s)][0], after[("r1", s)][1], after[("r1", s)][4]) for s in ("s1", "s2")]


def test_run_manifest_records_what_was_computed(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(world())
    run_id, _ = jobs.recompute_capabilities(store, ScoringParams(half_life_days=90), "bec-test")
    m = json.loads(store.get_node(schema.RUN, run_id)["manifest_json"])
    assert m["params"]["half_life_days"] == 90 and m["codebook_version"] == "bec-test"
    assert m["n_evidence"] == 24 and len(m["input_hash"]) == 64
    assert set(m["versions"]) >= {"python", "numpy", "scikit-learn", "hdbscan"}
    again, _ = jobs.recompute_capabilities(store, ScoringParams(half_life_days=90), "bec-test")
    assert again == run_id  # same input, same run id


def test_incremental_without_a_full_run_is_a_full_run(store) -> None:  # type: ignore[no-untyped-def]
    store.apply(world())
    run_id, n = jobs.recompute_capabilities(store, ScoringParams(), "bec-test", reps=["r1"])
    assert run_id.startswith("run:cap:") and n == 12


@pytest.mark.parametrize("reps", [["r2", "r3"], ["r3", "r2", "r2"]])
def test_touched_reps_from_units(reps: list[str]) -> None:
    from graph.model import Event
    from ingest.units import event_units

    units = event_units([Event(id=f"e{i}", rep_id=r) for i, r in enumerate(reps)], [], size=1)
    assert jobs.touched_reps(units) == ["r2", "r3"]
