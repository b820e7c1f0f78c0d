"""Native behaviour events from any source: JSON lines or CSV, streamed into the store.

The schema is documented in ``seeds/schema/event.schema.json`` (JSON Schema 2020-12); CSV
columns carry the same names (``rating.skill``, ``attrs.<key>``; a few Chinese header names and
values are accepted, see ``CSV_COLUMNS``). Each record is validated with :class:`EventIn`; a bad
one is reported with its file, line, field and reason and the rest go on. The file is read,
validated, coded and written in units of ``unit_size`` events, each unit one transaction
holding whole events with their evidence and edges, so memory stays flat however large the
file, a process killed mid-file leaves a consistent store, and a rerun completes it: events
already stored with the same content and coding are skipped, changed ones are replaced.

Coding: text events by the codebook's bilingual patterns (coder ``rules``) and, when given, the
text coder on English sentence units (coder ``text``; it was trained on English dialogues);
stage changes by the codebook's stage-change codes (and any type by the codebook's codes for
that event type, e.g. approvals); ratings become evidence on the rated skill
at the rated level (coder ``rating:<rater>``). Credibility comes from the codebook's
``sources`` weight of the event's source.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph import schema
from graph.errors import InputError
from graph.model import Deal, Event
from graph.store import ChangeSet, GraphStore
from ingest import jsonio
from ingest.csvio import read_rows
from ingest.event_coding import MIN_TEXT_CONFIDENCE, RULE_CONFIDENCE, TEXT_TYPES, EventCoding, _Accepted
from ingest.event_schema import (
    CSV_COLUMNS,
    CSV_VALUES,
    DEFAULT_SOURCE,
    EventIn,
    EventType,
    Rater,
    RatingIn,
    read_raw,
    validate_event,
)
from ingest.report import IngestReport
from ingest.text import is_chinese
from ingest.timeutil import DEFAULT_TZ, zone
from ingest.units import EVENTS_PER_UNIT

__all__ = [
    "CSV_COLUMNS",
    "CSV_VALUES",
    "DEFAULT_SOURCE",
    "MIN_TEXT_CONFIDENCE",
    "RULE_CONFIDENCE",
    "TEXT_TYPES",
    "EventCoding",
    "EventIn",
    "EventType",
    "Rater",
    "RatingIn",
    "event_id",
    "ingest_events",
    "iter_event_units",
    "load_identity_map",
    "read_raw",
    "validate_event",
]

_EMAIL = re.compile(r"^[^@\s:]+@[^@\s]+\.[^@\s]+$")


def load_identity_map(path: str | Path) -> dict[str, str]:
    """Identities (e-mail, WeCom / DingTalk user id…) to rep ids, from a JSON object or a CSV
    with columns ``identity,rep``. Keys are compared case-insensitively."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            doc = jsonio.loads(p.read_text(encoding="utf-8-sig"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(str(p), None, None, f"cannot read the identity map: {e}") from e
        twice = jsonio.twice_error(doc, str(p), None, "the identity ")
        if twice is not None:
            raise twice
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise InputError(str(p), None, None, "the identity map must be a JSON object of identity -> rep id")
        return {str(k).casefold(): v for k, v in doc.items()}
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for r in read_rows(p, required=("identity", "rep")):
        if r.error is not None:
            raise r.error
        key, rep = r.row["identity"].strip().casefold(), r.row["rep"].strip()
        if key in out and out[key] != rep:
            raise InputError(str(p), r.line, "identity", f"{key!r} maps to {out[key]!r} on line {first[key]} and to "
                             f"{rep!r} here: capmap never keeps just one of them; remove one")
        out[key] = rep
        first.setdefault(key, r.line)
    return out


