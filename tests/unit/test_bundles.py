"""Scenario bundles and emergent capabilities on hand-built data with known answers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from clustering.bundles import (
    DealObservation,
    benjamini_hochberg,
    deal_observations,
    rep_observations,
    requires_rows,
    scenario_bundles,
)
from clustering.emergent import EmergentTopics, TextUnit, propose_labels
from graph.errors import NotEnoughData


def _fisher_two_sided(a: int, b: int, n_won: int, n_lost: int) -> float:
    """Fisher's exact two-sided p from the hypergeometric law, written out (no scipy)."""
    shown, n = a + b, n_won + n_lost

    def prob(x: int) -> float:
        return math.comb(n_won, x) * math.comb(n_lost, shown - x) / math.comb(n, shown)

    observed = prob(a)
    lo, hi = max(0, shown - n_lost), min(shown, n_won)
    return min(1.0, sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= observed * (1 + 1e-7)))


def _scenario(sid: str, won_with: int, n_won: int, lost_with: int, n_lost: int, skill: str = "A", level: int = 2,
              others: dict[str, tuple[int, int]] | None = None) -> list[DealObservation]:
    obs = []
    for i in range(n_won):
        skills = {skill: level} if i < won_with else {}
        for k, (w, _) in (others or {}).items():
            if i < w:
                skills[k] = 2
        obs.append(DealObservation(f"{sid}:w{i}", sid, True, skills))
    for i in range(n_lost):
        skills = {skill: level} if i < lost_with else {}
        for k, (_, lo) in (others or {}).items():
            if i < lo:
                skills[k] = 2
        obs.append(DealObservation(f"{sid}:l{i}", sid, False, skills))
    return obs


# -- the test and its correction ------------------------------------------------------------------

def test_a_skill_in_9_of_10_won_and_1_of_10_lost_is_required_with_its_lift_and_fisher_p() -> None:
    obs = _scenario("s", 9, 10, 1, 10, others={"B": (5, 5)})
    [bundle] = scenario_bundles(obs)
    [a] = bundle.required
    assert (a.skill_id, a.a, a.b, a.n_won, a.n_lost) == ("A", 9, 1, 10, 10)
    assert a.lift == pytest.approx((9 / 10) / (10 / 20))  # P(won | A) / P(won) = 1.8
    assert a.support == pytest.approx(0.9) and a.support_lost == pytest.approx(0.1)
    assert a.p == pytest.approx(_fisher_two_sided(9, 1, 10, 10), rel=1e-9)
    assert a.p == pytest.approx(2 * (10 * 10 + 1) / math.comb(20, 10))  # tables as or more extreme: 9|1, 10|0, 1|9, 0|10
    # two tests in the run: q = p · m / rank
    assert a.q == pytest.approx(a.p * 2 / 1)
    assert a.level == 2
    b = next(t for t in bundle.tests if t.skill_id == "B")
    assert not b.selected and b.p == pytest.approx(1.0) and b.lift == pytest.approx(1.0)
    assert "from 10 won vs 10 lost" in bundle.explanation and "lift 1.80" in bundle.explanation


def test_a_skill_equally_present_in_won_and_lost_is_not_required() -> None:
    [bundle] = scenario_bundles(_scenario("s", 6, 30, 6, 30))
    assert bundle.required == ()
    [t] = bundle.tests
    assert t.p == pytest.approx(1.0) and t.lift == pytest.approx(1.0)
    assert "no skill separates won from lost" in bundle.explanation


def test_a_skill_more_common_in_lost_deals_is_significant_but_not_required() -> None:
    [bundle] = scenario_bundles(_scenario("s", 1, 10, 9, 10))
    [t] = bundle.tests
    assert t.q < 0.05 and t.lift < 1 and not t.selected


@pytest.mark.parametrize("pvalues, expected", [
    ([0.01, 0.04, 0.03, 0.005], [0.02, 0.04, 0.04, 0.02]),
    ([0.5], [0.5]),
    ([0.02, 0.02, 0.02], [0.02, 0.02, 0.02]),
    ([0.9, 0.8], [0.9, 0.9]),  # monotone: q of a smaller p never exceeds the next one's
])
def test_benjamini_hochberg_on_known_p_values(pvalues: list[float], expected: list[float]) -> None:
    assert benjamini_hochberg(pvalues) == pytest.approx(expected)


def test_benjamini_hochberg_rejects_four_of_the_papers_fifteen() -> None:
    # Benjamini & Hochberg (1995), section 4: at FDR 0.05 the first four hypotheses are rejected
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
         0.6528, 0.7590, 1.000]
    q = benjamini_hochberg(p)
    assert [x <= 0.05 for x in q] == [True] * 4 + [False] * 11
    with pytest.raises(ValueError):
        benjamini_hochberg([0.2, 1.5])


