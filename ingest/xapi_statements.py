"""xAPI statements as capmap reads them: actor identifiers, the statement models and the
statement comparison rules (xAPI 1.0.3 Data 2.3.1) behind resends and conflicts.

The rules are described in :mod:`ingest.xapi`, which loads statements with them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ingest.timeutil import not_in_future

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
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
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-12:00 is in the year 10000
        raise ValueError(f"{value!r} is outside the years 1-9999 in UTC") from None


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
        return None if v is None else not_in_future(parse_timestamp(v))

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

