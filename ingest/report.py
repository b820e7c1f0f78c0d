"""The per-import report: what was accepted, what was rejected and why, record by record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from graph.errors import InputError


@dataclass
class IngestReport:
    source: str
    accepted: int = 0
    duplicates: int = 0
    rejects: list[InputError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def reject(self, err: InputError) -> None:
        self.rejects.append(err)

    def merge(self, other: IngestReport) -> IngestReport:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejects.extend(other.rejects)
        return self

    def write_rejects(self, path: str | Path) -> Path:
        """Write one JSON line per rejected record; return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", encoding="utf-8") as f:
            for e in self.rejects:
                f.write(json.dumps(e.as_dict(), ensure_ascii=False) + "\n")
        return p

    def summary(self, rejects_file: str | None = None) -> dict[str, object]:
        return {
            "source": self.source,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejects_file": rejects_file,
        }
