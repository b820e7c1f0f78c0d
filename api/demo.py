"""``capmap demo``: the whole main job on real public data, ending with a readable summary."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from api import jobs, views
from api.settings import Settings
from clustering.scoring import ScoringParams
from graph import schema
from graph.store import GraphStore
from matching.team import AssembleTeam

log = logging.getLogger(__name__)


def pick_deal(store: GraphStore) -> dict[str, Any] | None:
    """The largest open CRM deal with an account (by product list price, then id)."""
    open_deals = [d for d in store.list_nodes(schema.DEAL, where={"outcome": "open"}) if d.get("account_id")]
    if not open_deals:
        return None
    return min(open_deals, key=lambda d: (-(d.get("list_price") or 0.0), d["id"]))


def pick_growth_rep(store: GraphStore, target: str, min_evidence: int) -> str | None:
    """The rep with enough evidence who is furthest below the target (weighted), ties by id."""
    required = views.role_requirements(store, target)
    caps, _ = views.all_capabilities(store)
    best: tuple[float, str] | None = None
    for rep, cs in sorted(caps.items()):
        if sum(c.n_evidence for s, c in cs.items() if s.startswith("capmap:")) < min_evidence:
            continue
        gap = sum(w * max(0, lv - cs[s].level) for s, lv, w in required if s in cs)
        if gap > 0 and (best is None or gap > best[0]):
            best = (gap, rep)
    return best[1] if best else None


def run_demo(store: GraphStore, settings: Settings) -> dict[str, Any]:
    t0 = time.perf_counter()
    seeds = settings.seeds_dir
    spec = json.loads((seeds / "demo.json").read_text(encoding="utf-8"))
    log.info("loading O*NET skills, role profiles, capmap skills and the learning catalogue")
    jobs.load_reference(store, seeds)
    codebook = jobs.codebook_for(store, seeds)
    log.info("training and cross-validating the text coder on the 300 annotated dialogues")
    coder, coder_score = jobs.train_coder(seeds, codebook, seed=settings.seed)
    log.info("ingesting and coding behaviour events")
    reports = jobs.ingest_sources(store, seeds, settings.data_dir, codebook, coder, rejects_dir=Path(settings.out_dir))
    log.info("scoring capabilities")
    params = ScoringParams(half_life_days=settings.half_life_days, prior_strength=settings.prior_strength)
    run_id, n_caps = jobs.recompute_capabilities(store, params, codebook.version)
    log.info("clustering capability labels")
    clusters = jobs.cluster_labels(store, run_id, settings.min_evidence_for_clustering, settings.min_cluster_size, settings.seed)
    stability = jobs.measure_label_stability(store, run_id, settings.min_evidence_for_clustering,
                                             settings.min_cluster_size, settings.seed)
    log.info("finding scenario bundles (won vs lost deals, outcome codes excluded) and emergent capabilities")
    bundles = jobs.compute_scenario_bundles(store, codebook)
    emergent = jobs.propose_emergent_labels(store, seed=settings.seed)

    deal = pick_deal(store)
    request = AssembleTeam(needs=views.needs_from([(n["skill_id"], n["level"], n["weight"]) for n in spec["team"]["needs"]]),
                           max_size=int(spec["team"]["max_size"]))
    team = views.suggest_team(store, request, deal["id"] if deal else None)
    target = spec["growth"]["target"]
    rep = pick_growth_rep(store, target, int(spec["growth"]["min_evidence"]))
    path = views.growth_path(store, rep, target, settings.hours_per_week) if rep else None
    names = jobs.skill_names(store)
    rep_names = {r["id"]: r.get("name", r["id"]) for r in store.get_nodes(schema.REP, [m.rep_id for m in team.result.members]).values()}
    summary: dict[str, Any] = {
        "n_reps": store.count_nodes(schema.REP),
        "n_skills": store.count_nodes(schema.SKILL),
        "n_deals": store.count_nodes(schema.DEAL),
        "n_events": store.count_nodes(schema.EVENT),
        "n_evidence": store.count_nodes(schema.EVIDENCE),
        "n_capabilities": n_caps,
        "n_labels": clusters["n_labels"],
        "n_outliers": clusters["n_outliers"],
        "outlier_share": clusters["outlier_share"],
        "label_stability_ari": stability["ari"],
        "label_stability": stability,
        "labels": clusters.get("labels", []),
        "scenario_bundles": bundles["bundles"],
        "scenario_bundles_run": {k: bundles[k] for k in ("run_id", "alpha", "n_scenarios", "n_tests", "n_required")},
        "emergent_labels": {k: v for k, v in emergent.items() if k != "run_id"},
        "team": {
            "deal": deal["id"] if deal else None,
            "deal_name": deal.get("name") if deal else None,
            "members": [{"rep": m.rep_id, "name": rep_names.get(m.rep_id, m.rep_id), "role": m.function,
                         "covers": list(m.covers), "covers_names": [names.get(s, (s, s))[0] for s in m.covers],
                         "evidence": [e["reason"] for e in team.evidence.get(m.rep_id, [])[:2]],
                         "won_similar_deals": len(team.history.get(m.rep_id, []))}
                        for m in team.result.members],
            "coverage": team.result.coverage,
            "uncovered": list(team.result.uncovered),
            "method": team.result.method,
        },
        "growth_path": None if path is None else {
            "rep": path.rep_id, "target": path.target_id, "hours_per_week": path.hours_per_week,
            "total_hours": path.total_hours, "weeks": path.weeks,
            "steps": [{"skill": s.skill_id, "skill_name": names.get(s.skill_id, (s.skill_id, ""))[0],
                       "from_level": s.from_level, "to_level": s.to_level,
                       "resources": [r.id for r in s.resources], "hours": s.hours,
                       "weeks": [s.week_start, s.week_end]} for s in path.steps],
            "unassessed": [g.skill_id for g in path.unassessed],
        },
        "coder": None if coder_score is None else vars(coder_score),
        "ingest": reports,
        "capability_run": run_id,
        "store": store.name,
        "elapsed_s": round(time.perf_counter() - t0, 2),
    }
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo-summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary
