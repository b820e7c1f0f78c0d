"""The domain model: frozen dataclasses that cross no boundary unvalidated.

Each type knows its graph label and converts to and from a store row (a flat mapping of
JSON-able values keyed by ``id``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from graph import schema

T = TypeVar("T", bound="Node")

LEVELS = (0, 1, 2, 3, 4)
LEVEL_NAMES = {0: "L0 none", 1: "L1 aware", 2: "L2 practising", 3: "L3 proficient", 4: "L4 expert"}


D = TypeVar("D")

_INIT_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain_fields(cls: type) -> tuple[str, ...]:
    """The fields of dataclass ``cls`` in their order, when its ``__init__`` does no more than set
    them on the instance dict (no ``__post_init__``, no slots, every field an argument); else ()."""
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or not all(f.init for f in fields):
        return ()
    return tuple(f.name for f in fields)


def make(cls: type[D], values: dict[str, Any]) -> D:
    """``cls(**values)`` for a dataclass such as a node, several times faster when ``values``
    holds every field of ``cls`` in its order (thousands of events and evidence items are made
    per import): the instance dict is then ``values`` itself, as ``__init__`` would have made it.
    Anything else goes through ``__init__``."""
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = _INIT_FIELDS[cls] = _plain_fields(cls)
    if names and tuple(values) == names:
        obj = object.__new__(cls)
        object.__setattr__(obj, "__dict__", values)
        return obj
    return cls(**values)


_TUPLE_FIELDS: dict[type, tuple[str, ...]] = {}


def _tuple_fields(cls: type) -> tuple[str, ...]:
    """The fields of dataclass ``cls`` declared as tuples."""
    names = _TUPLE_FIELDS.get(cls)
    if names is None:
        names = _TUPLE_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if str(f.type).startswith("tuple"))
    return names


@dataclass(frozen=True)
class Node:
    """Base of every node type: an ``id`` and a graph label."""

    LABEL: ClassVar[str] = ""
    id: str

    def to_row(self) -> dict[str, Any]:
        """The store row: the fields in their order but those that are None, the fields declared
        as tuples as lists."""
        # a node's instance dict holds exactly its fields (set in __init__, frozen after)
        row = {k: v for k, v in self.__dict__.items() if v is not None}
        for k in _tuple_fields(type(self)):
            if type(row.get(k)) is tuple:
                row[k] = list(row[k])
        return row

    @classmethod
    def from_row(cls: type[T], row: dict[str, Any]) -> T:
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for k, v in row.items():
            if k in names:
                kwargs[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rep(Node):
    """A person in any function (sales, presales, legal, service, product, learner)."""

    LABEL: ClassVar[str] = schema.REP
    name: str = ""
    function: str = "sales"
    team: str | None = None
    office: str | None = None
    source: str = ""
    departments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skill(Node):
    """A capability on the L0–L4 scale, with optional external ids (O*NET, ESCO)."""

    LABEL: ClassVar[str] = schema.SKILL
    name: str = ""
    name_zh: str | None = None
    kind: str = "skill"  # skill | knowledge | work_style | sales
    description: str = ""
    onet_id: str | None = None
    esco_uri: str | None = None


@dataclass(frozen=True)
class Scenario(Node):
    """Customer type × journey stage × industry."""

    LABEL: ClassVar[str] = schema.SCENARIO
    customer_type: str = ""
    stage: str = ""
    industry: str = ""
    name: str = ""


@dataclass(frozen=True)
class Role(Node):
    """A role target profile (e.g. an O*NET occupation) that REQUIRES skills at levels."""

    LABEL: ClassVar[str] = schema.ROLE
    name: str = ""
    source: str = ""
    description: str = ""


@dataclass(frozen=True)
class Account(Node):
    LABEL: ClassVar[str] = schema.ACCOUNT
    name: str = ""
    sector: str | None = None
    revenue: float | None = None
    employees: int | None = None
    office_location: str | None = None
    parent: str | None = None


@dataclass(frozen=True)
class Deal(Node):
    """An opportunity or engagement, with its stage, value and outcome (won/lost/open)."""

    LABEL: ClassVar[str] = schema.DEAL
    name: str = ""
    stage: str = ""
    outcome: str = "open"  # won | lost | open
    value: float | None = None
    list_price: float | None = None
    product: str | None = None
    account_id: str | None = None
    scenario_id: str | None = None
    engaged_at: str | None = None
    closed_at: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Event(Node):
    """One behaviour event: an utterance, a stage change, a learning record…"""

    LABEL: ClassVar[str] = schema.EVENT
    rep_id: str = ""
    type: str = ""  # utterance | stage_change | xapi | email | chat | rating | ...
    source: str = ""
    at: str | None = None  # ISO-8601 UTC
    deal_id: str | None = None
    text: str | None = None
    turn: int | None = None
    attrs_json: str | None = None  # source-specific fields as JSON text


@dataclass(frozen=True)
class Evidence(Node):
    """One coded observation: an event's behaviour coded to a skill with a level signal."""

    LABEL: ClassVar[str] = schema.EVIDENCE
    event_id: str = ""
    rep_id: str = ""
    skill_id: str = ""
    code: str = ""
    level: int = 0
    polarity: int = 1
    confidence: float = 1.0
    credibility: float = 1.0
    coder: str = ""
    codebook_version: str = ""
    reason: str = ""
    span_start: int | None = None
    span_end: int | None = None
    at: str | None = None
    state: str = "suggested"  # suggested | validated | rejected

    def to_row(self) -> dict[str, Any]:
        row = super().to_row()
        row["weight"] = round(self.confidence * self.credibility, 4)  # what the EVIDENCES edge carries
        return row


