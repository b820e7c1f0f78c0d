from __future__ import annotations

import pytest

from clustering.scoring import ScoringParams, contributions, evidence_weight, score_capabilities


def ev(i: int, level: int, conf: float = 1.0, cred: float = 0.9, at: str | None = None, skill: str = "s", rep: str = "r", state: str = "suggested") -> dict:
    return {"id": f"e{i}", "rep_id": rep, "skill_id": skill, "level": level, "confidence": conf, "credibility": cred,
            "at": at, "state": state}


def test_worked_example_from_the_docs() -> None:
    rows = [ev(1, 3), ev(2, 3), ev(3, 2, conf=0.5)]
    caps, _ = score_capabilities(rows, {}, "run", ScoringParams(prior_strength=2.0), priors={"s": 2.0})
    (c,) = caps
    assert c.score == pytest.approx(10.3 / 4.25, abs=1e-4)
    assert c.level == 2
    assert c.n_evidence == 3
    assert c.weight == pytest.approx(2.25)
    assert not c.low_data
    assert 0 <= c.low < c.score < c.high <= 4


def test_thin_evidence_is_shrunk_and_flagged() -> None:
    caps, _ = score_capabilities([ev(1, 4)], {}, "run", priors={"s": 1.0})
    (c,) = caps
    assert c.low_data
    assert c.score == pytest.approx((2 * 1.0 + 0.9 * 4) / 2.9, abs=1e-4)
    assert c.level == 2  # one L4 item does not make an expert


def test_recency_halves_weight_each_half_life() -> None:
    p = ScoringParams(half_life_days=10)
    ref = 1_000_000_000.0
    old = {"confidence": 1.0, "credibility": 1.0, "at": "2001-08-30T01:46:40Z"}  # 10 days before ref (2001-09-09T01:46:40Z)
    assert evidence_weight(old, ref, p) == pytest.approx(0.5, rel=1e-6)
    assert evidence_weight({**old, "state": "rejected"}, ref, p) == 0.0


def test_rollup_to_broader_skill_at_half_weight() -> None:
    caps, _ = score_capabilities([ev(1, 3), ev(2, 3), ev(3, 3)], {"s": "parent"}, "run", priors={"s": 2.0, "parent": 2.0})
    by = {c.skill_id: c for c in caps}
    assert set(by) == {"s", "parent"}
    assert by["parent"].weight == pytest.approx(by["s"].weight / 2)
    assert by["parent"].score < by["s"].score


def test_population_prior_is_mean_of_rep_means() -> None:
    rows = [ev(1, 4, rep="a"), ev(2, 2, rep="b"), ev(3, 2, rep="b")]
    _, priors = score_capabilities(rows, {}, "run")
    assert priors["s"] == pytest.approx(3.0)


def test_contributions_sum_to_one() -> None:
    rows = [ev(1, 3, conf=1.0), ev(2, 3, conf=0.5)]
    c = dict(contributions(rows, None))
    assert c == {"e1": pytest.approx(2 / 3, abs=1e-4), "e2": pytest.approx(1 / 3, abs=1e-4)}
