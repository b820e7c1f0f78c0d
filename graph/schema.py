"""Graph labels, relationship types and indexed properties: the one schema module.

Both stores read this module; nothing else spells a label or relationship type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Node labels
REP: Final = "Rep"
SKILL: Final = "Skill"
SCENARIO: Final = "Scenario"
DEAL: Final = "Deal"
ACCOUNT: Final = "Account"
EVENT: Final = "Event"
EVIDENCE: Final = "Evidence"
CAPABILITY_LABEL: Final = "CapabilityLabel"
LEARNING_RESOURCE: Final = "LearningResource"
TEAM: Final = "Team"
ROLE: Final = "Role"
RUN: Final = "Run"

NODE_LABELS: Final = (
    REP,
    SKILL,
    SCENARIO,
    DEAL,
    ACCOUNT,
    EVENT,
    EVIDENCE,
    CAPABILITY_LABEL,
    LEARNING_RESOURCE,
    TEAM,
    ROLE,
    RUN,
)

# Relationship types
PERFORMED: Final = "PERFORMED"  # (Rep)->(Event)
ABOUT: Final = "ABOUT"  # (Event)->(Deal)
EVIDENCES: Final = "EVIDENCES"  # (Event)->(Skill), keyed by evidence id
HAS_CAPABILITY: Final = "HAS_CAPABILITY"  # (Rep)->(Skill)
BROADER: Final = "BROADER"  # (Skill)->(Skill)
PRECEDES: Final = "PRECEDES"  # (Skill)->(Skill)
REQUIRES: Final = "REQUIRES"  # (Scenario|Role)->(Skill)
WORKED_ON: Final = "WORKED_ON"  # (Rep)->(Deal)
FOR_ACCOUNT: Final = "FOR_ACCOUNT"  # (Deal)->(Account)
IN_SCENARIO: Final = "IN_SCENARIO"  # (Deal)->(Scenario)
REPORTS_TO: Final = "REPORTS_TO"  # (Rep)->(Rep)
COLLABORATED: Final = "COLLABORATED"  # (Rep)->(Rep)
IN_LABEL: Final = "IN_LABEL"  # (Rep)->(CapabilityLabel)
TEACHES: Final = "TEACHES"  # (LearningResource)->(Skill)
MEMBER_OF: Final = "MEMBER_OF"  # (Rep)->(Team)
FOR_DEAL: Final = "FOR"  # (Team)->(Deal)

REL_TYPES: Final = (
    PERFORMED,
    ABOUT,
    EVIDENCES,
    HAS_CAPABILITY,
    BROADER,
    PRECEDES,
    REQUIRES,
    WORKED_ON,
    FOR_ACCOUNT,
    IN_SCENARIO,
    REPORTS_TO,
    COLLABORATED,
    IN_LABEL,
    TEACHES,
    MEMBER_OF,
    FOR_DEAL,
)



@dataclass(frozen=True)
class Implied:
    """A relationship implied by a node's properties: the ``owner`` node's ``src`` and ``dst``
    properties (``"id"`` for the owner's own id) name its two ends, ``key`` its key property
    (``None``: key ``""``), and ``props`` the owner's properties the relationship carries.

    Stores keep implied relationships themselves, so a change never lists them: one exists
    exactly while its owner and both end nodes exist, and follows the owner's properties.
    """

    rel_type: str
    owner: str
    src_label: str
    src: str
    dst_label: str
    dst: str
    key: str | None = None
    props: tuple[str, ...] = ()


# The relationships every behaviour event, evidence item and deal has: half of the rows an
# import would otherwise write; the embedded store answers them from the nodes' properties,
# Neo4j materialises them.
IMPLIED: Final[dict[str, Implied]] = {
    PERFORMED: Implied(PERFORMED, EVENT, REP, "rep_id", EVENT, "id"),
    ABOUT: Implied(ABOUT, EVENT, EVENT, "id", DEAL, "deal_id"),
    EVIDENCES: Implied(EVIDENCES, EVIDENCE, EVENT, "event_id", SKILL, "skill_id", key="id",
                       props=("code", "level", "confidence", "weight", "coder")),
    FOR_ACCOUNT: Implied(FOR_ACCOUNT, DEAL, DEAL, "id", ACCOUNT, "account_id"),
    IN_SCENARIO: Implied(IN_SCENARIO, DEAL, DEAL, "id", SCENARIO, "scenario_id"),
}


def implied_by(label: str) -> tuple[Implied, ...]:
    """The implied relationships whose owner is ``label``."""
    return tuple(i for i in IMPLIED.values() if i.owner == label)


# Properties that listings filter on; both stores index them.
INDEXED_PROPS: Final[dict[str, tuple[str, ...]]] = {
    EVENT: ("rep_id", "deal_id", "source"),
    EVIDENCE: ("rep_id", "skill_id", "event_id"),
    DEAL: ("outcome", "scenario_id", "account_id"),
    REP: ("function",),
    SKILL: ("kind",),
}


def check_label(label: str) -> str:
    """Return ``label`` if it is a known node label, else raise ``UnknownLabel``."""
    from graph.errors import UnknownLabel

    if label not in NODE_LABELS:
        raise UnknownLabel(f"unknown node label {label!r}; known: {', '.join(NODE_LABELS)}")
    return label


def check_rel(rel_type: str) -> str:
    """Return ``rel_type`` if it is a known relationship type, else raise ``UnknownLabel``."""
    from graph.errors import UnknownLabel

    if rel_type not in REL_TYPES:
        raise UnknownLabel(
            f"unknown relationship type {rel_type!r}; known: {', '.join(REL_TYPES)}"
        )
    return rel_type
