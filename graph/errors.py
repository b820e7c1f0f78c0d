"""capmap's exception tree: every failure capmap raises is a ``CapmapError``.

Third-party errors are wrapped once, at the adapter that met them (``raise ... from e``).
Messages name the offending value and, where there is one, the fix.
"""

from __future__ import annotations


class CapmapError(Exception):
    """Root of every error capmap raises on purpose."""


class ConfigError(CapmapError):
    """A setting is missing or malformed (e.g. an unknown store URI scheme)."""


class StoreError(CapmapError):
    """The graph store failed (connection, transaction, constraint)."""


class UnknownLabel(StoreError):
    """A node label or relationship type that the schema does not define."""


class NotFound(CapmapError):
    """A node looked up by id does not exist."""

    def __init__(self, label: str, node_id: str) -> None:
        super().__init__(f"no {label} with id {node_id!r}")
        self.label = label
        self.node_id = node_id

    def __reduce__(self) -> tuple[type[NotFound], tuple[str, str]]:
        return (type(self), (self.label, self.node_id))


class InputError(CapmapError):
    """A record of an input file is malformed.

    Carries where: the file, the line (1-based, header is line 1) or record index, the field,
    and the reason, so a report can point a person at the exact cell.
    """

    MAX_REASON = 1000
    """Characters of a reason kept: one quoting a whole 1 MB cell would make a 1 MB report line."""

    def __init__(self, file: str, line: int | None, field: str | None, reason: str) -> None:
        if len(reason) > self.MAX_REASON:
            cut = len(reason) - self.MAX_REASON
            reason = f"{reason[: self.MAX_REASON // 2]} …[{cut:,} characters left out]… {reason[-self.MAX_REASON // 2 :]}"
        where = file if line is None else f"{file}:{line}"
        what = f" field {field!r}" if field else ""
        super().__init__(f"{where}:{what} {reason}".replace(": ", ": ", 1))
        self.file = file
        self.line = line
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[InputError], tuple[str, int | None, str | None, str]]:
        # picklable, so an error met in an import's worker process reaches the parent whole
        return (type(self), (self.file, self.line, self.field, self.reason))

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


class CodebookError(CapmapError):
    """The BEC codebook is malformed (unknown skill, duplicate code, bad pattern)."""


class InvalidArgument(CapmapError):
    """A request argument is out of range; the message names the argument and the valid range."""


class NotEnoughData(CapmapError):
    """An analysis cannot run on the data it was given (too few reps, no evidence)."""


class Infeasible(CapmapError):
    """A team request cannot be met; ``reason`` names the constraint that makes it so."""

    def __init__(self, reason: str, constraint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.constraint = constraint

    def __reduce__(self) -> tuple[type[Infeasible], tuple[str, str]]:
        return (type(self), (self.reason, self.constraint))
