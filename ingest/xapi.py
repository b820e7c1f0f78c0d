"""xAPI 1.0.3 statements (2.0 fields tolerated) as learning-record events.

References below are to the xAPI 1.0.3 specification, part Data ("D") and part Communication ("C").

- **Actor** (D 2.4.2): exactly one inverse functional identifier — ``mbox``, ``mbox_sha1sum``,
  ``openid`` or ``account``; two identifiers, none, or an anonymous Group are rejected. An
  ``account`` needs ``homePage`` as an absolute IRL and a non-empty ``name`` (D 2.4.2.4).
- **Identity**: an mbox keeps its local part as written and lower-cases its domain (D 2.4.2.3:
  only the domain is case-insensitive). An identity map (``{"mailto:li.lei@example.cn":
  "crm:li-lei", "account:https://wecom.example|lilei": "crm:li-lei"}``) attaches an actor's events
  to an existing rep; an entry whose rep is not in the store is rejected by name, and so are the
  statements it would attribute. An unmapped actor becomes the learner rep ``xapi:`` + the first
  12 hex digits of the mbox's SHA1 (so ``mbox`` and ``mbox_sha1sum`` of one address meet) or of
  the identifier.
- **Comparison** (D 2.3.1, "Statement Comparision Requirements"): a statement is hashed without
  what the LRS may assign (``id``, ``authority``, ``stored``, ``version``, ``timestamp``),
  ``attachments`` (hence signatures), the Verb ``display`` and Activity ``definition``\\ s, with
  Group members unordered, ``objectType`` defaults made explicit and case-insensitive parts
  lower-cased; ``result.duration`` stays a string. Timestamps are compared as instants to the
  millisecond, and only when both statements carry one.
- **Resend**: the same statement under a known id is a duplicate (no write); a different one is
  rejected naming the id (C 2.1.1, 409 Conflict). When one import holds different statements
  under one id and the store has none, all of them are rejected (C 2.1.1 rejects such a batch),
  so the outcome does not depend on input order. Id-less statements get a UUID derived from
  their content, so a re-import finds them again.
- **Voiding** (D 2.3.2): the voiding statement's object must be a ``StatementRef``; it is stored
  as an Event of type ``xapi-void`` whose ``voids`` holds the target's statement id. The voided
  Event is kept with ``voided: true`` and ``voided_by`` (the smallest voiding id) — an LRS keeps
  voided statements too — and has no Evidence: removed if it came first, never created if the
  voiding came first. A voiding statement cannot itself be voided.
- **Timestamps** must carry a zone (D 4.5 "SHOULD*" include it; xAPI 2.0 requires RFC 3339, which
  has one): a zone-less timestamp is rejected rather than guessed. They are stored in UTC.
- **Rejects** name the file, the statement (0-based index in a JSON array or object, 1-based
  line in JSON lines) and the field path, e.g. ``actor.account.homePage``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graph import schema
from graph.errors import InputError
from graph.model import Event, Evidence, Rep
from graph.store import ChangeSet, GraphStore, Row
from ingest.codebook import Codebook
from ingest.evidence import evidence_for
from ingest.report import IngestReport
from ingest.units import event_units
from ingest.xapi_records import _Identity, _identity, _Record, _record, read_identity_map, read_statements
from ingest.xapi_statements import (
    IFI_KINDS,
    VOIDED,
    Actor,
    Statement,
    _same,
    identity_key,
    is_irl,
    learner_id,
    normal_mbox,
    parse_timestamp,
    statement_hash,
)

__all__ = [
    "IFI_KINDS",
    "STATEMENT_EVENT",
    "VOIDED",
    "VOID_EVENT",
    "Actor",
    "Statement",
    "identity_key",
    "is_irl",
    "learner_id",
    "load_xapi",
    "normal_mbox",
    "parse_timestamp",
    "read_identity_map",
    "read_statements",
    "statement_hash",
]

log = logging.getLogger(__name__)

STATEMENT_EVENT = "xapi"
VOID_EVENT = "xapi-void"


# ---------------------------------------------------------------- resends and conflicts

@dataclass
class _Plan:
    write: dict[str, _Record] = field(default_factory=dict)  # sid → record to write
    kept: list[_Record] = field(default_factory=list)  # every record not rejected (written or resent)
    replace: set[str] = field(default_factory=set)  # sids whose stored event is deleted first (re-attributed)
    rep_of: dict[str, str] = field(default_factory=dict)  # identity key → rep id


def _plan(records: list[_Record], stored: dict[str, Row], plan: _Plan, report: IngestReport) -> None:
    by_sid: dict[str, list[_Record]] = defaultdict(list)
    for r in records:
        by_sid[r.sid].append(r)
    for sid in sorted(by_sid):
        versions = sorted(by_sid[sid], key=lambda r: (r.at is None, r.content, r.file, r.index))
        row = stored.get(sid)
        if row is not None and row.get("statement_hash"):
            _against_store(sid, versions, row, plan, report)
            continue
        if any(not _same(a.digest, a.at, b.digest, b.at) for a in versions for b in versions):
            where = ", ".join(f"{Path(r.file).name}[{r.index}]" for r in sorted(versions, key=lambda r: (r.file, r.index)))
            for r in sorted(versions, key=lambda r: (r.file, r.index)):
                report.reject(InputError(r.file, r.index, "id", f"statement id {sid} is used by different statements "
                                         f"in this import ({where}); none of them is imported"))
            continue
        plan.write[sid] = versions[0]
        plan.kept.extend(versions)
        report.accepted += 1
        report.duplicates += len(versions) - 1
        if row is not None and row.get("rep_id") != plan.rep_of[versions[0].key]:
            plan.replace.add(sid)


def _against_store(sid: str, versions: list[_Record], row: Row, plan: _Plan, report: IngestReport) -> None:
    same = [r for r in versions if _same(r.digest, r.at, str(row["statement_hash"]), row.get("at"))]
    for r in sorted(versions, key=lambda r: (r.file, r.index)):
        if r not in same:
            report.reject(InputError(r.file, r.index, "id", f"statement id {sid} is already stored with different "
                                     "content; a statement cannot be changed (send it under a new id)"))
    if not same:
        return
    plan.kept.extend(same)
    if row.get("rep_id") != plan.rep_of[same[0].key]:  # the identity map now names another rep
        plan.write[sid] = same[0]
        plan.replace.add(sid)
        report.accepted += 1
        report.duplicates += len(same) - 1
        log.info("xAPI statement %s re-attributed from %s to %s", sid, row.get("rep_id"), plan.rep_of[same[0].key])
    else:
        report.duplicates += len(same)


# ---------------------------------------------------------------- the loader

def load_xapi(
    paths: Sequence[Path],
    codebook: Codebook,
    skill_names: dict[str, tuple[str, str]],
    identity: Mapping[str, str] | Path | None = None,
    *,
    store: GraphStore | None = None,
) -> tuple[list[ChangeSet], IngestReport]:
    """Read xAPI statements into the units of work that store them.

    Parameters
    ----------
    paths:
        Statement files: a JSON array, a JSON object of statements, one statement, or JSON lines.
    identity:
        The identity map (identifier → existing rep id), or the path of its JSON file.
    store:
        Read only: statements, voidings and reps already imported, so that resends, conflicts
        and voiding work across imports. Without it, each import stands alone.

    Returns
    -------
    The units to apply in order (``ingest.units.apply_all``) and the report.

    Raises
    ------
    InputError
        When the identity map file cannot be read.
    """
    report = IngestReport("xapi")
    source = str(identity) if isinstance(identity, Path) else "identity map"
    entries = read_identity_map(identity) if isinstance(identity, Path) else (identity or {})
    ident = _identity(entries, source, store, report)
    plan = _Plan()
    records = _read_records(paths, ident, plan, report)
    stored = _stored_events(store, sorted({r.sid for r in records}))
    _plan(records, stored, plan, report)
    return _units(plan, codebook, skill_names, ident, store), report


def _read_records(paths: Sequence[Path], ident: _Identity, plan: _Plan, report: IngestReport) -> list[_Record]:
    """The valid statements of ``paths`` whose actor resolves to a rep (noted in ``plan.rep_of``),
    in file order; the others go to ``report``."""
    records: list[_Record] = []
    for path in paths:
        items, errors = read_statements(path)
        for err in errors:
            report.reject(err)
        for index, raw in items:
            rec = _record(str(path), index, raw)
            if isinstance(rec, InputError):
                report.reject(rec)
                continue
            rep_id, why = ident.resolve(rec.key)
            if rep_id is None:
                report.reject(InputError(rec.file, rec.index, "actor", str(why)))
                continue
            plan.rep_of[rec.key] = rep_id
            records.append(rec)
    return records


def _stored_events(store: GraphStore | None, sids: list[str]) -> dict[str, Row]:
    if store is None or not sids:
        return {}
    rows = store.get_nodes(schema.EVENT, [f"xapi:{s}" for s in sids])
    return {k.removeprefix("xapi:"): v for k, v in rows.items() if v.get("source") == "xapi"}


def _voids(store: GraphStore | None, plan: _Plan) -> dict[str, set[str]]:
    """Target statement id → ids of the statements voiding it (stored or in this import); a
    voiding statement is never a target (D 2.3.2)."""
    voiders: dict[str, set[str]] = defaultdict(set)
    rows = store.iter_nodes(schema.EVENT, where={"source": "xapi", "type": VOID_EVENT}) if store is not None else []
    for row in rows:
        voiders[str(row["voids"])].add(str(row["id"]).removeprefix("xapi:"))
    for r in plan.kept:
        if r.voids:
            voiders[r.voids].add(r.sid)
    voiding = {sid for ids in voiders.values() for sid in ids}
    return {t: v for t, v in voiders.items() if t not in voiding}


def _units(plan: _Plan, codebook: Codebook, skill_names: dict[str, tuple[str, str]], ident: _Identity,
           store: GraphStore | None) -> list[ChangeSet]:
    voiders = _voids(store, plan)
    codes = codebook.event_codes("xapi")
    events: list[Event] = []
    evidence: list[Evidence] = []
    extra: dict[str, Row] = {}
    for sid, r in sorted(plan.write.items()):
        ev = Event(id=f"xapi:{sid}", rep_id=plan.rep_of[r.key], type=VOID_EVENT if r.voids else STATEMENT_EVENT,
                   source="xapi", at=r.at, text=r.text, attrs_json=r.attrs_json)
        events.append(ev)
        extra[ev.id] = {"statement_hash": r.digest, "verb": r.verb, **({"object_id": r.object_id} if r.object_id else {})}
        if r.voids:
            extra[ev.id]["voids"] = r.voids
            continue
        extra[ev.id]["voided"] = sid in voiders
        if sid in voiders:
            extra[ev.id]["voided_by"] = min(voiders[sid])
            continue
        tail = r.verb.rstrip("/").rsplit("/", 1)[-1].lower()
        evidence.extend(evidence_for(ev, code, level=code.level, confidence=1.0, coder="rules", codebook=codebook,
                                     skill_names=skill_names, text=ev.text)
                        for code in codes if tail in code.event_verbs)
    units = event_units(events, evidence)
    for unit in units:
        for row in unit.nodes.get(schema.EVENT, []):
            row.update(extra[row["id"]])
        _replace_first(unit, plan.replace, store)
    return [_reps_change(plan, ident, store), *units, _void_stored(voiders, plan, store)]


def _replace_first(unit: ChangeSet, replace: set[str], store: GraphStore | None) -> None:
    """Delete the stored events (and their evidence) that this unit writes again under another rep."""
    ids = [row["id"] for row in unit.nodes.get(schema.EVENT, []) if row["id"].removeprefix("xapi:") in replace]
    if not ids or store is None:
        return
    gone = [x["id"] for eid in ids for x in store.list_nodes(schema.EVIDENCE, where={"event_id": eid})]
    unit.delete_nodes.append((schema.EVENT, ids))
    if gone:
        unit.delete_nodes.append((schema.EVIDENCE, gone))


def _reps_change(plan: _Plan, ident: _Identity, store: GraphStore | None) -> ChangeSet:
    """Learner reps for unmapped actors not yet in the store; the name is the smallest one sent."""
    names: dict[str, set[str]] = defaultdict(set)
    mapped = set(ident.reps.values())
    for r in plan.kept:
        rep_id = plan.rep_of[r.key]
        if rep_id == learner_id(r.key) and rep_id not in mapped:
            names[rep_id].add(r.name or r.key)
    known = set(store.get_nodes(schema.REP, sorted(names))) if store is not None and names else set()
    reps = [Rep(id=i, name=min(n), function="learner", source="xapi") for i, n in sorted(names.items()) if i not in known]
    return ChangeSet().add_nodes(reps)


def _void_stored(voiders: dict[str, set[str]], plan: _Plan, store: GraphStore | None) -> ChangeSet:
    """Mark stored targets voided and remove their evidence (also finishes an interrupted import)."""
    change = ChangeSet()
    targets = sorted(t for t in voiders if t not in plan.write)
    if store is None or not targets:
        return change
    rows = _stored_events(store, targets)
    fix = [(sid, row) for sid, row in sorted(rows.items()) if row.get("type") == STATEMENT_EVENT
           and (row.get("voided") is not True or row.get("voided_by") != min(voiders[sid]))]
    if not fix:
        return change
    ids = [row["id"] for _, row in fix]
    gone = [x["id"] for eid in ids for x in store.list_nodes(schema.EVIDENCE, where={"event_id": eid})]
    if gone:
        change.delete_nodes.append((schema.EVIDENCE, gone))
    change.add_rows(schema.EVENT, [{**row, "voided": True, "voided_by": min(voiders[sid])} for sid, row in fix])
    return change
