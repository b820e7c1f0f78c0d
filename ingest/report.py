"""The per-import report: what was accepted, what was rejected and why, record by record."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from graph.errors import InputError


@dataclass
class IngestReport:
    """Counts and rejects of one import.

    With ``rejects_path`` set, each reject is written there (JSON lines) as it comes and only
    the first ``max_kept`` stay in memory, so a file with millions of bad records still imports
    in constant memory. ``stats`` holds loader-specific counts that the summary carries too.
    """

    source: str
    accepted: int = 0
    duplicates: int = 0
    rejects: list[InputError] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    rejects_path: Path | None = None
    max_kept: int = 100
    _n_dropped: int = field(default=0, repr=False)
    _sink: TextIO | None = field(default=None, repr=False)

    @property
    def rejected(self) -> int:
        return len(self.rejects) + self._n_dropped

    def reject(self, err: InputError) -> None:
        if self.rejects_path is None:
            self.rejects.append(err)
            return
        if self._sink is None:
            self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = self.rejects_path.open("w", encoding="utf-8")
        self._sink.write(json.dumps(err.as_dict(), ensure_ascii=False) + "\n")
        if len(self.rejects) < self.max_kept:
            self.rejects.append(err)
        else:
            self._n_dropped += 1

    def repeated(self, seen: dict[Any, tuple[int, Any]], key: Any, value: Any, file: str, line: int, field: str,
                 what: str) -> bool:
        """Whether the record ``key`` (``what`` names it) came before, in ``seen`` (key -> its
        first line and value): then a plain duplicate when ``value`` is the same, else rejected
        naming ``field``, the first kept. A new key is remembered."""
        first = seen.get(key)
        if first is None:
            seen[key] = (line, value)
            return False
        if first[1] == value:
            self.duplicates += 1
        else:
            self.reject(InputError(file, line, field,
                                   f"{what} is already on line {first[0]} with other values; the first is kept"))
        return True

    def close(self) -> Path | None:
        """Close the streamed rejects file; return its path if anything was rejected."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        return self.rejects_path if self.rejects_path is not None and self.rejected else None

    def merge(self, other: IngestReport) -> IngestReport:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self._n_dropped += other._n_dropped
        self.rejects.extend(other.rejects)
        for k, v in other.stats.items():
            self.stats[k] = self.stats.get(k, 0) + v
        return self

    def write_rejects(self, path: str | Path) -> Path:
        """Write one JSON line per rejected record; return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        streamed = self.close()
        if streamed is not None:
            if streamed.resolve() != p.resolve():
                shutil.copyfile(streamed, p)
            return p
        with p.open("w", encoding="utf-8") as f:
            for e in self.rejects:
                f.write(json.dumps(e.as_dict(), ensure_ascii=False) + "\n")
        return p

    def settle_rejects(self, path: str | Path) -> str | None:
        """Write the rejects report to ``path`` and return it; with nothing rejected, remove the
        report an earlier import left there (it no longer describes the store) and return None."""
        if self.rejected:
            return str(self.write_rejects(path))
        Path(path).unlink(missing_ok=True)
        return None

    def summary(self, rejects_file: str | None = None) -> dict[str, object]:
        return {
            "source": self.source,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejects_file": rejects_file,
            **self.stats,
        }
