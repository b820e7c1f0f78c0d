"""O*NET 29.0: skills, knowledge and work styles as Skills; sales occupations as role profiles.

Mapping of O*NET ratings to capmap's required level (documented in the README):

- an element is *required* by an occupation when its importance ``IM`` is at least 3.0 on the
  1–5 scale (O*NET's own "important" threshold); its weight is ``(IM - 1) / 4``;
- the required level is ``round(LV × 4 / 7)`` from the 0–7 level scale ``LV`` (so LV 4 → L2,
  LV 5 → L3, LV 6 → L3, LV 7 → L4); work styles have no LV and take L2 at IM ≥ 3.0, L3 at
  IM ≥ 4.0;
- ratings flagged ``Recommend Suppress = Y`` are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pydantic import Field, model_validator

from graph import schema
from graph.errors import InputError
from graph.model import Role, Skill
from graph.store import ChangeSet
from ingest.csvio import read_rows
from ingest.records import _Row, validate
from ingest.report import IngestReport

SALES_PREFIX = "41-"
FILES = {"Skills.txt": "skill", "Knowledge.txt": "knowledge", "Work Styles.txt": "work_style"}


class OnetRating(_Row):
    code: str = Field(alias="O*NET-SOC Code", min_length=1)
    element_id: str = Field(alias="Element ID", min_length=1)
    element_name: str = Field(alias="Element Name", min_length=1)
    scale: str = Field(alias="Scale ID", pattern=r"^(IM|LV)$")
    value: float = Field(alias="Data Value", ge=0, le=7)
    suppress: str = Field(alias="Recommend Suppress", default="N")

    @model_validator(mode="after")
    def _on_its_scale(self) -> OnetRating:
        if self.scale == "IM" and not 1 <= self.value <= 5:
            raise ValueError(f"an importance (IM) rating is on the 1–5 scale, not {self.value}")
        return self


def required_level(lv: float | None, im: float, kind: str) -> int:
    """capmap's required level for an O*NET rating (see the module docstring).

    >>> required_level(4.0, 4.1, "skill"), required_level(5.2, 4.0, "skill"), required_level(None, 4.2, "work_style")
    (2, 3, 3)
    """
    if lv is None or kind == "work_style":
        return 3 if im >= 4.0 else 2
    return min(4, round(lv * 4 / 7))


def load_onet(data_dir: str | Path, role_prefix: str = SALES_PREFIX) -> tuple[ChangeSet, IngestReport]:
    d = Path(data_dir)
    report = IngestReport("onet")
    names: dict[str, tuple[str, str]] = {}
    for rec in read_rows(d / "Content Model Reference.txt", required=("Element ID", "Element Name"), delimiter="\t"):
        if rec.error:
            report.reject(rec.error)
            continue
        names[rec.row["Element ID"]] = (rec.row["Element Name"], rec.row.get("Description", ""))
    occupations: dict[str, str] = {}
    for rec in read_rows(d / "Occupation Data.txt", required=("O*NET-SOC Code", "Title"), delimiter="\t"):
        if rec.error:
            report.reject(rec.error)
            continue
        occupations[rec.row["O*NET-SOC Code"]] = rec.row["Title"]

    used: dict[str, str] = {}  # element id -> kind
    ratings: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for fname, kind in FILES.items():
        path = d / fname
        for rec in read_rows(path, required=("O*NET-SOC Code", "Element ID", "Scale ID", "Data Value"), delimiter="\t"):
            row = validate(OnetRating, rec, str(path))
            if isinstance(row, InputError):
                report.reject(row)
                continue
            if row.element_id not in names:
                report.reject(InputError(str(path), rec.line, "Element ID", f"{row.element_id!r} is not in Content Model Reference.txt"))
                continue
            report.accepted += 1
            used[row.element_id] = kind
            if row.code.startswith(role_prefix) and row.suppress != "Y":
                ratings[(row.code, row.element_id)][row.scale] = row.value

    skills: list[Skill] = []
    broader: list[dict[str, str]] = []
    wanted = set(used)
    for eid in list(used):  # every ancestor of a used element
        parts = eid.split(".")
        for i in range(1, len(parts)):
            anc = ".".join(parts[:i])
            if anc in names:
                wanted.add(anc)
    for eid in sorted(wanted):
        name, desc = names[eid]
        kind = used.get(eid, "category")
        skills.append(Skill(id=f"onet:{eid}", name=name, kind=kind, description=desc, onet_id=eid))
        parent = ".".join(eid.split(".")[:-1])
        if parent in wanted:
            broader.append({"src": f"onet:{eid}", "dst": f"onet:{parent}"})

    roles: dict[str, Role] = {}
    requires: list[dict[str, object]] = []
    for (code, eid), sc in sorted(ratings.items()):
        im = sc.get("IM")
        if im is None or im < 3.0:
            continue
        kind = used[eid]
        level = required_level(sc.get("LV"), im, kind)
        rid = f"onet-role:{code}"
        roles.setdefault(rid, Role(id=rid, name=occupations.get(code, code), source="O*NET 29.0"))
        requires.append({"src": rid, "dst": f"onet:{eid}", "level": level, "weight": round((im - 1) / 4, 4),
                         "importance": im, "onet_level": sc.get("LV")})
    change = ChangeSet().add_nodes(skills).add_nodes(list(roles.values()))
    change.add_edges(schema.BROADER, schema.SKILL, schema.SKILL, broader)
    change.add_edges(schema.REQUIRES, schema.ROLE, schema.SKILL, requires)
    return change, report
