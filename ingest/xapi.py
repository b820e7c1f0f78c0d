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

import hashlib
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from graph import schema
from graph.errors import InputError
from graph.model import Event, Evidence, Rep
from graph.store import ChangeSet, GraphStore, Row
from ingest.codebook import Codebook
from ingest.coders import evidence_for
from ingest.report import IngestReport
from ingest.units import event_units

log = logging.getLogger(__name__)

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
STATEMENT_EVENT = "xapi"
VOID_EVENT = "xapi-void"
_NS = uuid.UUID("6f1c2d0e-8a7b-4c1d-9e2f-3a4b5c6d7e8f")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_SHA1 = re.compile(r"^[0-9a-f]{40}$", re.I)
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_VERSION = re.compile(r"^[12]\.0(\.\d+)?$")
_LRS_ASSIGNED = frozenset({"id", "authority", "stored", "version", "timestamp", "attachments"})
IFI_KINDS = ("mbox", "mbox_sha1sum", "openid", "account")


# ---------------------------------------------------------------- identifiers

def normal_mbox(value: str) -> str:
    """``mailto:`` + the local part as written + ``@`` + the domain in lower case."""
    scheme, sep, address = value.partition(":")
    local, at, domain = address.rpartition("@")
    if not (sep and at and local and domain) or scheme.lower() != "mailto" or re.search(r"\s", address):
        raise ValueError(f"must be 'mailto:' followed by an e-mail address, got {value!r}")
    return f"mailto:{local}@{domain.lower()}"


def is_irl(value: str) -> bool:
    """Whether ``value`` is an absolute, locatable IRL (scheme and host)."""
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not re.search(r"\s", value)


def identity_key(entry: str) -> str:
    """The normal form of an identity-map key: ``mailto:…``, ``mbox_sha1sum:<hex>``,
    ``openid:<uri>`` or ``account:<homePage>|<name>``; ``ValueError`` says what is wrong."""
    kind, _, rest = entry.partition(":")
    kind = kind.lower()
    if kind == "mailto":
        return normal_mbox(entry)
    if kind == "mbox_sha1sum" and _SHA1.match(rest):
        return "mbox_sha1sum:" + rest.lower()
    if kind == "openid" and _IRI.match(rest):
        return "openid:" + rest
    home, bar, name = rest.partition("|")
    if kind == "account" and bar and is_irl(home) and name.strip():
        return f"account:{home}|{name}"
    raise ValueError("expected mailto:<address>, mbox_sha1sum:<40 hex digits>, openid:<URI> "
                     "or account:<homePage IRL>|<name>")


def learner_id(key: str) -> str:
    """The rep id of an unmapped actor (``mailto:`` and ``mbox_sha1sum:`` of one address agree)."""
    digest = key.split(":", 1)[1] if key.startswith("mbox_sha1sum:") else hashlib.sha1(key.encode()).hexdigest()
    return "xapi:" + digest[:12]


# ---------------------------------------------------------------- records

def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 date-time with a zone, in UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"is not an ISO 8601 date-time: {value!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add 'Z' or an offset such as +08:00")
    return dt.astimezone(UTC)


class _Account(BaseModel):
    model_config = ConfigDict(extra="allow")
    homePage: str
    name: str

    @field_validator("homePage")
    @classmethod
    def _home_page(cls, v: str) -> str:
        if not is_irl(v):
            raise ValueError(f"must be an absolute IRL such as https://lms.example.com, got {v!r}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty account name")
        return v


