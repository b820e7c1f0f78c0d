"""Scenario bundle and emergent capability jobs: the skills each scenario's won deals require
(clustering/bundles.py), and what won engagements say that no code explains, proposed as emergent
labels for a human to review (clustering/emergent.py). :mod:`api.jobs` re-exports every public name."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from typing import Any

from api.job_common import run_manifest, skill_names
from clustering.bundles import (
    Bundle,
    DealObservation,
    deal_observations,
    rep_observations,
    requires_rows,
    scenario_bundles,
)
from clustering.emergent import EmergentTopics, TextUnit, propose_labels
from graph import schema
from graph.errors import NotEnoughData
from graph.model import CapabilityLabel, Run
from graph.store import ChangeSet, GraphStore
from ingest.codebook import Codebook
from ingest.text import sentence_units

log = logging.getLogger(__name__)

BUNDLE_FEATURES = {"crm": "rep"}
"""How a source's deals are observed for scenario bundles (default ``"deal"``): a CRM deal's only
in-deal behaviour is its stage changes (every deal is Engaging; Won/Lost *is* the outcome), so a
CRM deal is observed through its reps' skills outside it (see clustering/bundles.py)."""


def outcome_codes(codebook: Codebook) -> set[str]:
    """The codes that *are* a deal's outcome (stage changes to Won or Lost): never a predictor."""
    return {c.code for c in codebook.codes.values() if c.event_stage in ("Won", "Lost")}