class _SeenIndex:
    """Ids already accepted in this file, with their line and content digest, kept in a private
    temporary SQLite database on disk so that memory stays flat however many ids a file has."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER, digest TEXT) WITHOUT ROWID")
        self._pending: dict[str, tuple[int, str]] = {}

    def get(self, key: str) -> tuple[int, str] | None:
        hit = self._pending.get(key)
        if hit is None:
            row = self._db.execute("SELECT line, digest FROM seen WHERE key = ?", (key,)).fetchone()
            hit = (int(row[0]), str(row[1])) if row else None
        return hit

    def add(self, key: str, line: int, digest: str) -> None:
        self._pending[key] = (line, digest)

    def flush(self) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?)",
                                 ((k, ln, d) for k, (ln, d) in self._pending.items()))
        self._pending.clear()

    def close(self) -> None:
        self._db.close()


def event_id(source: str, record_id: str) -> str:
    """The store id of a native event: ids are unique per source.

    >>> event_id("chat", "wecom-0001")
    'evt:chat:wecom-0001'
    """
    return f"evt:{source}:{record_id}"


def _rep_id(rep: str, identity: dict[str, str]) -> str:
    mapped = identity.get(rep.casefold())
    if mapped:
        return mapped
    return rep.casefold() if _EMAIL.match(rep) else rep


def _accept(line: int, rec: EventIn, coding: EventCoding, identity: dict[str, str], digest: str) -> _Accepted:
    source = rec.source or rec.type
    text = rec.text
    if rec.type == "stage_change" and not text:
        text = f"{rec.deal}: {rec.stage_from or '?'} → {rec.stage_to}"
    rep = _rep_id(rec.rep, identity)
    ev = Event(id=event_id(source, rec.id), rep_id=rep, type=rec.type, source=source, at=rec.at.utc,
               deal_id=rec.deal, text=text, turn=rec.turn,
               attrs_json=json.dumps(rec.attrs, ensure_ascii=False, sort_keys=True) if rec.attrs else None)
    props: dict[str, Any] = {"source_id": rec.id, "tz_assumed": rec.at.tz_assumed, "thread": rec.thread,
                             "lang": rec.lang or (("zh" if is_chinese(text) else "en") if text else None),
                             "stage_from": rec.stage_from, "stage_to": rec.stage_to}
    if rec.rating is not None:
        props.update(rating_skill=coding.skill_id(rec.rating.skill), rating_level=rec.rating.level,
                     rating_rater=rec.rating.rater, rating_rater_id=rec.rating.rater_id)
    props["content_sha"] = hashlib.sha256(f"{digest}|{rep}|{coding.fingerprint}".encode()).hexdigest()[:24]
    return _Accepted(line, rec, ev, {k: v for k, v in props.items() if v is not None})


class _UnitWriter:
    """Turns accepted events into one change: new reps and deals, replaced events, evidence."""

    def __init__(self, store: GraphStore, coding: EventCoding, report: IngestReport) -> None:
        self.store, self.coding, self.report = store, coding, report
        self.known_reps: set[str] = set()
        self.known_deals: set[str] = set()

    def _missing(self, label: str, ids: set[str], known: set[str]) -> list[str]:
        ask = sorted(ids - known)
        have = set(self.store.get_nodes(label, ask)) if ask else set()
        known.update(ask)
        return [i for i in ask if i not in have]

    def unit(self, items: list[_Accepted]) -> ChangeSet | None:
        """The change that writes ``items``, or None when all are stored already, unchanged."""
        stored = self.store.get_nodes(schema.EVENT, [it.event.id for it in items])
        fresh = [it for it in items if stored.get(it.event.id, {}).get("content_sha") != it.props["content_sha"]]
        self._count("unchanged", len(items) - len(fresh))
        if not fresh:
            return None
        change = ChangeSet()
        changed = [it.event.id for it in fresh if it.event.id in stored]
        if changed:  # re-imported with new content: replace the event, its edges and its evidence
            old = [x["id"] for eid in changed for x in self.store.list_nodes(schema.EVIDENCE, where={"event_id": eid})]
            change.delete_nodes += [(schema.EVENT, changed), (schema.EVIDENCE, old)]
            self._count("replaced", len(changed))
        reps = self._missing(schema.REP, {it.event.rep_id for it in fresh}, self.known_reps)
        deals = self._missing(schema.DEAL, {it.event.deal_id for it in fresh if it.event.deal_id}, self.known_deals)
        names = {it.event.rep_id: it.rec.rep for it in fresh}
        change.add_rows(schema.REP, [{"id": r, "name": names[r], "function": "unknown", "source": "events"} for r in reps])
        change.add_nodes([Deal(id=d, name=d, source="events") for d in deals])
        self._count("new_reps", len(reps))
        self._count("new_deals", len(deals))
        evidence = self.coding.code(fresh)
        change.add_rows(schema.EVENT, [{**it.event.to_row(), **it.props} for it in fresh])
        change.add_nodes(evidence)
        self._count("n_evidence", len(evidence))
        return change

    def _count(self, key: str, n: int) -> None:
        self.report.stats[key] = self.report.stats.get(key, 0) + n


@dataclass
class _Admission:
    """Admits a file's records one by one: valid, their id not seen before with other content,
    their rating's skill known. The others go to the report (a repeat counts as a duplicate)."""

    path: str
    context: dict[str, Any]
    coding: EventCoding
    identity: dict[str, str]
    seen: _SeenIndex
    report: IngestReport

    def admit(self, line: int, raw: dict[str, Any] | InputError) -> _Accepted | None:
        """The accepted event of the record on ``line``, or None when it is rejected or a duplicate."""
        report = self.report
        rec = raw if isinstance(raw, InputError) else validate_event(raw, self.path, line, self.context)
        if isinstance(rec, InputError):
            report.reject(rec)
            return None
        canonical = rec.canonical()
        digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]
        key = f"{rec.source}\x1f{rec.id}"
        first = self.seen.get(key)
        if first is not None:
            if first[1] == digest:
                report.duplicates += 1
            else:
                report.reject(InputError(self.path, line, "id", f"id {rec.id!r} (source {rec.source}) is also on line "
                                         f"{first[0]} with other content; lines {first[0]} and {line} disagree"))
            return None
        try:
            acc = _accept(line, rec, self.coding, self.identity, digest)
        except ValueError as e:
            report.reject(InputError(self.path, line, "rating.skill", str(e)))
            return None
        self.seen.add(key, line, digest)
        report.accepted += 1
        return acc


