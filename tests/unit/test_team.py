from __future__ import annotations

import pytest

from graph.errors import Infeasible
from matching.team import AssembleTeam, CapView, SkillNeed, assemble_team


def cap(level: int, score: float | None = None, low: bool = False) -> CapView:
    return CapView(level, score if score is not None else float(level), 5, low)


CAPS = {
    "ann": {"disc": cap(3, 3.4), "close": cap(2)},
    "bob": {"close": cap(3, 3.1)},
    "cyd": {"close": cap(4, 3.9), "legal": cap(3)},
    "dan": {"disc": cap(3, 3.0), "legal": cap(2)},
    "eve": {"legal": cap(3, 3.6)},
}
FN = {"ann": "sales", "bob": "sales", "cyd": "sales", "dan": "presales", "eve": "legal"}
NEEDS = (SkillNeed("disc", 3), SkillNeed("close", 3), SkillNeed("legal", 3))


def test_two_members_can_cover_three_skills() -> None:
    r = assemble_team(AssembleTeam(NEEDS, max_size=2), CAPS, FN)
    assert r.coverage == 1.0
    assert sorted(m.rep_id for m in r.members) == ["ann", "cyd"]
    assert dict((m.rep_id, m.covers) for m in r.members) == {"ann": ("disc",), "cyd": ("close", "legal")}


def test_one_member_covers_what_it_can() -> None:
    r = assemble_team(AssembleTeam(NEEDS, max_size=1), CAPS, FN)
    assert [m.rep_id for m in r.members] == ["cyd"]
    assert r.uncovered == ("disc",)
    assert r.coverage == pytest.approx(2 / 3, abs=1e-4)


def test_role_slot_forces_a_function() -> None:
    r = assemble_team(AssembleTeam(NEEDS, max_size=2, role_slots={"legal": 1}), CAPS, FN)
    assert "eve" in {m.rep_id for m in r.members}


def test_never_include_and_must_include() -> None:
    r = assemble_team(AssembleTeam(NEEDS, max_size=2, never_include=("cyd",)), CAPS, FN)
    assert "cyd" not in {m.rep_id for m in r.members}
    r = assemble_team(AssembleTeam(NEEDS, max_size=2, must_include=("bob",)), CAPS, FN)
    assert "bob" in {m.rep_id for m in r.members}


@pytest.mark.parametrize(
    ("request_", "constraint"),
    [
        (AssembleTeam(NEEDS, max_size=1, must_include=("ann", "bob")), "max_size"),
        (AssembleTeam(NEEDS, max_size=2, must_include=("ann",), never_include=("ann",)), "must_include"),
        (AssembleTeam(NEEDS, max_size=2, role_slots={"legal": 2}), "role_slots"),
        (AssembleTeam(NEEDS, max_size=1, role_slots={"legal": 1, "sales": 1}), "role_slots"),
        (AssembleTeam(NEEDS, max_size=0), "size"),
        (AssembleTeam((SkillNeed("nobody-has-it", 1),)), "needs"),
    ],
)
def test_infeasible_names_the_constraint(request_: AssembleTeam, constraint: str) -> None:
    with pytest.raises(Infeasible) as e:
        assemble_team(request_, CAPS, FN)
    assert e.value.constraint == constraint


def test_prefers_more_proficient_among_equal_cover() -> None:
    r = assemble_team(AssembleTeam((SkillNeed("close", 3),), max_size=1), CAPS, FN)
    assert [m.rep_id for m in r.members] == ["cyd"]  # 3.9 beats bob's 3.1


def test_low_data_capability_counts_less() -> None:
    caps = {"a": {"s": cap(3, 3.5, low=True)}, "b": {"s": cap(3, 3.2)}}
    r = assemble_team(AssembleTeam((SkillNeed("s", 3),), max_size=1), caps, {"a": "sales", "b": "sales"})
    assert [m.rep_id for m in r.members] == ["b"]


def test_no_redundant_members() -> None:
    """Regression: proficiency was summed over every member that qualified for a skill, so the
    solver filled the team up to its size limit with reps repeating the same skills."""
    caps = {"star": {"a": cap(3, 3.4), "b": cap(3, 3.4)}, "twin": {"a": cap(3, 3.3), "b": cap(3, 3.3)},
            "also": {"a": cap(3, 3.2)}}
    r = assemble_team(AssembleTeam((SkillNeed("a", 3), SkillNeed("b", 3)), max_size=4), caps,
                      {"star": "sales", "twin": "sales", "also": "sales"})
    assert [(m.rep_id, m.covers) for m in r.members] == [("star", ("a", "b"))]
    assert r.coverage == 1.0


def test_a_second_member_joins_for_enough_proficiency() -> None:
    caps = {"ok": {"a": cap(3, 3.0), "b": cap(3, 3.0)}, "ace": {"b": cap(4, 4.0)}}
    r = assemble_team(AssembleTeam((SkillNeed("a", 3), SkillNeed("b", 3)), max_size=2), caps,
                      {"ok": "sales", "ace": "sales"})
    assert sorted((m.rep_id, m.covers) for m in r.members) == [("ace", ("b",)), ("ok", ("a",))]
    r = assemble_team(AssembleTeam((SkillNeed("a", 3), SkillNeed("b", 3)), max_size=2, member_cost=2.0), caps,
                      {"ok": "sales", "ace": "sales"})
    assert [m.rep_id for m in r.members] == ["ok"]
