"""Growth paths: a rep's gaps against a target, ordered by prerequisites, filled with
learning resources within a weekly time budget.

gaps → order (topological over PRECEDES, then by weight and size of the gap) → choose
resources (for each level to climb, the shortest resource reaching it) → schedule (weeks at
``hours_per_week``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
class Resource:
    id: str
    title: str
    kind: str
    skill_id: str
    to_level: int
    hours: float


@dataclass(frozen=True)
class Gap:
    skill_id: str
    from_level: int
    to_level: int
    weight: float


@dataclass(frozen=True)
class Step:
    skill_id: str
    from_level: int
    to_level: int
    resources: tuple[Resource, ...]
    hours: float
    week_start: int
    week_end: int
    why: str


@dataclass(frozen=True)
class GrowthPath:
    rep_id: str
    target_id: str
    steps: tuple[Step, ...]
    unassessed: tuple[Gap, ...]
    total_hours: float
    weeks: int
    hours_per_week: float


def find_gaps(
    required: Sequence[tuple[str, int, float]], current: Mapping[str, int]
) -> tuple[list[Gap], list[Gap]]:
    """(gaps on assessed skills, required skills with no assessment yet)."""
    gaps, unassessed = [], []
    for skill, level, weight in required:
        if skill not in current:
            unassessed.append(Gap(skill, 0, level, weight))
        elif current[skill] < level:
            gaps.append(Gap(skill, current[skill], level, weight))
    return gaps, unassessed


def order_gaps(gaps: Sequence[Gap], precedes: Sequence[tuple[str, str]]) -> list[Gap]:
    """Prerequisites first; otherwise heavier and larger gaps first; ties by skill id.

    >>> g = [Gap("b", 1, 3, 1.0), Gap("a", 2, 3, 0.5)]
    >>> [x.skill_id for x in order_gaps(g, [("a", "b")])]
    ['a', 'b']
    """
    G = nx.DiGraph()
    by = {g.skill_id: g for g in gaps}
    G.add_nodes_from(by)
    full = nx.DiGraph(list(precedes))
    for a in by:
        for b in by:
            if a != b and a in full and b in full and nx.has_path(full, a, b):
                G.add_edge(a, b)
    key = {s: (-g.weight, -(g.to_level - g.from_level), s) for s, g in by.items()}
    order = nx.lexicographical_topological_sort(G, key=lambda s: key[s])
    return [by[s] for s in order]


def choose_resources(gap: Gap, catalogue: Sequence[Resource]) -> tuple[Resource, ...]:
    """For each level to climb, the shortest resource that teaches the skill to that level or beyond."""
    chosen: list[Resource] = []
    level = gap.from_level
    while level < gap.to_level:
        fits = [r for r in catalogue if r.skill_id == gap.skill_id and r.to_level > level]
        if not fits:
            break
        best = min(fits, key=lambda r: (r.to_level > gap.to_level, r.to_level, r.hours, r.id))
        if best not in chosen:
            chosen.append(best)
        level = best.to_level
    return tuple(chosen)


def plan_growth(
    rep_id: str,
    target_id: str,
    required: Sequence[tuple[str, int, float]],
    current: Mapping[str, int],
    catalogue: Sequence[Resource],
    precedes: Sequence[tuple[str, str]],
    skill_names: Mapping[str, str],
    hours_per_week: float = 4.0,
) -> GrowthPath:
    if hours_per_week <= 0:
        raise ValueError(f"hours_per_week must be positive, not {hours_per_week}")
    gaps, unassessed = find_gaps(required, current)
    steps = []
    spent = 0.0
    for g in order_gaps(gaps, precedes):
        res = choose_resources(g, catalogue)
        hours = sum(r.hours for r in res)
        start = int(spent // hours_per_week) + 1
        spent += hours
        end = max(start, math.ceil(spent / hours_per_week))
        name = skill_names.get(g.skill_id, g.skill_id)
        why = (f"target needs {name} at L{g.to_level} (weight {g.weight:.2f}); evidence shows L{g.from_level}"
               + ("" if res else "; no catalogue resource yet: arrange an expert session"))
        steps.append(Step(g.skill_id, g.from_level, g.to_level, res, hours, start, end, why))
    weeks = math.ceil(spent / hours_per_week) if spent else 0
    return GrowthPath(rep_id, target_id, tuple(steps), tuple(unassessed), round(spent, 2), weeks, hours_per_week)
