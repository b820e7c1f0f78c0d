"""From files to xAPI records: statement files, one valid statement as a record, and the
identity map that attributes actors to reps (the rules are in :mod:`ingest.xapi`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from graph import schema
from graph.errors import InputError
from graph.store import GraphStore
from ingest import jsonio
from ingest.report import IngestReport
from ingest.xapi_statements import VOIDED, Statement, _object_problem, _utc, identity_key, learner_id, statement_hash

_NS = uuid.UUID("6f1c2d0e-8a7b-4c1d-9e2f-3a4b5c6d7e8f")


# ---------------------------------------------------------------- reading

def read_statements(path: Path) -> tuple[list[tuple[int, Any]], list[InputError]]:
    """(index, statement) pairs from a JSON array, an LRS's result (``{"statements": [...],
    "more": ...}``), a JSON object keyed by name, one statement or JSON lines; and the file's
    unreadable parts as errors."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        doc = jsonio.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        return [], [InputError(str(path), None, None, f"cannot read the file: {e}")]
    except json.JSONDecodeError as e:
        return _json_lines(path, text, e)
    if isinstance(doc, list):
        return list(enumerate(doc)), []
    if isinstance(doc, dict) and "actor" not in doc and isinstance(doc.get("statements"), list):
        return list(enumerate(doc["statements"])), []  # an LRS's answer: {"statements": [...], "more": ...}
    if isinstance(doc, dict):
        return ([(0, doc)] if "actor" in doc else list(enumerate(doc.values()))), []
    return [], [InputError(str(path), None, None, "expected a statement, a list or object of statements, or JSON lines")]


def _json_lines(path: Path, text: str, whole: json.JSONDecodeError) -> tuple[list[tuple[int, Any]], list[InputError]]:
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    out: list[tuple[int, Any]] = []
    bad: list[InputError] = []
    for n, (i, line) in enumerate(lines):
        try:
            out.append((i, jsonio.loads(line)))
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
    twice = jsonio.twice_error(raw, file, index)
    if twice is not None:
        return twice
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
        doc = jsonio.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(str(path), None, None, f"cannot read the identity map: {e}") from e
    twice = jsonio.twice_error(doc, str(path), None, "the identity ")
    if twice is not None:
        raise twice
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

