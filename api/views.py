"""Read models: what the API and the CLI show, assembled from the store and the matchers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clustering.scoring import ScoringParams, evidence_weight
from graph import schema
from graph.errors import NotFound
from graph.model import Capability
from graph.store import GraphStore
from matching.growth import GrowthPath, Resource, plan_growth
from matching.team import AssembleTeam, CapView, SkillNeed, TeamResult, assemble_team


def capabilities_of(store: GraphStore, rep_id: str) -> list[Capability]:
    return [Capability.from_edge(e.row()) for e in store.list_edges(schema.HAS_CAPABILITY, src=rep_id)]


def evidence_of(store: GraphStore, rep_id: str, skill_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    where: dict[str, Any] = {"rep_id": rep_id}
    if skill_id:
        where["skill_id"] = skill_id
    rows = store.list_nodes(schema.EVIDENCE, where=where)
    rows.sort(key=lambda e: (-float(e.get("confidence", 0)) * float(e.get("credibility", 0)), e["id"]))
    return rows[:limit] if limit is not None else rows


def evidence_contributions(store: GraphStore, cap: Capability, limit: int | None = None) -> list[tuple[dict[str, Any], float, float]]:
    """The evidence behind a capability with how much each item counted: (row, weight, share of
    the total weight), largest share first, weighed as the capability's run weighed them."""
    run = store.get_node(schema.RUN, cap.run_id)
    manifest = json.loads(run["manifest_json"]) if run else {}
    params = ScoringParams(**manifest["params"]) if "params" in manifest else ScoringParams()
    ref = manifest.get("ref_ts")
    rows = store.list_nodes(schema.EVIDENCE, where={"rep_id": cap.rep_id, "skill_id": cap.skill_id})
    weighted = [(r, evidence_weight(r, ref, params)) for r in rows]
    # a broader skill (an O*NET element) is scored from its narrower skills' evidence at the
    # roll-up factor: show that evidence, weighed the same way
    for narrower in store.list_edges(schema.BROADER, dst=cap.skill_id):
        for r in store.list_nodes(schema.EVIDENCE, where={"rep_id": cap.rep_id, "skill_id": narrower.src}):
            weighted.append((r, evidence_weight(r, ref, params) * params.rollup_factor))
    total = sum(w for _, w in weighted) or 1.0
    out = sorted(((r, round(w, 4), round(w / total, 4)) for r, w in weighted), key=lambda t: (-t[1], t[0]["id"]))
    return out[:limit] if limit is not None else out


def require_node(store: GraphStore, label: str, node_id: str) -> dict[str, Any]:
    row = store.get_node(label, node_id)
    if row is None:
        raise NotFound(label, node_id)
    return row


def all_capabilities(store: GraphStore) -> tuple[dict[str, dict[str, CapView]], dict[str, str]]:
    caps: dict[str, dict[str, CapView]] = {}
    for e in store.list_edges(schema.HAS_CAPABILITY):
        p = e.props
        caps.setdefault(e.src, {})[e.dst] = CapView(int(p["level"]), float(p["score"]), int(p["n_evidence"]), bool(p["low_data"]))
    functions = {r["id"]: r.get("function", "") for r in store.iter_nodes(schema.REP)}
    return caps, functions


@dataclass(frozen=True)
class TeamSuggestion:
    deal: dict[str, Any] | None
    request: AssembleTeam
    result: TeamResult
    evidence: dict[str, list[dict[str, Any]]]  # rep -> top evidence on the skills it covers
    history: dict[str, list[str]]  # rep -> won deals in the same scenario


def suggest_team(store: GraphStore, request: AssembleTeam, deal_id: str | None = None, n_evidence: int = 3) -> TeamSuggestion:
    deal = require_node(store, schema.DEAL, deal_id) if deal_id else None
    caps, functions = all_capabilities(store)
    for need in request.needs:
        require_node(store, schema.SKILL, need.skill_id)
    result = assemble_team(request, caps, functions)
    evidence, history = {}, {}
    for m in result.members:
        # per skill the member covers, its strongest evidence: highest level, then weight
        ev: list[dict[str, Any]] = []
        for s in m.covers:
            rows = store.list_nodes(schema.EVIDENCE, where={"rep_id": m.rep_id, "skill_id": s})
            rows.sort(key=lambda e: (-int(e.get("level", 0)), -float(e.get("confidence", 0)) * float(e.get("credibility", 0)), e["id"]))
            ev.extend(rows[:1])
        evidence[m.rep_id] = ev[: max(n_evidence, len(m.covers))]
        won = []
        if deal and deal.get("scenario_id"):
            for _, d in store.neighbours(m.rep_id, schema.WORKED_ON, "out"):
                if d.get("scenario_id") == deal["scenario_id"] and d.get("outcome") == "won":
                    won.append(d["id"])
        history[m.rep_id] = won[:5]
    return TeamSuggestion(deal, request, result, evidence, history)


def role_requirements(store: GraphStore, target_id: str) -> list[tuple[str, int, float]]:
    label = schema.ROLE if target_id.startswith("onet-role:") else schema.SCENARIO
    require_node(store, label, target_id)
    return [(e.dst, int(e.props["level"]), float(e.props.get("weight", 1.0))) for e in store.list_edges(schema.REQUIRES, src=target_id)]


def growth_path(store: GraphStore, rep_id: str, target_id: str, hours_per_week: float = 4.0) -> GrowthPath:
    require_node(store, schema.REP, rep_id)
    required = role_requirements(store, target_id)
    current = {c.skill_id: c.level for c in capabilities_of(store, rep_id)}
    catalogue = [
        Resource(r["id"], str(r.get("title", r["id"])), str(r.get("kind", "course")), e.dst, int(e.props["to_level"]), float(e.props["hours"]))
        for r in store.iter_nodes(schema.LEARNING_RESOURCE)
        for e in store.list_edges(schema.TEACHES, src=r["id"])
    ]
    precedes = [(e.src, e.dst) for e in store.list_edges(schema.PRECEDES)]
    names = {s["id"]: str(s.get("name", s["id"])) for s in store.iter_nodes(schema.SKILL)}
    return plan_growth(rep_id, target_id, required, current, catalogue, precedes, names, hours_per_week)


def needs_from(pairs: Sequence[tuple[str, int] | tuple[str, int, float]]) -> tuple[SkillNeed, ...]:
    return tuple(SkillNeed(p[0], int(p[1]), float(p[2]) if len(p) > 2 else 1.0) for p in pairs)  # type: ignore[misc]
