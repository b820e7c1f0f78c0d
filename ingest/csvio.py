"""Reading CSV and TSV files as people export them, with the line of every record."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from graph.errors import InputError

_ENCODINGS = ("utf-8-sig", "gb18030")
_WINDOW = 1 << 16
FIELD_LIMIT = 1 << 24
"""Characters one cell may hold (the csv module's default, 131,072, is below a long transcript or
e-mail thread); a quote left open is found at the end of the file, or here."""


@dataclass(frozen=True)
class Record:
    """One record: its first line, its fields by column name, or the error that spoilt it."""

    line: int
    row: dict[str, str]
    error: InputError | None = None


def _open_text(path: Path) -> io.TextIOWrapper:
    """Open ``path`` as text: UTF-16 with its BOM (Excel's "Unicode text"), UTF-8 (with or
    without a BOM), else GB18030 (Chinese Excel; a superset of GBK and GB2312).

    The choice is made on the first 128 KiB from the first non-ASCII byte, wherever that is (a
    Chinese export may begin with thousands of ASCII-only lines), decoded incrementally, so a
    character cut at the end of that window is no error."""
    with path.open("rb") as f:
        head = f.read(_WINDOW)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return path.open("r", encoding="utf-16", newline="")
        window = head
        while window.isascii():
            window = f.read(_WINDOW)
            if not window:  # ASCII throughout
                return path.open("r", encoding=_ENCODINGS[0], newline="")
        start = next(i for i, b in enumerate(window) if b >= 0x80)
        window = window[start:] + f.read(_WINDOW)
    for enc in _ENCODINGS:
        try:
            codecs.getincrementaldecoder(enc)().decode(window, final=False)
        except UnicodeDecodeError:
            continue
        return path.open("r", encoding=enc, newline="")
    raise InputError(str(path), None, None, "is neither UTF-8 nor GB18030 text")


def not_a_file(path: Path) -> InputError:
    """The error for a path that is no file: a folder, or nothing."""
    return InputError(str(path), None, None, "is a folder: name a file in it" if path.is_dir() else "file not found")


def _csv_error(e: csv.Error, last: int) -> tuple[str, bool]:
    """What a reader's error means for a record whose text ends on line ``last``, and whether
    reading can go on with the next line."""
    why = str(e)
    if "unexpected end of data" in why:
        return (f"a quoted field opened in this record is never closed: the record runs to the end of the "
                f"file (line {last}); close the quote (nothing after this line was read as records)"), False
    if "field larger than field limit" in why:
        return (f"a field of this record runs past {csv.field_size_limit():,} characters (line {last}): a "
                "quote left open? The rest of the file is not read"), False
    return f"is not valid CSV ({why}); a quote inside a field is written twice, the field quoted", True


def read_rows(
    path: str | Path,
    required: Sequence[str] = (),
    delimiter: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Record]:
    """Yield a :class:`Record` for each record of a delimited text file.

    ``line`` is the 1-based line where the record starts (the header is line 1), so a quoted
    field with newlines still points at its record's first line. The delimiter is sniffed among
    comma, semicolon and tab unless given. Columns whose header is empty (an index column, the
    blank columns Excel leaves at the right) are left out of the rows. ``progress``, when given,
    is called with the bytes read so far after each record.

    Raises
    ------
    InputError
        For a missing file, a duplicate or missing header name (a duplicate is never resolved
        by keeping one of the columns), or an undecodable file.
    """
    p = Path(path)
    if not p.is_file():
        raise not_a_file(p)
    with _open_text(p) as f:
        if delimiter is None:
            sample = f.read(1 << 14)
            f.seek(0)
            try:
                delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t").delimiter
            except csv.Error:
                delimiter = ","
        # strict: a quote left open is an error, not a field that swallows the rest of the file
        csv.field_size_limit(FIELD_LIMIT)  # (the module's setting, for every reader)
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(str(p), 1, None, "file is empty (no header line)") from None
        except UnicodeDecodeError as e:
            raise InputError(str(p), 1, None, f"is not valid {f.encoding} text: {e.reason}") from None
        except csv.Error as e:
            raise InputError(str(p), 1, None, f"the header line is not valid CSV: {e}") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        seen: dict[str, int] = {}
        for i, h in enumerate(header, 1):
            if h and h in seen:
                raise InputError(str(p), 1, h, f"duplicate column name in the header (columns {seen[h]} and {i}); "
                                 "rename one: capmap never keeps just one of them")
            seen.setdefault(h, i)
        for col in required:
            if col not in seen:
                raise InputError(str(p), 1, col, f"required column missing; header has {header}")
        named = [i for i, h in enumerate(header) if h]
        last = reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise InputError(str(p), last + 1, None,
                                 f"is not valid {f.encoding} text from about this line on: {e.reason}") from None
            except csv.Error as e:
                start, last = last + 1, reader.line_num
                bad, resumable = _csv_error(e, last)
                yield Record(start, {}, InputError(str(p), start, None, bad))
                if resumable:
                    continue
                return
            start = last + 1
            last = reader.line_num
            if progress is not None:
                progress(cast(io.BufferedReader, f.buffer).tell())
            if not any(map(str.strip, values)):  # a blank line, or only empty fields
                continue
            if len(values) != len(header):
                yield Record(start, {}, InputError(
                    str(p), start, None, f"has {len(values)} fields, header has {len(header)}"
                ))
                continue
            yield Record(start, {header[i]: values[i] for i in named})