@dataclass(frozen=True)
class Capability:
    """A rep's assessed level on one skill (the HAS_CAPABILITY edge)."""

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

    def to_edge(self) -> dict[str, Any]:
        return {"src": self.rep_id, "dst": self.skill_id, "level": self.level, "score": self.score, "low": self.low,
                "high": self.high, "n_evidence": self.n_evidence, "weight": self.weight, "low_data": self.low_data,
                "run_id": self.run_id}

    @classmethod
    def from_edge(cls, edge: dict[str, Any]) -> Capability:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in edge.items() if k in names}
        return cls(rep_id=edge["src"], skill_id=edge["dst"], **kw)


@dataclass(frozen=True)
class CapabilityLabel(Node):
    LABEL: ClassVar[str] = schema.CAPABILITY_LABEL
    name: str = ""
    name_zh: str | None = None
    top_skills: tuple[str, ...] = ()
    top_codes: tuple[str, ...] = ()
    n_members: int = 0
    run_id: str = ""
    approved: bool = False
    # emergent capabilities (clustering/emergent.py): proposed for a human to approve or reject
    kind: str = "profile"  # profile (clustered rep profiles) | emergent (clustered text of won engagements)
    status: str = "proposed"  # proposed | approved | rejected
    top_terms: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    member_reps: tuple[str, ...] = ()
    explanation: str = ""
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    # profile labels (clustering/labels.py, clustering/lineage.py): the id is kept across runs by
    # centroid matching; an HR rename or approval is kept with it
    auto_name: str = ""  # the name the last run generated (``name`` differs once HR renames)
    auto_name_zh: str | None = None
    renamed: bool = False
    centroid: tuple[float, ...] = ()  # mean member features before PCA, over feature_names
    feature_names: tuple[str, ...] = ()
    lineage_json: str = ""  # this run's lineage entry: event (matched|merged|split|new), sources, distance
    mean_probability: float | None = None


@dataclass(frozen=True)
class LearningResource(Node):
    LABEL: ClassVar[str] = schema.LEARNING_RESOURCE
    title: str = ""
    title_zh: str | None = None
    kind: str = "course"  # course | expert_session | practice
    url: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class Team(Node):
    LABEL: ClassVar[str] = schema.TEAM
    deal_id: str | None = None
    scenario_id: str | None = None
    status: str = "proposed"  # proposed | approved | active | dissolved
    coverage: float = 0.0
    objective: float = 0.0
    run_id: str = ""


@dataclass(frozen=True)
class Run(Node):
    """One recompute: its manifest (parameters, seeds, versions, input hash)."""

    LABEL: ClassVar[str] = schema.RUN
    kind: str = ""
    started_at: str = ""
    manifest_json: str = ""


@dataclass(frozen=True)
class Requirement:
    """A REQUIRES edge: a scenario or role needs ``skill_id`` at ``level``."""

    owner_id: str
    skill_id: str
    level: int
    weight: float = 1.0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
