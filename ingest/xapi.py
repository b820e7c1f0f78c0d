"""xAPI 1.0.3 statements (2.0 fields tolerated) as learning-record events.

An actor is identified by exactly one inverse functional identifier (``mbox``,
``mbox_sha1sum``, ``openid`` or ``account``); an optional identity map turns identifiers into
existing rep ids, and an unmapped actor becomes a learner rep. ``completed``/``passed``/
``mastered`` statements become evidence through the codebook's xAPI rules. A ``voided``
statement removes its target's evidence.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graph import schema
from graph.errors import InputError
from graph.model import Event, Evidence, Rep
from graph.store import ChangeSet
from ingest.codebook import Codebook
from ingest.coders import evidence_for
from ingest.report import IngestReport
from ingest.units import event_units

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
_NS = uuid.UUID("6f1c2d0e-8a7b-4c1d-9e2f-3a4b5c6d7e8f")


class _Account(BaseModel):
    model_config = ConfigDict(extra="allow")
    homePage: str = Field(min_length=1)
    name: str = Field(min_length=1)


class _Actor(BaseModel):
    model_config = ConfigDict(extra="allow")
    objectType: str | None = None
    name: str | None = None
    mbox: str | None = Field(default=None, pattern=r"^mailto:[^@\s]+@[^@\s]+$")
    mbox_sha1sum: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{40}$")
    openid: str | None = None
    account: _Account | None = None

    @model_validator(mode="after")
    def _one_ifi(self) -> _Actor:
        ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if getattr(self, k) is not None]
        if len(ifis) != 1:
            raise ValueError(f"an actor needs exactly one identifier (mbox, mbox_sha1sum, openid, account); has {ifis or 'none'}")
        return self

    def ifi(self) -> str:
        if self.mbox:
            return self.mbox.lower()
        if self.mbox_sha1sum:
            return "sha1:" + self.mbox_sha1sum.lower()
        if self.openid:
            return "openid:" + self.openid
        assert self.account is not None
        return f"account:{self.account.homePage}|{self.account.name}"


class _Verb(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    display: dict[str, str] = {}


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    objectType: str | None = None
    definition: dict[str, Any] = {}


class Statement(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    actor: _Actor
    verb: _Verb
    object: _Object
    timestamp: datetime | None = None
    result: dict[str, Any] | None = None


def _utc(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_statements(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(index, statement) pairs from a JSON array, a JSON object of statements, or JSON lines."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise InputError(str(path), i, None, f"not JSON: {e.msg}") from e
        return out
    if isinstance(doc, dict) and "actor" not in doc:
        return list(enumerate(doc.values()))
    if isinstance(doc, dict):
        return [(0, doc)]
    if isinstance(doc, list):
        return list(enumerate(doc))
    raise InputError(str(path), None, None, "expected a statement, a list of statements or JSON lines")


def load_xapi(
    paths: list[Path],
    codebook: Codebook,
    skill_names: dict[str, tuple[str, str]],
    identity: dict[str, str] | None = None,
) -> tuple[list[ChangeSet], IngestReport]:
    report = IngestReport("xapi")
    identity = {k.lower(): v for k, v in (identity or {}).items()}
    reps: dict[str, Rep] = {}
    events: dict[str, Event] = {}
    evidence: list[Evidence] = []
    voided: set[str] = set()
    codes = codebook.event_codes("xapi")
    for path in paths:
        for idx, raw in read_statements(path):
            try:
                st = Statement.model_validate(raw)
            except ValidationError as e:
                first = e.errors()[0]
                report.reject(InputError(str(path), idx, ".".join(str(x) for x in first["loc"]), first["msg"]))
                continue
            sid = st.id or str(uuid.uuid5(_NS, json.dumps(raw, sort_keys=True)))
            ifi = st.actor.ifi()
            rep_id = identity.get(ifi) or "xapi:" + hashlib.sha1(ifi.encode()).hexdigest()[:12]
            if rep_id not in reps and not identity.get(ifi):
                reps[rep_id] = Rep(id=rep_id, name=st.actor.name or ifi, function="learner", source="xapi")
            if st.verb.id == VOIDED:
                if st.object.id:
                    voided.add(st.object.id)
                report.accepted += 1
                continue
            eid = f"xapi:{sid}"
            if eid in events:
                report.duplicates += 1
                continue
            verb = st.verb.display.get("en-US") or st.verb.display.get("en") or st.verb.id.rsplit("/", 1)[-1]
            name = st.object.definition.get("name", {}) if isinstance(st.object.definition, dict) else {}
            obj = (name.get("en-US") or name.get("en") or st.object.id or "") if isinstance(name, dict) else ""
            ev = Event(id=eid, rep_id=rep_id, type="xapi", source="xapi", at=_utc(st.timestamp),
                       text=f"{verb} {obj}".strip(),
                       attrs_json=json.dumps({"verb": st.verb.id, "object": st.object.id, "result": st.result},
                                             sort_keys=True, default=str))
            events[eid] = ev
            report.accepted += 1
            tail = st.verb.id.rstrip("/").rsplit("/", 1)[-1].lower()
            for code in codes:
                if tail in code.event_verbs:
                    evidence.append(evidence_for(ev, code, level=code.level, confidence=1.0, coder="rules",
                                                 codebook=codebook, skill_names=skill_names, text=ev.text))
    kept_events = [e for k, e in sorted(events.items()) if k.removeprefix("xapi:") not in voided]
    kept_ids = {e.id for e in kept_events}
    kept_evidence = [x for x in evidence if x.event_id in kept_ids]
    change = ChangeSet().add_nodes(list(reps.values()))
    gone = sorted(f"xapi:{v}" for v in voided)
    if gone:
        change.delete_nodes.append((schema.EVENT, gone))
        change.delete_nodes.append((schema.EVIDENCE, [x.id for x in evidence if x.event_id in set(gone)]))
    return [change, *event_units(kept_events, kept_evidence)], report
