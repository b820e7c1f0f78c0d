"""Units of work: an import is written as a sequence of changes, each applied in one
transaction. A unit holds whole records (an event with its evidence and all their edges), so a
process killed between units leaves a consistent store, and a rerun, being idempotent,
completes it without duplicates. Units stay small enough for a server's transaction memory."""

from __future__ import annotations

from collections.abc import Sequence

from graph import schema
from graph.model import Event, Evidence
from graph.store import ChangeSet, GraphStore

EVENTS_PER_UNIT = 2000


def add_event_edges(change: ChangeSet, events: Sequence[Event], evidence: Sequence[Evidence]) -> None:
    """PERFORMED, ABOUT and EVIDENCES edges for events and their evidence."""
    change.add_edges(schema.PERFORMED, schema.REP, schema.EVENT, [{"src": e.rep_id, "dst": e.id} for e in events])
    change.add_edges(schema.ABOUT, schema.EVENT, schema.DEAL,
                     [{"src": e.id, "dst": e.deal_id} for e in events if e.deal_id])
    change.add_edges(
        schema.EVIDENCES, schema.EVENT, schema.SKILL,
        [{"src": x.event_id, "dst": x.skill_id, "key": x.id, "code": x.code, "level": x.level,
          "confidence": x.confidence, "weight": round(x.confidence * x.credibility, 4), "coder": x.coder}
         for x in evidence],
    )


def event_units(events: Sequence[Event], evidence: Sequence[Evidence], size: int = EVENTS_PER_UNIT) -> list[ChangeSet]:
    """Events in units of ``size`` (in the order given), each with its evidence and edges."""
    by_event: dict[str, list[Evidence]] = {}
    for x in evidence:
        by_event.setdefault(x.event_id, []).append(x)
    units = []
    for i in range(0, len(events), size):
        chunk = list(events[i : i + size])
        ev = [x for e in chunk for x in by_event.get(e.id, [])]
        unit = ChangeSet().add_nodes(chunk).add_nodes(ev)
        add_event_edges(unit, chunk, ev)
        units.append(unit)
    return units


def apply_all(store: GraphStore, units: Sequence[ChangeSet]) -> int:
    """Apply ``units`` in order, one transaction each; return the rows written."""
    n = 0
    for u in units:
        store.apply(u)
        n += u.n_rows
    return n


def merged(units: Sequence[ChangeSet]) -> ChangeSet:
    """All units as one change (for inspection and tests)."""
    out = ChangeSet()
    for u in units:
        out.merge(u)
    return out
