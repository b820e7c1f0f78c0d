"""Capability scoring: evidence → a level per rep × skill, with an uncertainty band.

For rep *r* and skill *s*, each evidence item *i* weighs

    w_i = confidence_i × credibility_i × 0.5 ** (age_i / half_life_days)

where ``age_i`` is counted back from the newest evidence in the data (so a rerun on the same
data gives the same figures whatever day it is). The score is the weighted mean level shrunk
towards the skill's population mean ``m_s`` with ``prior_strength`` pseudo-observations:

    score = (k · m_s + Σ w_i · level_i) / (k + Σ w_i)

The band is ``score ± 1.96 · σ / sqrt(k + n_eff)`` with ``σ`` the weighted spread of the levels
around the score (prior spread 1.0 for the pseudo-observations) and ``n_eff = (Σw)² / Σw²``;
both ends are clipped to [0, 4]. The level is the score rounded half up. A capability is
*low-data* when it rests on fewer than ``min_evidence`` items.

Evidence of a skill also counts, at ``rollup_factor`` of its weight, for the skill it refines
(its BROADER parent, e.g. an O*NET element), so role profiles expressed in O*NET terms can be
compared with behaviour coded in capmap's finer sales skills.

Worked example (README has it too): three items at L3, L3, L2 with weights 0.9, 0.9, 0.45, a
population mean of 2.0 and k = 2 give score = (2·2 + 0.9·3 + 0.9·3 + 0.45·2) / (2 + 2.25)
= 10.3 / 4.25 = 2.42 → L2.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graph.model import Capability


@dataclass(frozen=True)
class ScoringParams:
    half_life_days: float = 365.0
    prior_strength: float = 2.0
    prior_sd: float = 1.0
    min_evidence: int = 3
    rollup_factor: float = 0.5


def _parse(at: str | None) -> float | None:
    if not at:
        return None
    s = at.replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def evidence_weight(ev: Mapping[str, Any], ref_ts: float | None, params: ScoringParams) -> float:
    """``confidence × credibility × recency`` of one evidence row (a rejected item weighs 0)."""
    if ev.get("state") == "rejected":
        return 0.0
    w = float(ev.get("confidence", 1.0)) * float(ev.get("credibility", 1.0))
    ts = _parse(ev.get("at"))
    if ref_ts is not None and ts is not None and params.half_life_days > 0:
        age_days = max(0.0, (ref_ts - ts) / 86400.0)
        w *= 0.5 ** (age_days / params.half_life_days)
    return w


def reference_time(evidence: Iterable[Mapping[str, Any]]) -> float | None:
    """The newest evidence timestamp: recency is measured back from it."""
    best = None
    for ev in evidence:
        ts = _parse(ev.get("at"))
        if ts is not None and (best is None or ts > best):
            best = ts
    return best


def score_capabilities(
    evidence: Sequence[Mapping[str, Any]],
    broader: Mapping[str, str],
    run_id: str,
    params: ScoringParams = ScoringParams(),
    ref_ts: float | None = None,
    priors: Mapping[str, float] | None = None,
) -> tuple[list[Capability], dict[str, float]]:
    """Score every rep × skill that has evidence (and each skill's BROADER parent).

    Returns the capabilities, sorted by (rep, skill), and the population means used as priors.
    Pass ``priors`` (e.g. from the last full run) to score a subset of reps incrementally.
    """
    if ref_ts is None:
        ref_ts = reference_time(evidence)
    obs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for ev in evidence:
        w = evidence_weight(ev, ref_ts, params)
        if w <= 0:
            continue
        key = (str(ev["rep_id"]), str(ev["skill_id"]))
        obs[key].append((w, float(ev["level"])))
        counts[key] += 1
        parent = broader.get(key[1])
        if parent:
            pk = (key[0], parent)
            obs[pk].append((w * params.rollup_factor, float(ev["level"])))
            counts[pk] += 1
    if priors is None:
        per_skill: dict[str, list[float]] = defaultdict(list)
        for (_, skill), items in obs.items():
            sw = sum(w for w, _ in items)
            per_skill[skill].append(sum(w * lv for w, lv in items) / sw)
        priors = {s: sum(v) / len(v) for s, v in per_skill.items()}
    out = []
    k = params.prior_strength
    for (rep, skill), items in sorted(obs.items()):
        m = priors.get(skill, 2.0)
        sw = sum(w for w, _ in items)
        score = (k * m + sum(w * lv for w, lv in items)) / (k + sw)
        var = (k * params.prior_sd**2 + sum(w * (lv - score) ** 2 for w, lv in items)) / (k + sw)
        n_eff = sw * sw / sum(w * w for w, _ in items)
        half = 1.96 * math.sqrt(var) / math.sqrt(k + n_eff)
        level = int(min(4, max(0, math.floor(score + 0.5))))
        out.append(
            Capability(
                rep_id=rep,
                skill_id=skill,
                level=level,
                score=round(score, 4),
                low=round(max(0.0, score - half), 4),
                high=round(min(4.0, score + half), 4),
                n_evidence=counts[(rep, skill)],
                weight=round(sw, 4),
                low_data=counts[(rep, skill)] < params.min_evidence,
                run_id=run_id,
            )
        )
    return out, dict(priors)


def contributions(
    evidence: Sequence[Mapping[str, Any]], ref_ts: float | None, params: ScoringParams = ScoringParams()
) -> list[tuple[str, float]]:
    """How much each evidence item counted: (evidence id, share of the total weight)."""
    ws = [(str(e["id"]), evidence_weight(e, ref_ts, params)) for e in evidence]
    total = sum(w for _, w in ws) or 1.0
    return [(i, round(w / total, 4)) for i, w in ws]
