"""The GraphQL schema (Strawberry): reps, skills, capability maps with evidence, labels,
team suggestions and growth paths. Expected outcomes (an infeasible team, an unknown id) are
union result types; anything else is masked by the server."""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

import strawberry
from strawberry.extensions import MaskErrors, ParserCache, ValidationCache
from strawberry.types import Info

from api import views
from graph import schema as gs
from graph.errors import CapmapError, Infeasible, InvalidArgument, NotFound
from graph.model import Capability as DomainCapability
from graph.store import GraphStore
from matching.team import AssembleTeam

MAX_PAGE = 500


def _page(first: int, offset: int) -> None:
    if not 0 <= first <= MAX_PAGE:
        raise InvalidArgument(f"first: {first}; ask for 0 to {MAX_PAGE} items per page")
    if offset < 0:
        raise InvalidArgument(f"offset: {offset} is negative")


def _store(info: Info) -> GraphStore:
    return info.context["store"]


@strawberry.type
class Skill:
    id: str
    name: str
    name_zh: Optional[str]
    kind: str
    onet_id: Optional[str]

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Skill:
        return cls(id=r["id"], name=r.get("name", r["id"]), name_zh=r.get("name_zh"), kind=r.get("kind", ""),
                   onet_id=r.get("onet_id"))


@strawberry.type
class Evidence:
    id: str
    event_id: str
    skill_id: str
    code: str
    level: int
    polarity: int
    confidence: float
    credibility: float
    coder: str
    codebook_version: str
    reason: str
    span_start: Optional[int]
    span_end: Optional[int]
    at: Optional[str]
    state: str
    weight: Optional[float] = None
    contribution: Optional[float] = None

    @classmethod
    def from_row(cls, r: dict[str, Any], weight: Optional[float] = None, contribution: Optional[float] = None) -> Evidence:
        return cls(id=r["id"], event_id=r["event_id"], skill_id=r["skill_id"], code=r["code"], level=int(r["level"]),
                   polarity=int(r.get("polarity", 1)), confidence=float(r["confidence"]),
                   credibility=float(r["credibility"]), coder=r["coder"], codebook_version=r["codebook_version"],
                   reason=r["reason"], span_start=r.get("span_start"), span_end=r.get("span_end"), at=r.get("at"),
                   state=r.get("state", "suggested"), weight=weight, contribution=contribution)


@strawberry.type
class Capability:
    rep_id: str
    skill_id: str
    level: int
    score: float
    low: float
    high: float
    n_evidence: int
    weight: float
    low_data: bool
    run_id: str

    @strawberry.field
    def skill(self, info: Info) -> Optional[Skill]:
        row = _store(info).get_node(gs.SKILL, self.skill_id)
        return Skill.from_row(row) if row else None

    @strawberry.field(description="The evidence behind this level, largest contribution first, with how much each item counted.")
    def evidence(self, info: Info, first: int = 20) -> list[Evidence]:
        _page(first, 0)
        cap = DomainCapability(rep_id=self.rep_id, skill_id=self.skill_id, level=self.level, score=self.score,
                               low=self.low, high=self.high, n_evidence=self.n_evidence, weight=self.weight,
                               low_data=self.low_data, run_id=self.run_id)
        return [Evidence.from_row(r, w, c) for r, w, c in views.evidence_contributions(_store(info), cap, limit=first)]


@strawberry.type
class CapabilityLabel:
    id: str
    name: str
    name_zh: Optional[str]
    top_skills: list[str]
    top_codes: list[str]
    n_members: int
    approved: bool

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> CapabilityLabel:
        return cls(id=r["id"], name=r["name"], name_zh=r.get("name_zh"), top_skills=r.get("top_skills", []),
                   top_codes=r.get("top_codes", []), n_members=int(r.get("n_members", 0)), approved=bool(r.get("approved", False)))


@strawberry.type
class Rep:
    id: str
    name: str
    function: str
    team: Optional[str]
    office: Optional[str]

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Rep:
        return cls(id=r["id"], name=r.get("name", r["id"]), function=r.get("function", ""), team=r.get("team"),
                   office=r.get("office"))

    @strawberry.field
    def capabilities(self, info: Info, min_level: int = 0) -> list[Capability]:
        return [Capability(**vars(c)) for c in views.capabilities_of(_store(info), self.id) if c.level >= min_level]

    @strawberry.field
    def labels(self, info: Info) -> list[CapabilityLabel]:
        return [CapabilityLabel.from_row(n) for _, n in _store(info).neighbours(self.id, gs.IN_LABEL, "out")]


@strawberry.type
class LearningResource:
    id: str
    title: str
    kind: str
    hours: float
    to_level: int


@strawberry.type
class GrowthStep:
    skill_id: str
    from_level: int
    to_level: int
    hours: float
    week_start: int
    week_end: int
    why: str
    resources: list[LearningResource]


@strawberry.type
class GrowthPath:
    rep_id: str
    target_id: str
    steps: list[GrowthStep]
    unassessed_skills: list[str]
    total_hours: float
    weeks: int
    hours_per_week: float


@strawberry.type
class TeamMember:
    rep: Rep
    function: str
    covers: list[str]
    contribution: float
    evidence: list[Evidence]
    won_similar_deals: list[str]


@strawberry.type
class TeamSuggestion:
    deal_id: Optional[str]
    members: list[TeamMember]
    covered: list[str]
    uncovered: list[str]
    coverage: float
    method: str
    rule: str


@strawberry.type
class TeamInfeasible:
    reason: str
    constraint: str


@strawberry.type
class NotFoundError:
    message: str


@strawberry.input
class SkillNeedInput:
    skill_id: str
    level: int
    weight: float = 1.0


