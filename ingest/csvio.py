"""Reading CSV and TSV files as people export them, with the line of every record."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from graph.errors import InputError

_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass(frozen=True)
class Record:
    """One record: its first line, its fields by column name, or the error that spoilt it."""

    line: int
    row: dict[str, str]
    error: InputError | None = None


def _open_text(path: Path) -> io.TextIOWrapper:
    """Open ``path`` as text: UTF-8 (with or without a BOM), else GB18030 (Chinese Excel)."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    for enc in _ENCODINGS:
        try:
            head.decode(enc)
        except UnicodeDecodeError as e:
            # A multi-byte character cut at the end of the sample is not an error.
            if e.start >= len(head) - 4:
                break
            continue
        break
    else:
        raise InputError(str(path), None, None, "is neither UTF-8 nor GB18030 text")
    return path.open("r", encoding=enc, newline="")


def read_rows(
    path: str | Path,
    required: Sequence[str] = (),
    delimiter: str | None = None,
) -> Iterator[Record]:
    """Yield a :class:`Record` for each record of a delimited text file.

    ``line`` is the 1-based line where the record starts (the header is line 1), so a quoted
    field with newlines still points at its record's first line. The delimiter is sniffed among
    comma, semicolon and tab unless given.

    Raises
    ------
    InputError
        For a missing file, a duplicate or missing header name, or an undecodable file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), None, None, "file not found")
    with _open_text(p) as f:
        if delimiter is None:
            sample = f.read(1 << 14)
            f.seek(0)
            try:
                delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t").delimiter
            except csv.Error:
                delimiter = ","
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(str(p), 1, None, "file is empty (no header line)") from None
        header = [h.strip() for h in header]
        seen: set[str] = set()
        for h in header:
            if h in seen:
                raise InputError(str(p), 1, h, "duplicate column name in the header")
            seen.add(h)
        for col in required:
            if col not in seen:
                raise InputError(str(p), 1, col, f"required column missing; header has {header}")
        last = reader.line_num
        for values in reader:
            start = last + 1
            last = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield Record(start, {}, InputError(
                    str(p), start, None, f"has {len(values)} fields, header has {len(header)}"
                ))
                continue
            yield Record(start, dict(zip(header, values, strict=True)))