def test_correction_runs_across_all_scenarios() -> None:
    """A skill significant on its own (p ≈ 0.02) is not selected once 20 other tests share the FDR."""
    alone = _scenario("s1", 14, 20, 6, 20)
    [b] = scenario_bundles(alone)
    assert b.tests[0].p < 0.05 and b.required
    crowd = alone + [o for k in range(20) for o in _scenario(f"n{k:02d}", 10, 20, 10, 20, skill=f"S{k}")]
    bundles = {x.scenario_id: x for x in scenario_bundles(crowd)}
    t = bundles["s1"].tests[0]
    assert t.p == pytest.approx(b.tests[0].p)
    assert t.q == pytest.approx(min(1.0, t.p * 21))
    assert not bundles["s1"].required


def test_untestable_skills_and_small_scenarios_are_explained_not_tested() -> None:
    obs = _scenario("s", 10, 10, 10, 10) + _scenario("tiny", 2, 3, 0, 2)
    bundles = {b.scenario_id: b for b in scenario_bundles(obs, min_deals=5)}
    assert bundles["s"].tests == () and bundles["s"].untestable == ("A",)
    assert "shown by every deal or by none: A" in bundles["s"].explanation
    assert bundles["tiny"].tests == () and "not tested: fewer than 5" in bundles["tiny"].explanation


def test_requires_rows_carry_the_statistics() -> None:
    [row] = requires_rows(scenario_bundles(_scenario("s", 9, 10, 1, 10, level=3)), "run:x")
    assert row["src"] == "s" and row["dst"] == "A" and row["level"] == 3 and row["run_id"] == "run:x"
    assert row["lift"] == pytest.approx(1.8) and row["support"] == pytest.approx(0.9)
    assert row["weight"] == pytest.approx(0.8) and row["n_won"] == 10 and row["n_lost"] == 10
    assert row["q"] >= row["p"] > 0


# -- observations: what a deal shows, without the outcome --------------------------------------------

BASE = {"donation-information": 2, "crm-won": 3, "crm-lost": 1, "crm-engaged": 2}


def _deals(n_won: int, n_lost: int, scenario: str = "s") -> list[dict[str, Any]]:
    return ([{"id": f"w{i}", "scenario_id": scenario, "outcome": "won"} for i in range(n_won)]
            + [{"id": f"l{i}", "scenario_id": scenario, "outcome": "lost"} for i in range(n_lost)]
            + [{"id": "open", "scenario_id": scenario, "outcome": "open"}])


def _ev(i: str, deal: str, code: str, skill: str, level: int, polarity: int = 1, rep: str = "r") -> dict[str, object]:
    return {"id": f"ev:{i}", "event_id": f"e:{deal}:{code}", "rep_id": rep, "skill_id": skill, "code": code,
            "level": level, "polarity": polarity}


def test_outcome_codes_are_excluded_and_levels_are_the_codebook_base() -> None:
    deals = _deals(10, 10)
    evidence = [_ev(f"w{i}", f"w{i}", "crm-won", "closing", 3) for i in range(10)]
    evidence += [_ev(f"l{i}", f"l{i}", "crm-lost", "closing", 1, polarity=-1) for i in range(10)]
    # the coder raised the level to 3 "in an engagement that was won": the base level is 2
    evidence += [_ev(f"d{i}", f"w{i}", "donation-information", "product", 3) for i in range(9)]
    evidence += [_ev("d-l0", "l0", "donation-information", "product", 2)]
    event_deal = {str(e["event_id"]): str(e["event_id"]).split(":")[1] for e in evidence}
    obs = deal_observations(deals, evidence, event_deal, BASE, exclude_codes={"crm-won", "crm-lost"})
    assert len(obs) == 20  # the open deal is not observed
    assert all("closing" not in o.skills for o in obs)
    [b] = scenario_bundles(obs)
    assert [(t.skill_id, t.level) for t in b.required] == [("product", 2)]
    leaky = deal_observations(deals, evidence, event_deal, BASE)  # without the exclusion the outcome leaks in
    assert "closing" in {t.skill_id for t in scenario_bundles(leaky)[0].required}


def test_rep_observations_leave_the_deal_itself_out() -> None:
    # rep a wins w0..w4 and loses l0; rep b wins w5..w9 and loses l1..l9: each deal sees only the others
    deals = _deals(10, 10)
    reps = {f"w{i}": ["a" if i < 5 else "b"] for i in range(10)} | {f"l{i}": ["a" if i == 0 else "b"] for i in range(10)}
    evidence = []
    for d, (rep,) in reps.items():
        code, lv = ("crm-won", 3) if d.startswith("w") else ("crm-lost", 1)
        evidence.append(_ev(d, d, code, "closing", lv, polarity=1 if lv == 3 else -1, rep=rep))
        evidence.append(_ev(d + "e", d, "crm-engaged", "pipeline", 2, rep=rep))
    event_deal = {str(e["event_id"]): str(e["event_id"]).split(":")[1] for e in evidence}
    obs = {o.deal_id: o for o in rep_observations(deals, evidence, event_deal, reps, BASE)}
    # rep a outside w0: 4 wins (L3) and 1 loss (L1) → 13/5 = 2.6; outside l0: 5 wins → 3.0
    # rep b outside w5: 4 wins, 9 losses → 21/13 ≈ 1.62; outside l1: 5 wins, 8 losses → 23/13 ≈ 1.77
    # median of the 20 deals' values: 23/13, so b's lost deals show closing (at L2) and its won ones do not
    assert obs["w0"].skills["closing"] == 3 and obs["l0"].skills["closing"] == 3
    assert "closing" not in obs["w5"].skills and obs["l1"].skills["closing"] == 2
    assert all(o.skills.get("pipeline") == 2 for o in obs.values())  # every rep, every deal: untestable
    [b] = scenario_bundles(list(obs.values()))
    assert b.features == "rep" and b.untestable == ("pipeline",)