def _in_units(accepted: Iterator[_Accepted], writer: _UnitWriter, seen: _SeenIndex,
              unit_size: int) -> Iterator[ChangeSet]:
    """One change per ``unit_size`` accepted events and one for the rest, none for a unit stored
    already; the ids seen so far go to disk before each full unit is written."""
    batch: list[_Accepted] = []
    for acc in accepted:
        batch.append(acc)
        if len(batch) >= unit_size:
            seen.flush()
            unit = writer.unit(batch)
            batch = []
            if unit is not None:
                yield unit
    if batch:
        unit = writer.unit(batch)
        if unit is not None:
            yield unit


def iter_event_units(
    path: str | Path,
    store: GraphStore,
    coding: EventCoding,
    report: IngestReport,
    *,
    identity: dict[str, str] | None = None,
    default_tz: str = DEFAULT_TZ,
    unit_size: int = EVENTS_PER_UNIT,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ChangeSet]:
    """Read, validate and code a JSON-lines or CSV event file; yield one change per unit of
    ``unit_size`` accepted events. Apply each before asking for the next: the store is read
    to skip events already stored and to create only the reps and deals it lacks.

    Bad records go to ``report`` (file, line, field, reason); an id seen again with the same
    content counts as a duplicate, with other content it is rejected naming both lines.

    Raises
    ------
    InputError
        When the file as a whole cannot be read (missing, undecodable, bad CSV header).
    ConfigError
        For an unknown ``default_tz``.
    """
    p = Path(path)
    zone(default_tz)
    identity = {k.casefold(): v for k, v in (identity or {}).items()}
    context = {"sources": coding.codebook.sources, "default_tz": default_tz}
    writer = _UnitWriter(store, coding, report)
    seen = _SeenIndex()
    admission = _Admission(str(p), context, coding, identity, seen, report)
    for key in ("unchanged", "replaced", "new_reps", "new_deals", "n_evidence"):
        report.stats.setdefault(key, 0)
    try:
        admitted = (admission.admit(line, raw) for line, raw in read_raw(p, progress))
        yield from _in_units((acc for acc in admitted if acc is not None), writer, seen, unit_size)
    finally:
        seen.close()


def ingest_events(
    path: str | Path,
    store: GraphStore,
    coding: EventCoding,
    *,
    identity: dict[str, str] | None = None,
    default_tz: str = DEFAULT_TZ,
    unit_size: int = EVENTS_PER_UNIT,
    progress: Callable[[int], None] | None = None,
    rejects_path: str | Path | None = None,
) -> IngestReport:
    """Import an event file into ``store``, one transaction per unit; return the report.

    With ``rejects_path``, rejects are written there as JSON lines while the file is read (a
    stale file from an earlier run is removed first). See :func:`iter_event_units`.
    """
    rp = Path(rejects_path) if rejects_path is not None else None
    if rp is not None:
        rp.unlink(missing_ok=True)
    report = IngestReport("events", rejects_path=rp)
    try:
        for unit in iter_event_units(path, store, coding, report, identity=identity, default_tz=default_tz,
                                     unit_size=unit_size, progress=progress):
            store.apply(unit)
    finally:
        report.close()
    return report