def compute_scenario_bundles(
    store: GraphStore, codebook: Codebook, *, alpha: float = 0.05, min_support: float = 0.1, min_deals: int = 10,
    features_by_source: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Find each scenario's bundle from its won and lost deals; write REQUIRES edges and a Run.

    Presence features exclude the outcome: evidence of :func:`outcome_codes` never counts for the
    deal it codes, and levels are the codebook's base levels (before the coder's "in an engagement
    that was won" upgrade). Every Scenario's previous REQUIRES edges are replaced; a scenario
    where nothing is significant keeps none, and its explanation says why."""
    features = BUNDLE_FEATURES if features_by_source is None else features_by_source
    deals = [d for d in store.iter_nodes(schema.DEAL) if d.get("outcome") in ("won", "lost") and d.get("scenario_id")]
    obs, evidence = _observations(store, codebook, deals, features)
    names = skill_names(store)
    bundles = scenario_bundles(obs, alpha=alpha, min_support=min_support, min_deals=min_deals,
                               skill_name=lambda s: names.get(s, (s, s))[0])
    params = {"alpha": alpha, "min_support": min_support, "min_deals": min_deals, "features_by_source": features,
              "test": "Fisher exact, two-sided", "correction": "Benjamini-Hochberg over all scenario x skill tests",
              "excluded_codes": sorted(outcome_codes(codebook)), "levels": "codebook base level"}
    manifest = run_manifest("bundles", params, evidence, codebook.version)
    manifest["deals_hash"] = hashlib.sha256("".join(f"{d['id']}|{d['outcome']}|{d['scenario_id']}\n" for d in
                                                    sorted(deals, key=lambda d: d["id"])).encode()).hexdigest()
    run_id = "run:bundles:" + hashlib.sha256((manifest["input_hash"] + manifest["deals_hash"] +
                                              json.dumps(params, sort_keys=True)).encode()).hexdigest()[:12]
    scenarios = {s["id"]: s for s in store.iter_nodes(schema.SCENARIO)}
    out = [_bundle_summary(b, scenarios.get(b.scenario_id, {}), names) for b in bundles]
    manifest["bundles"] = out
    rows = _write_bundles(store, bundles, sorted(scenarios), run_id, manifest, names)
    tested = [t for b in bundles for t in b.tests]
    return {"run_id": run_id, "alpha": alpha, "n_scenarios": len(bundles), "n_tests": len(tested),
            "n_required": len(rows), "bundles": out}


def _observations(store: GraphStore, codebook: Codebook, deals: list[dict[str, Any]], features: dict[str, str],
                  ) -> tuple[list[DealObservation], list[dict[str, Any]]]:
    """Each deal observed in-deal or through its reps (by its source's ``features`` mode), and the
    evidence read to observe them."""
    event_deal = {e["id"]: e["deal_id"] for e in store.iter_nodes(schema.EVENT) if e.get("deal_id")}
    evidence = list(store.iter_nodes(schema.EVIDENCE))
    deal_reps: dict[str, list[str]] = defaultdict(list)
    for e in store.list_edges(schema.WORKED_ON):
        deal_reps[e.dst].append(e.src)
    base = {c.code: c.level for c in codebook.codes.values()}
    by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in deals:
        by_mode[features.get(str(d.get("source", "")), "deal")].append(d)
    obs = deal_observations(by_mode["deal"], evidence, event_deal, base, outcome_codes(codebook))
    obs += rep_observations(by_mode["rep"], evidence, event_deal, deal_reps, base)
    return obs, evidence


def _write_bundles(store: GraphStore, bundles: list[Bundle], scenarios: list[str], run_id: str,
                   manifest: dict[str, Any], names: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """One change: every scenario's REQUIRES edges replaced by the bundles' (each explained), and
    the run written; returns the REQUIRES rows."""
    change = ChangeSet(delete_edges=[(schema.REQUIRES, schema.SCENARIO, scenarios)] if scenarios else [])
    change.add_nodes([Run(id=run_id, kind="bundles", started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    rows = requires_rows(bundles, run_id)
    explained = {b.scenario_id: b for b in bundles}
    for r in rows:
        t = next(t for t in explained[r["src"]].required if t.skill_id == r["dst"])
        r["explanation"] = f"from {t.n_won} won vs {t.n_lost} lost; {t.describe(names.get(t.skill_id, (t.skill_id,))[0])}"
    change.add_edges(schema.REQUIRES, schema.SCENARIO, schema.SKILL, rows)
    store.apply(change)
    return rows


def _bundle_summary(b: Bundle, scenario: dict[str, Any], names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {"id": b.scenario_id, "name": scenario.get("name", b.scenario_id), "n_won": b.n_won, "n_lost": b.n_lost,
            "features": b.features,
            "required": [{"skill": t.skill_id, "skill_name": names.get(t.skill_id, (t.skill_id,))[0], "level": t.level,
                          "support": round(t.support, 4), "support_lost": round(t.support_lost, 4),
                          "lift": round(t.lift, 4), "p": t.p, "q": t.q} for t in b.required],
            "n_tests": len(b.tests), "explanation": b.explanation}


def unexplained_units(store: GraphStore, min_confidence: float = 0.5) -> dict[str, list[TextUnit]]:
    """Sentence units of utterances in won and in lost engagements that no evidence explains well:
    no evidence with at least ``min_confidence`` covers their span (non-strategy and low-confidence
    units). Returns ``{"won": [...], "lost": [...]}``."""
    outcome = {d["id"]: d["outcome"] for o in ("won", "lost") for d in store.iter_nodes(schema.DEAL, where={"outcome": o})}
    spans: dict[str, list[tuple[int | None, int | None]]] = defaultdict(list)
    for e in store.iter_nodes(schema.EVIDENCE):
        if float(e.get("confidence", 0.0)) >= min_confidence and e.get("state") != "rejected":
            spans[e["event_id"]].append((e.get("span_start"), e.get("span_end")))
    units: dict[str, list[TextUnit]] = {"won": [], "lost": []}
    for ev in store.iter_nodes(schema.EVENT):
        o = outcome.get(ev.get("deal_id") or "")
        text = ev.get("text") or ""
        if o is None or ev.get("type") != "utterance" or not text:
            continue
        raw = spans.get(ev["id"], [])
        if any(a is None or b is None for a, b in raw):
            continue  # evidence on the whole event: explained
        covered = [(int(a or 0), int(b or 0)) for a, b in raw]
        for a, b in sentence_units(text):
            if not any(s < b and a < t for s, t in covered):
                units[o].append(TextUnit(f"{ev['id']}:{a}", ev["rep_id"], text[a:b]))
    return units


def propose_emergent_labels(store: GraphStore, seed: int = 0, min_confidence: float = 0.5) -> dict[str, Any]:
    """Cluster what won engagements say that no code explains; store each cluster as a proposed
    emergent CapabilityLabel (``kind="emergent"``, ``status="proposed"``) for a human to review.

    A rerun replaces the proposals still awaiting review and keeps every human decision: a
    proposal approved or rejected before keeps its status when the same cluster comes back."""
    units = unexplained_units(store, min_confidence)
    try:
        proposals, model = propose_labels(units["won"], units["lost"], model=EmergentTopics(random_state=seed))
    except NotEnoughData as e:
        log.warning("emergent capabilities skipped: %s", e)
        return {"n_proposals": 0, "n_units_won": len(units["won"]), "n_units_lost": len(units["lost"]), "message": str(e)}
    h = hashlib.sha256("".join(f"{u.id}\n" for k in ("won", "lost") for u in units[k]).encode())
    run_id = f"run:emergent:{h.hexdigest()[:12]}"
    manifest = {"kind": "emergent", "params": {"seed": seed, "min_confidence": min_confidence, **model.get_params()},
                "k": model.k_, "silhouettes": model.silhouettes_, "n_units_won": len(units["won"]),
                "n_units_lost": len(units["lost"]), "proposals": [p.id for p in proposals]}
    old = {x["id"]: x for x in store.list_nodes(schema.CAPABILITY_LABEL, where={"kind": "emergent"})}
    kept = {i: x for i, x in old.items() if x.get("status") in ("approved", "rejected")}
    labels = [CapabilityLabel(id=p.id, name=p.name, name_zh="新兴能力：" + " / ".join(p.top_terms[:3]), kind="emergent",
                              status=kept.get(p.id, {}).get("status", "proposed"),
                              approved=kept.get(p.id, {}).get("status") == "approved",
                              top_terms=p.top_terms, examples=p.examples, member_reps=p.member_reps,
                              n_members=p.n_reps, run_id=run_id, explanation=p.explanation,
                              reviewed_by=kept.get(p.id, {}).get("reviewed_by"),
                              reviewed_at=kept.get(p.id, {}).get("reviewed_at")) for p in proposals]
    stale = sorted(set(old) - set(kept) - {p.id for p in proposals})
    change = ChangeSet(delete_nodes=[(schema.CAPABILITY_LABEL, stale)] if stale else [])
    change.add_nodes([Run(id=run_id, kind="emergent", started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          manifest_json=json.dumps(manifest, sort_keys=True))])
    change.add_nodes(labels)
    store.apply(change)
    return {"run_id": run_id, "n_units_won": len(units["won"]), "n_units_lost": len(units["lost"]), "k": model.k_,
            "silhouette": round(model.silhouette_, 4), "n_proposals": len(labels),
            "proposals": [{"id": lb.id, "name": lb.name, "status": lb.status, "top_terms": list(p.top_terms),
                           "n_units": p.n_units, "n_reps": p.n_reps, "lift": p.lift, "examples": list(p.examples)}
                          for lb, p in zip(labels, proposals, strict=True)]}

