"""The BEC codebook: behaviour codes mapped to skills and level signals, bilingual.

The codebook is a versioned JSON file in ``seeds/codebook``. It is validated once, here, with
pydantic, and turned into frozen dataclasses the coders trust.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from graph.errors import CodebookError


class _Upgrade(BaseModel):
    pattern: str
    level: int = Field(ge=0, le=4)
    why_en: str
    why_zh: str


class _ValueUpgrade(BaseModel):
    """A won deal closed at ``price_ratio`` × the product's list price or more is worth ``level``:
    a property of the deal itself, so the same deal codes the same whatever else is imported."""

    price_ratio: float = Field(gt=0)
    level: int = Field(ge=0, le=4)
    why_en: str
    why_zh: str


class _EventMatch(BaseModel):
    type: str
    to_stage: str | None = None
    verbs: list[str] = []


class _Code(BaseModel):
    code: str = Field(min_length=1)
    skill: str = Field(min_length=1)
    level: int = Field(ge=0, le=4)
    polarity: int = Field(default=1)
    label_en: str
    label_zh: str
    indicators_en: list[str] = []
    indicators_zh: list[str] = []
    patterns: list[str] = []
    upgrades: list[_Upgrade] = []
    outcome_level: dict[str, int] = {}
    rule_coded: bool = False
    event: _EventMatch | None = None
    value_upgrade: _ValueUpgrade | None = None

    @field_validator("polarity")
    @classmethod
    def _polarity(cls, v: int) -> int:
        if v not in (-1, 1):
            raise ValueError("polarity must be 1 or -1")
        return v


class _Codebook(BaseModel):
    version: str
    description: str = ""
    sources: dict[str, float]
    codes: list[_Code]
    text_coder_classes: list[str]


@dataclass(frozen=True)
class Upgrade:
    pattern: re.Pattern[str]
    level: int
    why_en: str
    why_zh: str


@dataclass(frozen=True)
class Code:
    code: str
    skill: str
    level: int
    polarity: int
    label_en: str
    label_zh: str
    indicators_en: tuple[str, ...]
    indicators_zh: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    upgrades: tuple[Upgrade, ...]
    outcome_level: dict[str, int]
    rule_coded: bool
    event_type: str | None
    event_stage: str | None
    event_verbs: tuple[str, ...]
    value_upgrade: dict[str, Any] | None


@dataclass(frozen=True)
class Codebook:
    version: str
    sources: dict[str, float]
    codes: dict[str, Code]
    text_coder_classes: tuple[str, ...]
    path: str

    def credibility(self, source: str) -> float:
        """The configured credibility weight of ``source`` (0.5 for a source not listed)."""
        return self.sources.get(source, 0.5)

    def skills(self) -> set[str]:
        return {c.skill for c in self.codes.values()}

    def rule_codes(self) -> list[Code]:
        return [c for c in self.codes.values() if c.rule_coded or (c.patterns and not c.event_type)]

    def event_codes(self, event_type: str) -> list[Code]:
        by_type = self.__dict__.get("_event_codes")
        if by_type is None:  # built once: importers ask for every event
            by_type = {}
            for c in self.codes.values():
                by_type.setdefault(c.event_type, []).append(c)
            object.__setattr__(self, "_event_codes", by_type)
        return list(by_type.get(event_type, ()))


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise CodebookError(f"{where}: pattern {pattern!r} is not a valid regular expression: {e}") from e


def load_codebook(path: str | Path, known_skills: set[str] | None = None) -> Codebook:
    """Read and validate a codebook file.

    Raises
    ------
    CodebookError
        When the file is not valid JSON, a field is missing or out of range, a code is listed
        twice, a pattern does not compile, or a code names a skill not in ``known_skills``.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
        cb = _Codebook.model_validate(raw)
    except (OSError, json.JSONDecodeError) as e:
        raise CodebookError(f"cannot read codebook {p}: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise CodebookError(f"codebook {p}: field {loc}: {first['msg']}") from e
    codes: dict[str, Code] = {}
    for c in cb.codes:
        where = f"codebook {p} code {c.code!r}"
        if c.code in codes:
            raise CodebookError(f"{where}: listed twice")
        if known_skills is not None and c.skill not in known_skills:
            raise CodebookError(f"{where}: skill {c.skill!r} is not a known skill")
        codes[c.code] = Code(
            code=c.code,
            skill=c.skill,
            level=c.level,
            polarity=c.polarity,
            label_en=c.label_en,
            label_zh=c.label_zh,
            indicators_en=tuple(c.indicators_en),
            indicators_zh=tuple(c.indicators_zh),
            patterns=tuple(_compile(x, where) for x in c.patterns),
            upgrades=tuple(Upgrade(_compile(u.pattern, where), u.level, u.why_en, u.why_zh) for u in c.upgrades),
            outcome_level=dict(c.outcome_level),
            rule_coded=c.rule_coded,
            event_type=c.event.type if c.event else None,
            event_stage=c.event.to_stage if c.event else None,
            event_verbs=tuple(c.event.verbs) if c.event else (),
            value_upgrade=c.value_upgrade.model_dump() if c.value_upgrade else None,
        )
    for cls in cb.text_coder_classes:
        if cls != "non-strategy" and cls not in codes:
            raise CodebookError(f"codebook {p}: text coder class {cls!r} is not a code")
    return Codebook(cb.version, dict(cb.sources), codes, tuple(cb.text_coder_classes), str(p))
