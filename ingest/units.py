"""Units of work: an import is written as a sequence of changes, each applied in one
transaction. A unit holds whole records (an event with its evidence and all their edges), so a
process killed between units leaves a consistent store, and a rerun, being idempotent,
completes it without duplicates. Units stay small enough for a server's transaction memory."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from typing import TypeVar

from graph.model import Event, Evidence
from graph.store import ChangeSet, GraphStore

EVENTS_PER_UNIT = 2000



def event_units(events: Sequence[Event], evidence: Sequence[Evidence], size: int = EVENTS_PER_UNIT) -> list[ChangeSet]:
    """Events in units of ``size`` (in the order given), each with its evidence. Their PERFORMED,
    ABOUT and EVIDENCES relationships are implied by these nodes (``schema.IMPLIED``): the store
    keeps them."""
    by_event: dict[str, list[Evidence]] = {}
    for x in evidence:
        by_event.setdefault(x.event_id, []).append(x)
    units = []
    for i in range(0, len(events), size):
        chunk = list(events[i : i + size])
        ev = [x for e in chunk for x in by_event.get(e.id, [])]
        units.append(ChangeSet().add_nodes(chunk).add_nodes(ev))
    return units


R = TypeVar("R")


def collect(stream: Generator[ChangeSet, None, R]) -> tuple[list[ChangeSet], R]:
    """A loader's units as a list, and what its generator returns (its report)."""
    units: list[ChangeSet] = []
    while True:
        try:
            units.append(next(stream))
        except StopIteration as done:
            return units, done.value

def apply_all(store: GraphStore, units: Iterable[ChangeSet]) -> int:
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
