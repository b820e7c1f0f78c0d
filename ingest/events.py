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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from graph import schema
from graph.errors import ConfigError, InputError
from graph.model import Deal, Event, Evidence
from graph.store import ChangeSet, GraphStore
from ingest.codebook import Codebook
from ingest.coders import NON_STRATEGY, RuleCoder, TextCoder, Unit, evidence_for, upgraded_level
from ingest.csvio import read_rows
from ingest.report import IngestReport
from ingest.text import is_chinese, sentence_units, snippet
from ingest.timeutil import DEFAULT_TZ, Instant, to_utc, zone
from ingest.units import EVENTS_PER_UNIT, add_event_edges

EventType = Literal["call", "email", "chat", "stage_change", "proposal_edit", "approval", "nps", "rating"]
Rater = Literal["self", "manager", "peer"]
TEXT_TYPES = frozenset({"call", "email", "chat", "proposal_edit", "nps"})
DEFAULT_SOURCE = {"call": "call", "email": "email", "chat": "chat", "stage_change": "crm", "proposal_edit": "proposal",
                  "approval": "approval", "nps": "nps"}
RULE_CONFIDENCE = 0.7
MIN_TEXT_CONFIDENCE = 0.35
_RATER_ZH = {"self": "自评", "manager": "上级评价", "peer": "同事评价"}
_EMAIL = re.compile(r"^[^@\s:]+@[^@\s]+\.[^@\s]+$")


