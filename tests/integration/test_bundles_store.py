"""Scenario bundles and emergent proposals written to, and read back from, both stores."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from api import jobs
from graph import schema
from graph.errors import NotFound
from graph.model import Deal, Event, Evidence, Rep, Role, Scenario, Skill
from graph.store import ChangeSet, GraphStore
from ingest.codebook import Codebook, load_codebook

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
P4G, CRM = "scn:p4g:test", "scn:crm:test"
SKILLS = ("capmap:product-knowledge", "capmap:value-articulation", "capmap:closing", "capmap:pipeline-management")


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook(SEEDS / "codebook" / "bec-v1.json")


def _evidence(event: Event, code: str, skill: str, level: int, polarity: int = 1) -> Evidence:
    return Evidence(id=f"ev:{event.id}:{code}", event_id=event.id, rep_id=event.rep_id, skill_id=skill, code=code,
                    level=level, polarity=polarity, coder="rules", reason=f"{code} in {event.deal_id}", at=event.at)


def _graph(store: GraphStore) -> None:
    """A P4G-like scenario: product knowledge (coded at L3 in won engagements by the outcome upgrade, base L2) in
    9 of 10 won and 1 of 10 lost; value articulation in 5 and 5. A CRM-like scenario: every deal Engaging, and its
    Won/Lost stage as the only other evidence, four agents with the same alternating record."""
    c = ChangeSet().add_nodes([Skill(id=s, name=s.split(":")[1].replace("-", " ").capitalize()) for s in SKILLS])
    c.add_nodes([Scenario(id=P4G, name="Donation asks"), Scenario(id=CRM, name="GTX to retail"),
                 Role(id="onet-role:x", name="A role")])
    c.add_edges(schema.REQUIRES, schema.ROLE, schema.SKILL, [{"src": "onet-role:x", "dst": SKILLS[0], "level": 3}])
    c.add_edges(schema.REQUIRES, schema.SCENARIO, schema.SKILL, [{"src": P4G, "dst": SKILLS[1], "level": 4}])  # stale
    reps, deals, events, evidence, worked = [], [], [], [], []
    for i in range(20):
        won = i < 10
        rep = Rep(id=f"p4g:r{i % 5}", name=f"Persuader {i % 5}")
        d = Deal(id=f"p4g:d{i}", outcome="won" if won else "lost", scenario_id=P4G, source="p4g")
        e = Event(id=f"p4g:d{i}:1", rep_id=rep.id, type="utterance", source="transcript", deal_id=d.id, text="…")
        reps.append(rep)
        deals.append(d)
        events.append(e)
        worked.append({"src": rep.id, "dst": d.id})
        if (won and i < 9) or (not won and i == 10):
            evidence.append(_evidence(e, "donation-information", SKILLS[0], 3 if won else 2))
        if i % 10 < 5:
            evidence.append(_evidence(e, "logical-appeal", SKILLS[1], 3 if won else 2))
    for i in range(40):  # four agents, each alternately winning and losing, one deal engaged a week
        won = i % 2 == 0
        rep = Rep(id=f"crm:a{i // 2 % 4}", name=f"Agent {i // 2 % 4}")
        day, close = date(2017, 1, 2) + timedelta(weeks=i), date(2017, 1, 2) + timedelta(weeks=i, days=20)
        d = Deal(id=f"crm:d{i}", outcome="won" if won else "lost", scenario_id=CRM, source="crm",
                 engaged_at=day.isoformat(), closed_at=close.isoformat())
        eng = Event(id=f"crm:d{i}:engaging", rep_id=rep.id, type="stage_change", source="crm", deal_id=d.id,
                    at=f"{day.isoformat()}T00:00:00Z")
        end = Event(id=f"crm:d{i}:{d.outcome}", rep_id=rep.id, type="stage_change", source="crm", deal_id=d.id,
                    at=f"{close.isoformat()}T00:00:00Z")
        reps.append(rep)
        deals.append(d)
        events.extend([eng, end])
        worked.append({"src": rep.id, "dst": d.id})
        evidence.append(_evidence(eng, "crm-engaged", SKILLS[3], 2))
        evidence.append(_evidence(end, "crm-won", SKILLS[2], 3) if won else _evidence(end, "crm-lost", SKILLS[2], 1, -1))
    c.add_nodes(list({r.id: r for r in reps}.values())).add_nodes(deals).add_nodes(events).add_nodes(evidence)
    c.add_edges(schema.WORKED_ON, schema.REP, schema.DEAL, worked)
    store.apply(c)


def test_bundles_are_written_as_requires_edges_with_their_statistics(store: Any, codebook: Codebook) -> None:
    _graph(store)
    res = jobs.compute_scenario_bundles(store, codebook)
    [edge] = store.list_edges(schema.REQUIRES, src=P4G)  # the stale edge is gone, value articulation not required
    assert edge.dst == "capmap:product-knowledge"
    p = edge.props
    assert p["level"] == 2  # the codebook's base level, not the outcome-upgraded L3
    assert p["lift"] == pytest.approx(1.8) and p["support"] == pytest.approx(0.9)
    assert (p["n_won"], p["n_lost"]) == (10, 10)
    assert p["p"] == pytest.approx(202 / 184756)  # Fisher two-sided: (10·10 + 1) · 2 / C(20, 10)
    assert p["q"] <= 0.05 and p["run_id"] == res["run_id"]
    assert "from 10 won vs 10 lost" in p["explanation"] and "lift 1.80" in p["explanation"]
    assert store.list_edges(schema.REQUIRES, src=CRM) == []  # nothing separates: no invented signal
    assert [e.dst for e in store.list_edges(schema.REQUIRES, src="onet-role:x")] == [SKILLS[0]]  # roles untouched
    by_id = {b["id"]: b for b in res["bundles"]}
    assert by_id[P4G]["required"][0]["level"] == 2 and by_id[P4G]["name"] == "Donation asks"
    crm = by_id[CRM]
    assert (crm["n_won"], crm["n_lost"], crm["features"], crm["required"]) == (20, 20, "rep", [])
    assert "no skill separates won from lost" in crm["explanation"]
    run = store.get_node(schema.RUN, res["run_id"])
    manifest = json.loads(run["manifest_json"])
    assert run["kind"] == "bundles" and manifest["params"]["excluded_codes"] == ["crm-lost", "crm-won"]


def test_outcome_codes_never_make_a_bundle_even_observed_in_the_deal(store: Any, codebook: Codebook) -> None:
    _graph(store)
    res = jobs.compute_scenario_bundles(store, codebook, features_by_source={})  # CRM deals observed in-deal too
    crm = next(b for b in res["bundles"] if b["id"] == CRM)
    assert crm["features"] == "deal" and crm["required"] == [] and crm["n_tests"] == 0
    assert "Pipeline management" in crm["explanation"]  # Engaging in every deal: untestable
    assert store.list_edges(schema.REQUIRES, src=CRM) == []
    assert jobs.outcome_codes(codebook) == {"crm-won", "crm-lost"}


def test_a_rerun_gives_the_same_edges(store: Any, codebook: Codebook) -> None:
    _graph(store)
    first = jobs.compute_scenario_bundles(store, codebook)
    edges = [(e.src, e.dst, e.props.get("p")) for e in store.list_edges(schema.REQUIRES)]
    second = jobs.compute_scenario_bundles(store, codebook)
    assert first["run_id"] == second["run_id"] and len(edges) == 2  # the role's and the P4G scenario's
    assert [(e.src, e.dst, e.props.get("p")) for e in store.list_edges(schema.REQUIRES)] == edges


THANKS = ["thank you so much for the generous gift today", "thanks a lot for your generous support today",
          "thank you for giving so generously today friend", "many thanks for the generous help you gave today"]
WEATHER = ["the weather is sunny and warm outside today", "sunny weather makes the afternoon warm and bright",
           "warm sunny weather is forecast for the weekend", "the afternoon weather stays warm and sunny"]
TAILS = ["indeed", "really", "truly", "honestly", "surely", "clearly", "certainly"]
CODED = "Save the Children helps children in need around the world."


def _dialogues(store: GraphStore) -> None:
    """Won engagements that thank and chat about the weather, lost ones that mostly chat; every turn also
    has one coded sentence (evidence on its span), which must not be clustered."""
    c = ChangeSet()
    for i in range(160):
        won = i < 80
        rep = Rep(id=f"p4g:r{i % 10}")
        d = Deal(id=f"p4g:e{i}", outcome="won" if won else "lost", scenario_id=P4G, source="p4g")
        c.add_nodes([rep, d])
        for t in range(2):
            said = (THANKS if (won and t == 0) or (not won and t == 0 and i % 8 == 0) else WEATHER)[(i + t) % 4]
            text = f"{CODED} {said.capitalize()} {TAILS[i % 7]}."
            e = Event(id=f"{d.id}:{t}", rep_id=rep.id, type="utterance", source="transcript", deal_id=d.id, text=text)
            x = Evidence(id=f"ev:{e.id}", event_id=e.id, rep_id=rep.id, skill_id=SKILLS[0], code="donation-information",
                         level=2, confidence=0.9, span_start=0, span_end=len(CODED))
            c.add_nodes([e, x])
    store.apply(c)


def test_emergent_proposals_are_stored_reviewed_and_kept_across_runs(store: Any) -> None:
    _dialogues(store)
    units = jobs.unexplained_units(store)
    assert len(units["won"]) == 160 and len(units["lost"]) == 160
    assert not any("Save the Children" in u.text for u in units["won"])  # explained by evidence: left out
    res = jobs.propose_emergent_labels(store, seed=0)
    assert res["n_proposals"] >= 1
    labels = store.list_nodes(schema.CAPABILITY_LABEL, where={"kind": "emergent"})
    assert {lb["status"] for lb in labels} == {"proposed"} and len(labels) == res["n_proposals"]
    top = res["proposals"][0]
    # only what won engagements say more often (thanks) is proposed, not the weather talk of both
    assert all("thank" in ex.lower() for p in res["proposals"] for ex in p["examples"])
    assert all(p["lift"] > 1.1 and p["n_reps"] >= 5 for p in res["proposals"])
    stored = store.get_node(schema.CAPABILITY_LABEL, top["id"])
    assert stored["examples"] and stored["member_reps"] and "won engagements" in stored["explanation"]
    approved = jobs.approve_label(store, top["id"], reviewer="hr:ana")
    assert (approved["status"], approved["approved"], approved["reviewed_by"]) == ("approved", True, "hr:ana")
    again = jobs.propose_emergent_labels(store, seed=0)  # a rerun keeps the human's decision
    assert store.get_node(schema.CAPABILITY_LABEL, top["id"])["status"] == "approved"
    assert {p["id"] for p in again["proposals"]} == {p["id"] for p in res["proposals"]}
    rejected = jobs.reject_label(store, top["id"])
    assert (rejected["status"], rejected["approved"]) == ("rejected", False)
    with pytest.raises(NotFound):
        jobs.approve_label(store, "label:emergent:nope")
    with pytest.raises(ValueError):
        jobs.review_label(store, top["id"], "maybe")


@pytest.mark.neo4j
def test_real_data_slice_gives_the_same_bundles_and_proposals_on_both_stores(
        slice_dirs: dict[str, Path], tmp_path: Path, neo4j_server: object) -> None:
    """PersuasionForGood and CRM slices, coded by rules and annotations: same figures from both stores."""
    from conftest import _neo4j_store
    from graph.sqlite_store import SqliteStore

    out = []
    stores: list[Any] = [SqliteStore(tmp_path / "a.sqlite"), _neo4j_store(neo4j_server)]
    for st in stores:
        jobs.load_reference(st, slice_dirs["seeds"])
        cb = jobs.codebook_for(st, slice_dirs["seeds"])
        jobs.ingest_sources(st, slice_dirs["seeds"], slice_dirs["data"], cb, None, xapi_paths=[])
        bundles = jobs.compute_scenario_bundles(st, cb)
        emergent = jobs.propose_emergent_labels(st, seed=0)
        edges = [(e.src, e.dst, e.props) for e in st.list_edges(schema.REQUIRES) if e.src.startswith("scn:")]
        out.append((bundles, emergent, edges))
        st.close()
    (a_b, a_e, a_edges), (b_b, b_e, b_edges) = out
    assert a_b == b_b and a_e == b_e and a_edges == b_edges
    assert a_b["n_scenarios"] >= 2 and a_e["n_units_won"] > 100