def test_rep_observations_count_only_the_record_before_the_deal_started() -> None:
    deals = [{"id": "d1", "scenario_id": "s", "outcome": "won", "engaged_at": "2017-01-01"},
             {"id": "d2", "scenario_id": "s", "outcome": "lost", "engaged_at": "2017-01-05"},
             {"id": "d3", "scenario_id": "s", "outcome": "won", "engaged_at": "2017-02-01"}]
    evidence = [{**_ev("1", "d1", "crm-won", "closing", 3), "at": "2017-01-10T00:00:00Z"},
                {**_ev("2", "d2", "crm-lost", "closing", 1, polarity=-1), "at": "2017-01-20T00:00:00Z"},
                {**_ev("3", "d3", "crm-won", "closing", 3), "at": "2017-02-15T00:00:00Z"},
                {**_ev("4", "d2", "crm-engaged", "pipeline", 2), "at": "2017-01-05T00:00:00Z"}]  # same day: not before
    event_deal = {str(e["event_id"]): str(e["event_id"]).split(":")[1] for e in evidence}
    obs = {o.deal_id: o.skills for o in rep_observations(deals, evidence, event_deal, {"d1": ["r"], "d2": ["r"], "d3": ["r"]},
                                                         BASE)}
    # d1 and d2 started before any deal closed; d3 sees d1 won (L3), d2 lost (L1) and d2's Engaging (L2)
    assert obs == {"d1": {}, "d2": {}, "d3": {"closing": 2, "pipeline": 2}}


# -- emergent capabilities --------------------------------------------------------------------------

TOPICS = {
    "thanks": ["thank you so much for the generous gift today", "thanks a lot for your generous support today",
               "thank you for giving so generously today friend", "many thanks for the generous help you gave today"],
    "weather": ["the weather is sunny and warm outside today", "sunny weather makes the afternoon warm and bright",
                "warm sunny weather is forecast for the weekend", "the afternoon weather stays warm and sunny"],
    "schools": ["children need schools books and teachers now", "schools for children need books and good teachers",
                "teachers and books help children in poor schools", "poor schools need teachers so children can learn"],
}


def _units(spec: dict[str, int], prefix: str) -> list[TextUnit]:
    out = []
    for topic, n in spec.items():
        for i in range(n):
            text = TOPICS[topic][i % 4] + f" {['indeed', 'really', 'truly', 'surely', 'honestly'][i % 5]}"
            out.append(TextUnit(f"{prefix}:{topic}:{i}", f"rep{i // 4 % 10}", text))
    return out


def test_emergent_proposals_name_the_won_enriched_topics() -> None:
    won = _units({"thanks": 40, "weather": 40, "schools": 40}, "w")
    lost = _units({"thanks": 5, "weather": 80, "schools": 40}, "l")
    model = EmergentTopics(k_range=(3, 4), min_df=2, max_df=0.9, random_state=0)
    proposals, fitted = propose_labels(won, lost, model=model, min_units=10, min_reps=5)
    assert fitted.k_ in (3, 4) and set(fitted.silhouettes_) == {3, 4}
    # thanks is ≈ 6× as common among won units as among lost ones: proposed; weather is more common among
    # lost units and schools as common in both: small talk and shared content, not proposed
    assert proposals and all(p.lift > 3 for p in proposals)
    assert all({"thank", "thanks", "generous"} & set(p.top_terms[:3]) for p in proposals)
    assert all(not {"weather", "sunny", "warm", "children", "schools", "teachers"} & set(p.top_terms[:3])
               for p in proposals)
    assert all(p.id.startswith("label:emergent:") and len(p.examples) <= 3 and p.n_reps >= 5 for p in proposals)
    again, _ = propose_labels(won, lost, model=EmergentTopics(k_range=(3, 4), min_df=2, max_df=0.9, random_state=0),
                              min_units=10, min_reps=5)
    assert [p.id for p in again] == [p.id for p in proposals]  # seeded: same proposals, same ids


def test_emergent_needs_enough_text() -> None:
    with pytest.raises(NotEnoughData):
        propose_labels(_units({"thanks": 3}, "w"))
