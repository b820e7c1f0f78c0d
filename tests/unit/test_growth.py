from __future__ import annotations

from matching.growth import Gap, Resource, choose_resources, find_gaps, order_gaps, plan_growth

CAT = [
    Resource("lr:a1", "A basics", "course", "a", 2, 3.0),
    Resource("lr:a2", "A lab", "practice", "a", 3, 4.0),
    Resource("lr:a3", "A to 3 long", "course", "a", 3, 9.0),
    Resource("lr:b1", "B basics", "course", "b", 2, 2.0),
    Resource("lr:b3", "B expert", "expert_session", "b", 4, 1.5),
]


def test_gaps_and_unassessed() -> None:
    gaps, un = find_gaps([("a", 3, 1.0), ("b", 2, 0.5), ("c", 2, 1.0), ("d", 1, 1.0)], {"a": 1, "b": 2, "d": 0})
    assert gaps == [Gap("a", 1, 3, 1.0), Gap("d", 0, 1, 1.0)]
    assert un == [Gap("c", 0, 2, 1.0)]


def test_prerequisite_comes_first_even_when_lighter() -> None:
    gaps = [Gap("a", 1, 3, 1.0), Gap("b", 1, 2, 0.2)]
    assert [g.skill_id for g in order_gaps(gaps, [("b", "a")])] == ["b", "a"]
    assert [g.skill_id for g in order_gaps(gaps, [])] == ["a", "b"]


def test_transitive_prerequisite() -> None:
    gaps = [Gap("a", 1, 3, 1.0), Gap("c", 1, 2, 0.1)]
    assert [g.skill_id for g in order_gaps(gaps, [("c", "x"), ("x", "a")])] == ["c", "a"]


def test_resources_climb_level_by_level_cheapest_first() -> None:
    assert [r.id for r in choose_resources(Gap("a", 1, 3, 1.0), CAT)] == ["lr:a1", "lr:a2"]
    assert [r.id for r in choose_resources(Gap("a", 2, 3, 1.0), CAT)] == ["lr:a2"]
    assert [r.id for r in choose_resources(Gap("b", 2, 3, 1.0), CAT)] == ["lr:b3"]  # overshoot when nothing fits exactly
    assert choose_resources(Gap("z", 0, 2, 1.0), CAT) == ()


def test_schedule_respects_weekly_budget() -> None:
    p = plan_growth("r", "t", [("a", 3, 1.0), ("b", 2, 0.5)], {"a": 1, "b": 1}, CAT, [], {"a": "A", "b": "B"}, hours_per_week=4)
    assert [(s.skill_id, s.hours, s.week_start, s.week_end) for s in p.steps] == [("a", 7.0, 1, 2), ("b", 2.0, 2, 3)]
    assert p.total_hours == 9.0 and p.weeks == 3
    assert "A at L3" in p.steps[0].why
