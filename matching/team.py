"""Team assembly: choose reps that cover a deal's required skills at their levels.

candidates → score → assemble. The assembly is a mixed-integer programme solved exactly with
HiGHS (through ``scipy.optimize.milp``):

    maximise   Σ_s W·w_s·y_s  +  Σ_(r,s) p_rs·z_rs  −  λ·Σ_r x_r
    subject to Σ_r z_rs = y_s                         (a covered skill is designated to one qualifying member)
               z_rs ≤ x_r                              (only to a member of the team)
               min_size ≤ Σ_r x_r ≤ max_size
               Σ_{r in function f} x_r ≥ n_f          (role slots)
               x_r = 1 (must include), x_r = 0 (never include)
               x_r, y_s ∈ {0, 1}

``W`` is large enough that coverage always comes first; ``p_rs`` is member r's proficiency on
skill s (the weight times one plus the score above the required level, halved for a low-data
capability), counted once per skill for the member it is designated to, so redundant members
add nothing; ``λ`` (``member_cost``) is the price of one more member. Among equally covering
teams the smaller, more proficient one wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from graph.errors import Infeasible


@dataclass(frozen=True)
class SkillNeed:
    skill_id: str
    level: int
    weight: float = 1.0


@dataclass(frozen=True)
class AssembleTeam:
    """A team request."""

    needs: tuple[SkillNeed, ...]
    max_size: int = 4
    min_size: int = 1
    role_slots: Mapping[str, int] = field(default_factory=dict)  # function -> how many at least
    must_include: tuple[str, ...] = ()
    never_include: tuple[str, ...] = ()
    candidates_per_skill: int = 40
    member_cost: float = 0.5
    """What one more member costs, in proficiency units (communication and coordination): a
    member joins only for coverage or for at least this much more proficiency."""
    time_limit_s: float = 20.0


@dataclass(frozen=True)
class CapView:
    """The part of a capability the matcher reads."""

    level: int
    score: float
    n_evidence: int
    low_data: bool


@dataclass(frozen=True)
class Member:
    rep_id: str
    function: str
    covers: tuple[str, ...]
    contribution: float


@dataclass(frozen=True)
class TeamResult:
    members: tuple[Member, ...]
    covered: tuple[str, ...]
    uncovered: tuple[str, ...]
    coverage: float  # weighted share of the needs covered
    objective: float
    method: str


def _qualifies(cap: CapView | None, need: SkillNeed) -> bool:
    return cap is not None and cap.level >= need.level


def _proficiency(cap: CapView, need: SkillNeed) -> float:
    p = need.weight * (1.0 + max(0.0, cap.score - need.level))
    return p * (0.5 if cap.low_data else 1.0)


def candidates(
    request: AssembleTeam,
    caps: Mapping[str, Mapping[str, CapView]],
    functions: Mapping[str, str],
) -> list[str]:
    """The reps worth considering: per need, the best qualifying reps; plus must-includes and,
    per role slot, the best reps of that function."""
    never = set(request.never_include)
    chosen: set[str] = set(request.must_include)
    for need in request.needs:
        q = [(r, c[need.skill_id]) for r, c in caps.items() if r not in never and _qualifies(c.get(need.skill_id), need)]
        q.sort(key=lambda rc: (-_proficiency(rc[1], need), rc[0]))
        chosen.update(r for r, _ in q[: request.candidates_per_skill])
    for fn, n in request.role_slots.items():
        pool = sorted(
            (r for r, f in functions.items() if f == fn and r not in never),
            key=lambda r: (-sum(c.score for c in caps.get(r, {}).values()), r),
        )
        chosen.update(pool[: max(n, request.candidates_per_skill // 4)])
    return sorted(chosen)


def assemble_team(
    request: AssembleTeam,
    caps: Mapping[str, Mapping[str, CapView]],
    functions: Mapping[str, str],
) -> TeamResult:
    """Solve the team request exactly.

    Raises
    ------
    Infeasible
        When the constraints cannot all hold; ``constraint`` names the one at fault.

    Examples
    --------
    >>> c = {"a": {"s": CapView(3, 3.2, 5, False)}, "b": {"t": CapView(2, 2.1, 4, False)}}
    >>> r = assemble_team(AssembleTeam((SkillNeed("s", 3), SkillNeed("t", 2)), max_size=2), c, {"a": "sales", "b": "sales"})
    >>> [m.rep_id for m in r.members], r.coverage
    (['a', 'b'], 1.0)
    """
    _check(request, functions)
    pool = candidates(request, caps, functions)
    if not pool:
        raise Infeasible("no rep qualifies for any required skill", "needs")
    n, m = len(pool), len(request.needs)
    pairs: list[tuple[int, int, float]] = []  # (need j, rep i, proficiency)
    for j, need in enumerate(request.needs):
        for i, r in enumerate(pool):
            cap = caps.get(r, {}).get(need.skill_id)
            if cap is not None and _qualifies(cap, need):
                pairs.append((j, i, _proficiency(cap, need)))
    k = len(pairs)
    prof = np.array([p for _, _, p in pairs])
    W = 10.0 * (prof.sum() + 1.0)
    # variables: x (members), y (covered needs), z (need j designated to member i)
    c = -np.concatenate([np.full(n, -request.member_cost), W * np.array([nd.weight for nd in request.needs]), prof])
    A_zx = np.zeros((k, n + m + k))
    A_yz = np.zeros((m, n + m + k))
    for p, (j, i, _) in enumerate(pairs):
        A_zx[p, n + m + p], A_zx[p, i] = 1.0, -1.0
        A_yz[j, n + m + p] = 1.0
    for j in range(m):
        A_yz[j, n + j] = -1.0
    cons = [LinearConstraint(A_zx, -np.inf, 0.0), LinearConstraint(A_yz, 0.0, 0.0)]
    size_row = np.concatenate([np.ones(n), np.zeros(m + k)])
    cons.append(LinearConstraint(size_row[None, :], request.min_size, request.max_size))
    for fn, slot in request.role_slots.items():
        row = np.concatenate([[1.0 if functions.get(r) == fn else 0.0 for r in pool], np.zeros(m + k)])
        cons.append(LinearConstraint(row[None, :], slot, np.inf))
    lb, ub = np.zeros(n + m + k), np.ones(n + m + k)
    for r in request.must_include:
        lb[pool.index(r)] = 1.0
    res = milp(c, constraints=cons, integrality=np.ones(n + m + k), bounds=Bounds(lb, ub),
               options={"time_limit": request.time_limit_s})
    if res.x is None:
        raise Infeasible(f"the team request has no solution ({res.message})", "solver")
    x = np.round(res.x[:n]).astype(int)
    z = np.round(res.x[n + m:]).astype(int)
    designated: dict[int, list[tuple[int, float]]] = {}
    for p, (j, i, pr) in enumerate(pairs):
        if z[p]:
            designated.setdefault(i, []).append((j, pr))
    members = []
    for member in (int(v) for v in np.flatnonzero(x)):
        mine = sorted(designated.get(member, []))
        covers = tuple(request.needs[j].skill_id for j, _ in mine)
        rep = pool[member]
        members.append(Member(rep, functions.get(rep, ""), covers, round(sum(pr for _, pr in mine), 4)))
    members.sort(key=lambda mb: (-len(mb.covers), -mb.contribution, mb.rep_id))
    covered_j = sorted({j for p, (j, _, _) in enumerate(pairs) if z[p]})
    covered = tuple(request.needs[j].skill_id for j in covered_j)
    total_w = sum(nd.weight for nd in request.needs) or 1.0
    cov = sum(request.needs[j].weight for j in covered_j) / total_w
    return TeamResult(tuple(members), covered, tuple(nd.skill_id for nd in request.needs if nd.skill_id not in covered),
                      round(cov, 4), round(float(-res.fun), 4), "milp-highs")


def _check(request: AssembleTeam, functions: Mapping[str, str]) -> None:
    if request.max_size < 1 or request.min_size > request.max_size:
        raise Infeasible(f"size bounds {request.min_size}..{request.max_size} are empty", "size")
    clash = set(request.must_include) & set(request.never_include)
    if clash:
        raise Infeasible(f"{sorted(clash)} are both must-include and never-include", "must_include")
    if len(request.must_include) > request.max_size:
        raise Infeasible(f"{len(request.must_include)} must-include reps exceed the size limit {request.max_size}", "max_size")
    unknown = [r for r in request.must_include if r not in functions]
    if unknown:
        raise Infeasible(f"must-include reps {unknown} are not known reps", "must_include")
    slots = sum(request.role_slots.values())
    if slots > request.max_size:
        raise Infeasible(f"role slots need {slots} members but the size limit is {request.max_size}", "role_slots")
    for fn, k in request.role_slots.items():
        have = sum(1 for r, f in functions.items() if f == fn and r not in request.never_include)
        if have < k:
            raise Infeasible(f"role slot {fn!r} needs {k} but only {have} reps have that function", "role_slots")


def required_needs(reqs: Sequence[tuple[str, int, float]]) -> tuple[SkillNeed, ...]:
    return tuple(SkillNeed(s, lv, w) for s, lv, w in reqs)
