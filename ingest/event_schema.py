"""The native event schema: the pydantic models of one event record, the CSV column mapping
(field names, a few Chinese header names and values), reading JSON-lines and CSV files into raw
records, and validating them. The loader is :mod:`ingest.events`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from graph.errors import ConfigError, InputError
from ingest import jsonio
from ingest.csvio import not_a_file, read_rows
from ingest.timeutil import DEFAULT_TZ, Instant, not_in_future, to_utc, zone

EventType = Literal["call", "email", "chat", "stage_change", "proposal_edit", "approval", "nps", "rating"]
Rater = Literal["self", "manager", "peer"]
DEFAULT_SOURCE = {"call": "call", "email": "email", "chat": "chat", "stage_change": "crm", "proposal_edit": "proposal",
                  "approval": "approval", "nps": "nps"}


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
        at = to_utc(v, info.data.get("tz") or (info.context or {}).get("default_tz", DEFAULT_TZ))
        not_in_future(datetime.fromisoformat(at.utc))
        return at

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
        raise not_a_file(path)
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
                obj = jsonio.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield n, InputError(str(path), n, None, f"is not UTF-8 text ({e.reason} at byte {e.start})")
                continue
            except json.JSONDecodeError as e:
                yield n, InputError(str(path), n, None, f"is not JSON: {e.msg} at column {e.colno}")
                continue
            twice = jsonio.twice_error(obj, str(path), n)
            if twice is not None:
                yield n, twice
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