class RatingIn(BaseModel):
    """A rating of one skill: by the rep (self), their manager or a peer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    skill: str = Field(min_length=1, description="skill id, English or Chinese skill name")
    level: int = Field(ge=0, le=4)
    rater: Rater
    rater_id: str | None = None


class EventIn(BaseModel):
    """One behaviour event as capmap's native schema defines it (see the JSON Schema).

    Validation needs the context ``{"sources": <codebook sources>, "default_tz": <zone>}``.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(min_length=1, max_length=200)
    rep: str = Field(min_length=1, max_length=200)
    type: EventType
    rating: RatingIn | None = Field(default=None, validate_default=True)
    source: str | None = Field(default=None, validate_default=True)
    tz: str | None = None
    at: Any
    deal: str | None = Field(default=None, min_length=1, validate_default=True)
    text: str | None = Field(default=None, max_length=100_000)
    lang: Literal["zh", "en"] | None = None
    thread: str | None = None
    turn: int | None = Field(default=None, ge=0)
    stage_from: str | None = None
    stage_to: str | None = Field(default=None, validate_default=True)
    attrs: dict[str, Any] | None = None

    @field_validator("rating")
    @classmethod
    def _rating(cls, v: RatingIn | None, info: ValidationInfo) -> RatingIn | None:
        kind = info.data.get("type")
        if kind == "rating" and v is None:
            raise ValueError("a rating event needs rating {skill, level, rater}")
        if kind not in (None, "rating") and v is not None:
            raise ValueError(f"only a rating event has a rating, this one is a {kind}")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind, rating = info.data.get("type"), info.data.get("rating")
        if v is None:
            return f"{rating.rater}_rating" if kind == "rating" and rating else DEFAULT_SOURCE.get(str(kind))
        known = (info.context or {}).get("sources")
        if known is not None and v not in known:
            raise ValueError(f"unknown source {v!r}; the codebook weighs {', '.join(sorted(known))}")
        if rating is not None and v.endswith("_rating") and v != f"{rating.rater}_rating":
            raise ValueError(f"source {v!r} contradicts rating.rater {rating.rater!r}")
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zone(v)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: Any, info: ValidationInfo) -> Instant:
        if v is None or isinstance(v, (dict, list)):
            raise ValueError("a timestamp is required (ISO-8601, Excel serial or Unix time)")
        return to_utc(v, info.data.get("tz") or (info.context or {}).get("default_tz", DEFAULT_TZ))

    @field_validator("deal")
    @classmethod
    def _deal(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("type") == "stage_change":
            raise ValueError("a stage_change needs the deal whose stage changed")
        return v

    @field_validator("stage_to")
    @classmethod
    def _stage_to(cls, v: str | None, info: ValidationInfo) -> str | None:
        if not v and info.data.get("type") == "stage_change":
            raise ValueError("a stage_change needs stage_to")
        return v

    def canonical(self) -> dict[str, Any]:
        """The record as validated, JSON-able, with its instant in UTC."""
        d = self.model_dump(exclude={"at"}, exclude_none=True)
        d["at"], d["tz_assumed"] = self.at.utc, self.at.tz_assumed
        return d


# -- CSV: column names and the values Chinese spreadsheets use --------------------------------
CSV_COLUMNS = {
    "编号": "id", "事件编号": "id", "销售": "rep", "员工": "rep", "人员": "rep", "类型": "type", "事件类型": "type",
    "来源": "source", "时区": "tz", "时间": "at", "发生时间": "at", "商机": "deal", "商机编号": "deal", "内容": "text",
    "文本": "text", "语言": "lang", "会话": "thread", "轮次": "turn", "原阶段": "stage_from", "新阶段": "stage_to",
    "评分技能": "rating.skill", "技能": "rating.skill", "评分等级": "rating.level", "等级": "rating.level",
    "评分人类型": "rating.rater", "评分人": "rating.rater_id", "rating_skill": "rating.skill",
    "rating_level": "rating.level", "rating_rater": "rating.rater", "rating_rater_id": "rating.rater_id",
}
CSV_VALUES = {
    "type": {"通话": "call", "电话": "call", "邮件": "email", "聊天": "chat", "阶段变更": "stage_change",
             "方案修改": "proposal_edit", "审批": "approval", "评分": "rating"},
    "rating.rater": {"自评": "self", "上级": "manager", "经理": "manager", "同事": "peer"},
    "lang": {"中文": "zh", "英文": "en"},
}
_FIELDS = set(EventIn.model_fields) | {f"rating.{k}" for k in RatingIn.model_fields}


def _csv_columns(header: list[str], path: str) -> dict[str, str]:
    """Header name -> field path (``rating.level``, ``attrs.<key>``); an unknown or doubled one
    is an :class:`InputError` on line 1."""
    out: dict[str, str] = {}
    by_target: dict[str, str] = {}
    for name in header:
        key = name.strip()
        low = key.casefold()
        target = key if key in _FIELDS else low if low in _FIELDS else CSV_COLUMNS.get(key) or CSV_COLUMNS.get(low)
        if target is None and low.startswith("attrs."):
            target = "attrs." + key[6:]
        if target is None:
            raise InputError(path, 1, name, "unknown column: name it after a field of the event schema "
                             "(seeds/schema/event.schema.json) or prefix it with attrs. to keep it")
        if target in by_target:
            raise InputError(path, 1, name, f"columns {by_target[target]!r} and {name!r} both give {target!r}; "
                             "keep one of them")
        by_target[target] = name
        out[name] = target
    return out


def _csv_record(row: dict[str, str], columns: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for name, value in row.items():
        v = value.strip()
        if not v:
            continue
        target = columns[name]
        v = CSV_VALUES.get(target, {}).get(v, v)
        if target == "attrs":
            try:
                rec["attrs"] = {**json.loads(v), **rec.get("attrs", {})}
            except (json.JSONDecodeError, TypeError):
                rec["attrs"] = v  # reported by validation as not an object
        elif "." in target:
            head, sub = target.split(".", 1)
            if head == "rating" and sub == "level" and v[:1] in ("L", "l"):
                v = v[1:]
            part = rec.setdefault(head, {})
            if isinstance(part, dict):
                part[sub] = v
        else:
            rec[target] = v
    return rec


def read_raw(path: Path, progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """(line, record or the error that spoilt it) for each record of a JSON-lines or CSV file."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        yield from _read_jsonl(path, progress)
        return
    columns: dict[str, str] | None = None
    for rec in read_rows(path, progress=progress):
        if rec.error is not None:
            yield rec.line, rec.error
            continue
        if columns is None:
            columns = _csv_columns(list(rec.row), str(path))
        yield rec.line, _csv_record(rec.row, columns)


def _read_jsonl(path: Path, progress: Callable[[int], None] | None) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    if not path.is_file():
        raise InputError(str(path), None, None, "file not found")
    done, first = 0, True
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            done += len(raw)
            if progress is not None:
                progress(done)
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            if first and raw.lstrip().startswith(b"["):
                raise InputError(str(path), n, None, "is a JSON array: write one event object per line (JSON lines)")
            first = False
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield n, InputError(str(path), n, None, f"is not UTF-8 text ({e.reason} at byte {e.start})")
                continue
            except json.JSONDecodeError as e:
                yield n, InputError(str(path), n, None, f"is not JSON: {e.msg} at column {e.colno}")
                continue
            yield n, obj if isinstance(obj, dict) else InputError(
                str(path), n, None, f"expected a JSON object, got {type(obj).__name__}")


def _value_at(raw: Any, loc: tuple[Any, ...]) -> Any:
    for k in loc:
        raw = raw.get(k) if isinstance(raw, dict) else None
    return raw


def validate_event(raw: dict[str, Any], path: str, line: int, context: dict[str, Any]) -> EventIn | InputError:
    """Parse one record; on failure an :class:`InputError` naming its first bad field."""
    try:
        return EventIn.model_validate(raw, context=context)
    except ValidationError as e:
        errs = e.errors()
        first = errs[0]
        bad = ".".join(str(x) for x in first["loc"]) or None
        if first["type"] == "extra_forbidden":
            reason = "unknown field; put source-specific fields under attrs"
        else:
            msg = str(first["msg"]).removeprefix("Value error, ")
            reason = f"{msg} (value {_value_at(raw, first['loc'])!r})"
        others = sorted({".".join(str(x) for x in err["loc"]) for err in errs[1:]} - {bad or ""})
        if others:
            reason += f"; also bad: {', '.join(others)}"
        return InputError(path, line, bad, reason)


def load_identity_map(path: str | Path) -> dict[str, str]:
    """Identities (e-mail, WeCom / DingTalk user id…) to rep ids, from a JSON object or a CSV
    with columns ``identity,rep``. Keys are compared case-insensitively."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8-sig"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(str(p), None, None, f"cannot read the identity map: {e}") from e
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise InputError(str(p), None, None, "the identity map must be a JSON object of identity -> rep id")
        return {str(k).casefold(): v for k, v in doc.items()}
    return {r.row["identity"].strip().casefold(): r.row["rep"].strip()
            for r in read_rows(p, required=("identity", "rep")) if r.error is None}


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


@dataclass(frozen=True)
class _Accepted:
    line: int
    rec: EventIn
    event: Event
    props: dict[str, Any]  # extra node properties: tz_assumed, lang, stages, rating, content_sha…


def _digest(obj: Any, h: Any, depth: int = 0) -> None:
    """Feed ``obj``'s learned state to ``h`` in an order that does not depend on the process
    (pickle's does: set order and object ids vary), so a retrained coder changes the fingerprint."""
    if depth > 8:
        return
    if isinstance(obj, np.ndarray):
        h.update(repr(obj.tolist()).encode() if obj.dtype == object else obj.tobytes())
    elif obj is None or isinstance(obj, (str, int, float, bool, np.generic)):
        h.update(repr(obj).encode())
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _digest(x, h, depth + 1)
    elif isinstance(obj, (set, frozenset)):
        for x in sorted(obj, key=repr):
            _digest(x, h, depth + 1)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _digest(obj[k], h, depth + 1)
    elif hasattr(obj, "__dict__") and not callable(obj):  # public state only: private attributes are caches
        h.update(type(obj).__name__.encode())
        _digest({k: v for k, v in vars(obj).items() if not k.startswith("_")}, h, depth + 1)
    else:
        h.update(type(obj).__name__.encode())


@dataclass
class EventCoding:
    """What coding an event needs: the codebook, skill names, the optional text coder."""

    codebook: Codebook
    skill_names: dict[str, tuple[str, str]]
    coder: TextCoder | None = None
    rules: RuleCoder = field(init=False)
    skill_by_name: dict[str, set[str]] = field(init=False)
    fingerprint: str = field(init=False)
    """Changes when the codebook, its credibility weights or the text coder change: events
    imported again are then coded again."""

    def __post_init__(self) -> None:
        self.rules = RuleCoder(self.codebook)
        self.skill_by_name = {}
        for sid, (en, zh) in self.skill_names.items():
            for name in {sid, en, zh}:
                self.skill_by_name.setdefault(name.casefold(), set()).add(sid)
        cb = self.codebook
        parts = [cb.version, sorted(cb.sources.items()),
                 [(c.code, c.skill, c.level, c.polarity, [p.pattern for p in c.patterns],
                   [(u.pattern.pattern, u.level) for u in c.upgrades], c.event_type, c.event_stage)
                  for c in cb.codes.values()]]
        h = hashlib.sha256(json.dumps(parts, default=str).encode())
        if self.coder is not None:
            _digest(self.coder, h)
        self.fingerprint = h.hexdigest()[:16]

    def skill_id(self, name: str) -> str:
        """The skill a rating names (id, English or Chinese name); ValueError if none or several."""
        ids = self.skill_by_name.get(name.casefold(), set())
        if len(ids) != 1:
            raise ValueError(f"skill {name!r} is {'ambiguous: ' + ', '.join(sorted(ids)) if ids else 'not a known skill'}"
                             "; use the skill id")
        return next(iter(ids))

    def code(self, items: list[_Accepted]) -> list[Evidence]:
        """Evidence of a unit's events, one item per id (the most confident when coders agree)."""
        out: dict[str, Evidence] = {}
        pending: list[tuple[Event, Unit, tuple[int, int]]] = []
        for it in items:
            for x in self._code_event(it, pending):
                if x.id not in out or x.confidence > out[x.id].confidence:
                    out[x.id] = x
        if self.coder is not None and pending:
            for x in self._text_coder(pending):
                if x.id not in out or x.confidence > out[x.id].confidence:
                    out[x.id] = x
        return list(out.values())

    def _code_event(self, it: _Accepted, pending: list[tuple[Event, Unit, tuple[int, int]]]) -> list[Evidence]:
        ev, rec, cb = it.event, it.rec, self.codebook
        kw: dict[str, Any] = {"codebook": cb, "skill_names": self.skill_names}
        out: list[Evidence] = []
        if rec.rating is not None:
            return [self._rating_evidence(ev, rec.rating, it.props["rating_skill"], rec.lang)]
        for code in cb.event_codes(rec.type):
            if code.event_verbs or (code.event_stage and code.event_stage.casefold() != (rec.stage_to or "").casefold()):
                continue
            out.append(evidence_for(ev, code, level=code.level, confidence=1.0, coder="rules", text=ev.text, **kw))
        if rec.type in TEXT_TYPES and ev.text:
            text = ev.text
            for i, span in enumerate(sentence_units(text)):
                unit = text[span[0]:span[1]]
                for code in self.rules.match(unit):
                    level, why = upgraded_level(code, unit)
                    out.append(evidence_for(ev, code, level=level, confidence=RULE_CONFIDENCE, coder="rules",
                                            text=text, span=span, why=why, **kw))
                if not is_chinese(unit):
                    pending.append((ev, Unit(unit, "", ev.turn or 0, i), span))
        return out

    def _text_coder(self, pending: list[tuple[Event, Unit, tuple[int, int]]]) -> list[Evidence]:
        assert self.coder is not None
        out = []
        proba = self.coder.predict_proba([p[1] for p in pending])
        for (ev, unit, span), row in zip(pending, proba, strict=True):
            best = int(row.argmax())
            label = self.coder.classes_[best]
            if label == NON_STRATEGY or label not in self.codebook.codes or row[best] < MIN_TEXT_CONFIDENCE:
                continue
            code = self.codebook.codes[label]
            level, why = upgraded_level(code, unit.text)
            out.append(evidence_for(ev, code, level=level, confidence=float(row[best]), coder="text", text=ev.text,
                                    span=span, why=why, codebook=self.codebook, skill_names=self.skill_names))
        return out

    def _rating_evidence(self, ev: Event, rating: RatingIn, skill: str, lang: str | None) -> Evidence:
        en, zh = self.skill_names.get(skill, (skill, skill))
        cred = self.codebook.credibility(ev.source)
        coder = f"rating:{rating.rater}"
        quote = snippet(ev.text or "")
        if lang == "zh" or is_chinese(quote):
            reason = f"{_RATER_ZH[rating.rater]} → {zh} L{rating.level}" + (f"：“{quote}”" if quote else "")
            reason += f"（{coder}，可信度 {cred:.2f}）"
        else:
            reason = f"{rating.rater} rating → {en} L{rating.level}" + (f': "{quote}"' if quote else "")
            reason += f" ({coder}, credibility {cred:.2f})"
        return Evidence(id=f"ev:{ev.id}:rating", event_id=ev.id, rep_id=ev.rep_id, skill_id=skill, code="rating",
                        level=rating.level, confidence=1.0, credibility=cred, coder=coder,
                        codebook_version=self.codebook.version, reason=reason, at=ev.at)


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
        events = [it.event for it in fresh]
        evidence = self.coding.code(fresh)
        change.add_rows(schema.EVENT, [{**it.event.to_row(), **it.props} for it in fresh])
        change.add_nodes(evidence)
        add_event_edges(change, events, evidence)
        self._count("n_evidence", len(evidence))
        return change

    def _count(self, key: str, n: int) -> None:
        self.report.stats[key] = self.report.stats.get(key, 0) + n


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
    batch: list[_Accepted] = []
    for key in ("unchanged", "replaced", "new_reps", "new_deals", "n_evidence"):
        report.stats.setdefault(key, 0)
    try:
        for line, raw in read_raw(p, progress):
            rec = raw if isinstance(raw, InputError) else validate_event(raw, str(p), line, context)
            if isinstance(rec, InputError):
                report.reject(rec)
                continue
            canonical = rec.canonical()
            digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]
            key = f"{rec.source}\x1f{rec.id}"
            first = seen.get(key)
            if first is not None:
                if first[1] == digest:
                    report.duplicates += 1
                else:
                    report.reject(InputError(str(p), line, "id", f"id {rec.id!r} (source {rec.source}) is also on line "
                                             f"{first[0]} with other content; lines {first[0]} and {line} disagree"))
                continue
            try:
                acc = _accept(line, rec, coding, identity, digest)
            except ValueError as e:
                report.reject(InputError(str(p), line, "rating.skill", str(e)))
                continue
            seen.add(key, line, digest)
            report.accepted += 1
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