class Actor(BaseModel):
    """An Agent or identified Group, with exactly one inverse functional identifier."""

    model_config = ConfigDict(extra="allow")
    objectType: Literal["Agent", "Group"] | None = None
    name: str | None = None
    mbox: str | None = None
    mbox_sha1sum: str | None = None
    openid: str | None = None
    account: _Account | None = None

    @field_validator("mbox")
    @classmethod
    def _mbox(cls, v: str | None) -> str | None:
        return None if v is None else normal_mbox(v)

    @field_validator("mbox_sha1sum")
    @classmethod
    def _sha1(cls, v: str | None) -> str | None:
        if v is not None and not _SHA1.match(v):
            raise ValueError("must be 40 hexadecimal digits (the SHA1 of a mailto IRI)")
        return None if v is None else v.lower()

    @field_validator("openid")
    @classmethod
    def _openid(cls, v: str | None) -> str | None:
        if v is not None and not _IRI.match(v):
            raise ValueError(f"must be an absolute URI, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_ifi(self) -> Actor:
        has = [k for k in IFI_KINDS if getattr(self, k) is not None]
        if not has and self.objectType == "Group":
            raise ValueError("an anonymous Group has no identifier, so its statement cannot be attributed to one person")
        if len(has) != 1:
            raise ValueError("an actor needs exactly one identifier (mbox, mbox_sha1sum, openid or account); "
                             f"has {', '.join(has) or 'none'}")
        return self

    def key(self) -> str:
        if self.mbox:
            return self.mbox
        if self.mbox_sha1sum:
            return "mbox_sha1sum:" + self.mbox_sha1sum
        if self.openid:
            return "openid:" + self.openid
        assert self.account is not None
        return f"account:{self.account.homePage}|{self.account.name}"


def _check_iri(v: str) -> str:
    if not _IRI.match(v):
        raise ValueError(f"must be an absolute IRI, got {v!r}")
    return v


class _Verb(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    display: dict[str, str] = {}

    @field_validator("id")
    @classmethod
    def _iri(cls, v: str) -> str:
        return _check_iri(v)


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow")
    objectType: Literal["Activity", "Agent", "Group", "SubStatement", "StatementRef"] | None = None
    id: str | None = None
    definition: dict[str, Any] = {}


class Statement(BaseModel):
    """The fields capmap reads; every other 1.0.3 or 2.0 field is kept for comparison."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    actor: Actor
    verb: _Verb
    object: _Object
    timestamp: datetime | None = None
    version: str | None = None
    result: dict[str, Any] | None = None
    context: dict[str, Any] | None = None

    @field_validator("id")
    @classmethod
    def _uuid(cls, v: str | None) -> str | None:
        if v is not None and not _UUID.match(v):
            raise ValueError(f"must be a UUID in standard form, got {v!r}")
        return None if v is None else v.lower()

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> datetime | None:
        return None if v is None else parse_timestamp(v)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not _VERSION.match(v):
            raise ValueError(f"must be an xAPI 1.0.x or 2.0.x version, got {v!r}")
        return v


def _object_problem(st: Statement) -> tuple[str, str] | None:
    """(field, reason) when the object breaks a rule pydantic cannot see."""
    o = st.object
    kind = o.objectType or "Activity"
    if st.verb.id == VOIDED and kind != "StatementRef":
        return "object.objectType", "a voiding statement's object must be a StatementRef"
    if kind == "Activity" and not o.id:
        return "object.id", "an Activity needs an id"
    if kind == "Activity" and o.id and not _IRI.match(o.id):
        return "object.id", f"must be an absolute IRI, got {o.id!r}"
    if kind == "StatementRef" and not (o.id and _UUID.match(o.id)):
        return "object.id", f"a StatementRef needs a statement UUID, got {o.id!r}"
    return None


# ---------------------------------------------------------------- comparison (D 2.3.1)

def _instant(value: Any) -> Any:
    try:
        return _utc(parse_timestamp(value))[:23] + "Z"
    except ValueError:
        return value


def _canon_agent(a: Any) -> Any:
    if not isinstance(a, dict):
        return a
    out = dict(a)
    out.setdefault("objectType", "Agent")
    if isinstance(out.get("mbox"), str):
        try:
            out["mbox"] = normal_mbox(out["mbox"])
        except ValueError:
            pass
    if isinstance(out.get("mbox_sha1sum"), str):
        out["mbox_sha1sum"] = out["mbox_sha1sum"].lower()
    if isinstance(out.get("member"), list):
        members = [_canon_agent(m) for m in out["member"]]
        out["member"] = sorted(members, key=lambda m: json.dumps(m, sort_keys=True))
    return out


def _canon_object(o: Any) -> Any:
    if not isinstance(o, dict):
        return o
    kind = o.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        return _canon_agent(o)
    if kind == "SubStatement":
        return _canon_statement(o)
    out = {k: v for k, v in o.items() if k != "definition"}
    out["objectType"] = kind
    if kind == "StatementRef" and isinstance(o.get("id"), str):
        out["id"] = o["id"].lower()
    return out


def _canon_context(c: Any) -> Any:
    if not isinstance(c, dict):
        return c
    out = dict(c)
    if isinstance(out.get("registration"), str):
        out["registration"] = out["registration"].lower()
    for k in ("instructor", "team"):
        if k in out:
            out[k] = _canon_agent(out[k])
    if "statement" in out:
        out["statement"] = _canon_object(out["statement"])
    acts = out.get("contextActivities")
    if isinstance(acts, dict):
        out["contextActivities"] = {k: [_canon_object(a) for a in (v if isinstance(v, list) else [v])]
                                    for k, v in acts.items()}
    for k, inner in (("contextAgents", "agent"), ("contextGroups", "group")):
        if isinstance(out.get(k), list):
            out[k] = [{**x, inner: _canon_agent(x.get(inner))} if isinstance(x, dict) else x for x in out[k]]
    return out


def _canon_statement(st: dict[str, Any]) -> dict[str, Any]:
    out = dict(st)
    out["actor"] = _canon_agent(out.get("actor"))
    if isinstance(out.get("verb"), dict):
        out["verb"] = {k: v for k, v in out["verb"].items() if k != "display"}
    out["object"] = _canon_object(out.get("object"))
    if "context" in out:
        out["context"] = _canon_context(out["context"])
    if "timestamp" in out:  # a SubStatement's own timestamp: compared as an instant
        out["timestamp"] = _instant(out["timestamp"])
    return out


def statement_hash(raw: Mapping[str, Any]) -> str:
    """SHA-256 of the statement as compared (see the module notes)."""
    canon = _canon_statement({k: v for k, v in raw.items() if k not in _LRS_ASSIGNED})
    text = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _utc(dt: datetime | None) -> str:
    assert dt is not None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _same(digest_a: str, at_a: str | None, digest_b: str, at_b: str | None) -> bool:
    """Equal statements: same hash, and the same millisecond when both carry a timestamp."""
    return digest_a == digest_b and (at_a is None or at_b is None or at_a[:23] == at_b[:23])


# ---------------------------------------------------------------- reading

def read_statements(path: Path) -> tuple[list[tuple[int, Any]], list[InputError]]:
    """(index, statement) pairs from a JSON array, a JSON object keyed by name, one statement or
    JSON lines; and the file's unreadable parts as errors."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        doc = json.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        return [], [InputError(str(path), None, None, f"cannot read the file: {e}")]
    except json.JSONDecodeError as e:
        return _json_lines(path, text, e)
    if isinstance(doc, list):
        return list(enumerate(doc)), []
    if isinstance(doc, dict):
        return ([(0, doc)] if "actor" in doc else list(enumerate(doc.values()))), []
    return [], [InputError(str(path), None, None, "expected a statement, a list or object of statements, or JSON lines")]


def _json_lines(path: Path, text: str, whole: json.JSONDecodeError) -> tuple[list[tuple[int, Any]], list[InputError]]:
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    out: list[tuple[int, Any]] = []
    bad: list[InputError] = []
    for n, (i, line) in enumerate(lines):
        try:
            out.append((i, json.loads(line)))
        except json.JSONDecodeError as e:
            if n == 0:  # not JSON lines either: one error, where the document breaks
                return [], [InputError(str(path), whole.lineno, None, f"not JSON: {whole.msg} (column {whole.colno})")]
            bad.append(InputError(str(path), i, None, f"not JSON: {e.msg}"))
    return out, bad


@dataclass(frozen=True)
class _Record:
    """One valid statement, as capmap keeps it."""

    file: str
    index: int
    sid: str
    digest: str
    at: str | None
    key: str
    name: str
    verb: str
    object_id: str | None
    voids: str | None
    text: str
    attrs_json: str
    content: str  # the statement as sent, for a deterministic pick among equal resends


def _pick(language_map: Any) -> str | None:
    """The English text of a language map, else its first language's."""
    if not isinstance(language_map, dict) or not language_map:
        return None
    text = language_map.get("en-US") or language_map.get("en") or language_map[min(language_map)]
    return text if isinstance(text, str) else None


def _record(file: str, index: int, raw: Any) -> _Record | InputError:
    if not isinstance(raw, dict):
        return InputError(file, index, None, "a statement must be a JSON object")
    try:
        st = Statement.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or None
        return InputError(file, index, where, str(err["msg"]).removeprefix("Value error, "))
    problem = _object_problem(st)
    if problem:
        return InputError(file, index, *problem)
    digest = statement_hash(raw)
    at = _utc(st.timestamp) if st.timestamp else None
    sid = st.id or str(uuid.uuid5(_NS, f"{digest}|{(at or '')[:23]}"))
    voids = st.object.id.lower() if st.verb.id == VOIDED and st.object.id else None
    verb = _pick(st.verb.display) or st.verb.id.rstrip("/").rsplit("/", 1)[-1]
    obj = _pick(st.object.definition.get("name")) or st.object.id or (st.object.model_extra or {}).get("name") or ""
    return _Record(
        file=file, index=index, sid=sid, digest=digest, at=at, key=st.actor.key(), name=st.actor.name or "",
        verb=st.verb.id, object_id=st.object.id, voids=voids,
        text=f"voided statement {voids}" if voids else f"{verb} {obj}".strip(),
        attrs_json=json.dumps({"verb": st.verb.id, "object": st.object.id, "result": st.result}, sort_keys=True, default=str),
        content=json.dumps(raw, sort_keys=True, default=str),
    )


# ---------------------------------------------------------------- identity map

def read_identity_map(path: Path) -> dict[str, str]:
    """The identity map in a JSON file: an object of identifier → rep id."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(str(path), None, None, f"cannot read the identity map: {e}") from e
    if not isinstance(doc, dict):
        raise InputError(str(path), None, None, 'expected a JSON object {"<identifier>": "<rep id>", …}')
    return doc


@dataclass
class _Identity:
    reps: dict[str, str] = field(default_factory=dict)  # identity key → rep id
    broken: dict[str, str] = field(default_factory=dict)  # identity key → why its statements are rejected

    def resolve(self, key: str) -> tuple[str | None, str | None]:
        """(rep id, None), or (None, reason) when the key's map entry is broken."""
        keys = [key] + (["mbox_sha1sum:" + hashlib.sha1(key.encode()).hexdigest()] if key.startswith("mailto:") else [])
        for k in keys:
            if k in self.broken:
                return None, self.broken[k]
            if k in self.reps:
                return self.reps[k], None
        return learner_id(key), None


def _identity(entries: Mapping[str, Any], source: str, store: GraphStore | None, report: IngestReport) -> _Identity:
    parsed: list[tuple[str, str, str]] = []  # (entry as written, identity key, rep id)
    for entry, rep_id in sorted(entries.items()):
        try:
            key = identity_key(str(entry))
        except ValueError as e:
            report.reject(InputError(source, None, str(entry), f"not an actor identifier: {e}"))
            continue
        if not isinstance(rep_id, str) or not rep_id.strip():
            report.reject(InputError(source, None, str(entry), "the rep id must be a non-empty string"))
            continue
        parsed.append((str(entry), key, rep_id))
    known = set(store.get_nodes(schema.REP, sorted({r for _, _, r in parsed}))) if store is not None else None
    ident = _Identity()
    for entry, key, rep_id in parsed:
        keys = [key] + (["mbox_sha1sum:" + hashlib.sha1(key.encode()).hexdigest()] if key.startswith("mailto:") else [])
        if known is None or rep_id in known:
            ident.reps[keys[0]] = rep_id
            if len(keys) > 1:  # an actor may send the hash of this address instead
                ident.reps.setdefault(keys[1], rep_id)
            continue
        report.reject(InputError(source, None, entry, f"maps to rep {rep_id!r}, which is not in the store"))
        for k in keys:
            ident.broken[k] = f"identity map entry {entry!r} maps this actor to rep {rep_id!r}, which is not in the store"
    return ident


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
    records: list[_Record] = []
    plan = _Plan()
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
    stored = _stored_events(store, sorted({r.sid for r in records}))
    _plan(records, stored, plan, report)
    return _units(plan, codebook, skill_names, ident, store), report


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
    change.delete_edges.append((schema.EVIDENCES, schema.EVENT, ids))
    if gone:
        change.delete_nodes.append((schema.EVIDENCE, gone))
    change.add_rows(schema.EVENT, [{**row, "voided": True, "voided_by": min(voiders[sid])} for sid, row in fix])
    return change