TeamResultType = Annotated[Union[TeamSuggestion, TeamInfeasible, NotFoundError], strawberry.union("TeamResult")]
GrowthResultType = Annotated[Union[GrowthPath, NotFoundError], strawberry.union("GrowthResult")]


def _team(s: views.TeamSuggestion, rule: str, store: GraphStore) -> TeamSuggestion:
    reps = store.get_nodes(gs.REP, [m.rep_id for m in s.result.members])
    return TeamSuggestion(
        deal_id=s.deal["id"] if s.deal else None,
        members=[TeamMember(rep=Rep.from_row(reps[m.rep_id]),
                            function=m.function, covers=list(m.covers), contribution=m.contribution,
                            evidence=[Evidence.from_row(r) for r in s.evidence.get(m.rep_id, [])],
                            won_similar_deals=s.history.get(m.rep_id, [])) for m in s.result.members if m.rep_id in reps],
        covered=list(s.result.covered), uncovered=list(s.result.uncovered), coverage=s.result.coverage,
        method=s.result.method, rule=rule)


@strawberry.type
class Query:
    @strawberry.field
    def rep(self, info: Info, id: str) -> Optional[Rep]:
        row = _store(info).get_node(gs.REP, id)
        return Rep.from_row(row) if row else None

    @strawberry.field
    def reps(self, info: Info, function: Optional[str] = None, first: int = 50, offset: int = 0) -> list[Rep]:
        _page(first, offset)
        where = {"function": function} if function else None
        return [Rep.from_row(r) for r in _store(info).list_nodes(gs.REP, where=where, limit=first, offset=offset)]

    @strawberry.field
    def skills(self, info: Info, kind: Optional[str] = None) -> list[Skill]:
        return [Skill.from_row(r) for r in _store(info).list_nodes(gs.SKILL, where={"kind": kind} if kind else None)]

    @strawberry.field
    def labels(self, info: Info) -> list[CapabilityLabel]:
        return [CapabilityLabel.from_row(r) for r in _store(info).list_nodes(gs.CAPABILITY_LABEL)]

    @strawberry.field
    def team_suggestion(
        self, info: Info, skills: list[SkillNeedInput], deal_id: Optional[str] = None, max_size: int = 4,
        must_include: Optional[list[str]] = None, never_include: Optional[list[str]] = None,
    ) -> TeamResultType:
        if not skills:
            raise InvalidArgument("skills: name at least one required skill")
        for i, s in enumerate(skills):
            if not 0 <= s.level <= 4:
                raise InvalidArgument(f"skills[{i}].level: {s.level} is outside L0–L4")
            if not s.weight > 0:
                raise InvalidArgument(f"skills[{i}].weight: {s.weight} must be positive")
        if max_size < 1:
            raise InvalidArgument(f"maxSize: {max_size}; a team needs at least one member")
        req = AssembleTeam(needs=views.needs_from([(s.skill_id, s.level, s.weight) for s in skills]), max_size=max_size,
                           must_include=tuple(must_include or ()), never_include=tuple(never_include or ()))
        try:
            suggestion = views.suggest_team(_store(info), req, deal_id)
        except Infeasible as e:
            return TeamInfeasible(reason=e.reason, constraint=e.constraint)
        except NotFound as e:
            return NotFoundError(message=str(e))
        rule = f"cover each required skill at its level with at most {max_size} members"
        return _team(suggestion, rule, _store(info))

    @strawberry.field
    def growth_path(self, info: Info, rep_id: str, target_id: str, hours_per_week: float = 4.0) -> GrowthResultType:
        if not 0 < hours_per_week <= 60:
            raise InvalidArgument(f"hoursPerWeek: {hours_per_week}; give the weekly learning time, more than 0 and at most 60")
        try:
            p = views.growth_path(_store(info), rep_id, target_id, hours_per_week)
        except NotFound as e:
            return NotFoundError(message=str(e))
        return GrowthPath(
            rep_id=p.rep_id, target_id=p.target_id, total_hours=p.total_hours, weeks=p.weeks, hours_per_week=p.hours_per_week,
            unassessed_skills=[g.skill_id for g in p.unassessed],
            steps=[GrowthStep(skill_id=s.skill_id, from_level=s.from_level, to_level=s.to_level, hours=s.hours,
                              week_start=s.week_start, week_end=s.week_end, why=s.why,
                              resources=[LearningResource(id=r.id, title=r.title, kind=r.kind, hours=r.hours, to_level=r.to_level)
                                         for r in s.resources]) for s in p.steps])


LabelResultType = Annotated[Union[CapabilityLabel, NotFoundError], strawberry.union("LabelResult")]


@strawberry.type
class Mutation:
    """HR decisions on capability labels; both survive recomputes as long as the label keeps its id."""

    @strawberry.mutation
    def rename_label(self, info: Info, id: str, name: str, name_zh: Optional[str] = None) -> LabelResultType:
        from api import jobs

        try:
            return CapabilityLabel.from_row(jobs.rename_label(_store(info), id, name, name_zh))
        except NotFound as e:
            return NotFoundError(message=str(e))

    @strawberry.mutation
    def approve_label(self, info: Info, id: str) -> LabelResultType:
        from api import jobs

        try:
            return CapabilityLabel.from_row(jobs.approve_label(_store(info), id))
        except NotFound as e:
            return NotFoundError(message=str(e))


def _should_mask(error: Any) -> bool:
    """Mask only unexpected failures: a query that does not validate (no original error) and
    capmap's own errors explain themselves to the caller."""
    original = getattr(error, "original_error", None)
    return original is not None and not isinstance(original, CapmapError)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[  # factories: a fresh extension per request
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=_should_mask),
    ],
)
