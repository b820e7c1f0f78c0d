"""Pydantic models for every input record that crosses capmap's boundary.

``validate(model, record, path)`` returns the parsed record or an :class:`InputError` naming
the file, line and field, so a loader can report the record and keep going.

The PersuasionForGood rows, tens of thousands per import, are frozen pydantic dataclasses
rather than models: they validate the same way (same rules, same errors) and faster, as no
model instance is built.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from graph.errors import InputError
from ingest.csvio import Record
from ingest.timeutil import not_in_future

M = TypeVar("M")

# inf and nan are refused in every number: "1e400" is a typo, not a deal value
_ROW_CONFIG = ConfigDict(str_strip_whitespace=True, extra="ignore", allow_inf_nan=False)


class _Row(BaseModel):
    model_config = ConfigDict(**_ROW_CONFIG, frozen=True)


def _blank_to_none(v: object) -> object:
    return None if isinstance(v, str) and v.strip() in ("", "n/a", "NA") else v


@pydantic_dataclass(frozen=True, kw_only=True, config=_ROW_CONFIG)
class P4GInfoRow:
    B2: str = Field(min_length=1, description="dialogue id")
    B3: str = Field(min_length=1, description="participant id")
    B4: int = Field(ge=0, le=1, description="role: 0 persuader, 1 persuadee")
    B6: float | None = Field(default=None, ge=0, description="actual donation (USD)")

    _b6 = field_validator("B6", mode="before")(_blank_to_none)


@pydantic_dataclass(frozen=True, kw_only=True, config=_ROW_CONFIG)
class P4GDialogRow:
    B2: str = Field(min_length=1)
    B4: int = Field(ge=0, le=1)
    Turn: int = Field(ge=0)
    Unit: str


@pydantic_dataclass(frozen=True, kw_only=True, config=_ROW_CONFIG)
class P4GAnnotatedRow(P4GDialogRow):
    er_label_1: str = ""


_P4G_ID = re.compile(r"^(\d{8})-(\d{6})_")


def p4g_started_at(dialogue_id: str) -> str | None:
    """The start time encoded in a PersuasionForGood dialogue id, as ISO-8601 UTC.

    >>> p4g_started_at("20180904-045349_715_live")
    '2018-09-04T04:53:49Z'
    """
    m = _P4G_ID.match(dialogue_id)
    if not m:
        return None
    dt = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class CrmTeamRow(_Row):
    sales_agent: str = Field(min_length=1)
    manager: str = Field(min_length=1)
    regional_office: str = Field(min_length=1)


class CrmAccountRow(_Row):
    account: str = Field(min_length=1)
    sector: str = Field(min_length=1)
    year_established: int | None = Field(default=None, ge=1600, le=2100)
    revenue: float | None = Field(default=None, ge=0)
    employees: int | None = Field(default=None, ge=0)
    office_location: str | None = None
    subsidiary_of: str | None = None

    _blank = field_validator(
        "year_established", "revenue", "employees", "office_location", "subsidiary_of", mode="before"
    )(_blank_to_none)


class CrmProductRow(_Row):
    product: str = Field(min_length=1)
    series: str = Field(min_length=1)
    sales_price: float = Field(ge=0)


class CrmPipelineRow(_Row):
    opportunity_id: str = Field(min_length=1)
    sales_agent: str = Field(min_length=1)
    product: str = Field(min_length=1)
    account: str | None = None
    deal_stage: Literal["Prospecting", "Engaging", "Won", "Lost"]
    engage_date: date | None = None
    close_date: date | None = None
    close_value: float | None = Field(default=None, ge=0)

    _blank = field_validator("account", "engage_date", "close_date", "close_value", mode="before")(
        _blank_to_none
    )

    @field_validator("engage_date", "close_date")
    @classmethod
    def _not_in_future(cls, v: date | None) -> date | None:
        if v is not None:
            not_in_future(datetime(v.year, v.month, v.day, tzinfo=UTC))
        return v

    @field_validator("deal_stage", mode="before")
    @classmethod
    def _strip_stage(cls, v: object) -> object:
        return v.strip() if isinstance(v, str) else v

    @field_validator("close_date")
    @classmethod
    def _after_engage(cls, v: date | None, info: object) -> date | None:
        data = getattr(info, "data", {})
        eng = data.get("engage_date") if isinstance(data, dict) else None
        if v is not None and eng is not None and v < eng:
            raise ValueError(f"close_date {v} is before engage_date {eng}")
        return v


_VALIDATORS: dict[type[Any], Any] = {}  # built once per record type


def validate(model: type[M], rec: Record, path: str) -> M | InputError:
    """Parse ``rec`` with ``model`` (a model or a pydantic dataclass); on failure an
    :class:`InputError` for its first bad field."""
    if rec.error is not None:
        return rec.error
    validator = _VALIDATORS.get(model)
    if validator is None:  # the type adapter's core validator, called without the adapter's checks
        validator = _VALIDATORS[model] = TypeAdapter(model).validator  # of its defaults, per record
    try:
        return validator.validate_python(rec.row)  # type: ignore[no-any-return]
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        value = rec.row.get(field or "", None)
        return InputError(path, rec.line, field, f"{first['msg']} (value {value!r})")
