"""capmap's own seeds: the sales skills (with their O*NET parents and prerequisites) and the
learning catalogue (courses, practice labs and expert sessions with hours)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from graph import schema
from graph.errors import InputError
from graph.model import LearningResource, Skill
from graph.store import ChangeSet


class _SeedSkill(BaseModel):
    id: str = Field(pattern=r"^capmap:[a-z0-9-]+$")
    name: str
    name_zh: str
    broader: str | None = None
    description: str = ""


class _SkillsFile(BaseModel):
    version: str
    skills: list[_SeedSkill]
    precedes: list[tuple[str, str]] = []


class _Teach(BaseModel):
    skill: str
    to_level: int = Field(ge=1, le=4)
    hours: float = Field(gt=0, le=200)


class _Resource(BaseModel):
    id: str = Field(pattern=r"^lr:")
    title: str
    title_zh: str | None = None
    kind: str = Field(pattern=r"^(course|practice|expert_session)$")
    provider: str | None = None
    url: str | None = None
    teaches: list[_Teach] = Field(min_length=1)


class _Catalogue(BaseModel):
    version: str
    resources: list[_Resource]


def _read(path: Path, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(str(path), None, None, f"cannot read: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        raise InputError(str(path), None, ".".join(str(x) for x in first["loc"]), first["msg"]) from e


def load_skills(path: str | Path) -> ChangeSet:
    data = _read(Path(path), _SkillsFile)
    assert isinstance(data, _SkillsFile)
    change = ChangeSet().add_nodes(
        [Skill(id=s.id, name=s.name, name_zh=s.name_zh, kind="sales", description=s.description) for s in data.skills]
    )
    change.add_edges(schema.BROADER, schema.SKILL, schema.SKILL,
                     [{"src": s.id, "dst": s.broader} for s in data.skills if s.broader])
    change.add_edges(schema.PRECEDES, schema.SKILL, schema.SKILL, [{"src": a, "dst": b} for a, b in data.precedes])
    return change


def load_catalogue(path: str | Path) -> ChangeSet:
    data = _read(Path(path), _Catalogue)
    assert isinstance(data, _Catalogue)
    change = ChangeSet().add_nodes(
        [LearningResource(id=r.id, title=r.title, title_zh=r.title_zh, kind=r.kind, provider=r.provider, url=r.url)
         for r in data.resources]
    )
    change.add_edges(
        schema.TEACHES, schema.LEARNING_RESOURCE, schema.SKILL,
        [{"src": r.id, "dst": t.skill, "key": str(t.to_level), "to_level": t.to_level, "hours": t.hours}
         for r in data.resources for t in r.teaches],
    )
    return change
