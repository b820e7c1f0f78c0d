"""Which encoding a delimited file is read in (ingest.csvio)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graph.errors import InputError
from ingest import csvio
from ingest.csvio import read_rows


def _write(path: Path, rows: list[tuple[str, str]], encoding: str) -> None:
    path.write_bytes(("name,note\n" + "".join(f"{a},{b}\n" for a, b in rows)).encode(encoding))


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
def test_chinese_first_met_after_many_ascii_lines(tmp_path: Path, encoding: str) -> None:
    """Regression: only the first 64 KiB decided, so a GB18030 export whose first Chinese
    character came later was read as UTF-8 and stopped there."""
    rows = [(f"rep{i}", "ok") for i in range(6000)] + [("王伟", "客户很满意")]
    _write(tmp_path / "a.csv", rows, encoding)
    got = [(r.row["name"], r.row["note"]) for r in read_rows(tmp_path / "a.csv")]
    assert got == rows


def test_a_character_cut_at_the_end_of_the_sample_is_no_error(tmp_path: Path) -> None:
    """Regression: a two-byte GB18030 character across the sample's end made the file
    'neither UTF-8 nor GB18030'."""
    rows = [("王伟" * 5, "客户很满意") for _ in range(6000)]
    path = tmp_path / "b.csv"
    _write(path, rows, "gb18030")
    data = path.read_bytes()
    # shift by one ASCII byte until the 64 KiB boundary falls inside a two-byte character
    for pad in range(4):
        padded = data.replace(b"name,note\n", b"name,note" + b" " * pad + b"\n", 1)
        try:
            padded[: 1 << 16].decode("gb18030")
        except UnicodeDecodeError:
            break
    else:
        raise AssertionError("no padding cuts a character at 64 KiB")
    path.write_bytes(padded)
    got = [(r.row["name"], r.row["note"]) for r in read_rows(path)]
    assert got == rows


def test_neither_utf8_nor_gb18030_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"name,note\n" + b"a,b\n" * 10 + b"\x80\x80\x80\xff\xff,x\n")
    with pytest.raises(InputError, match="neither UTF-8 nor GB18030"):
        list(read_rows(path))


def test_a_quote_left_open_is_a_rejected_record_never_swallowed_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (a new user's review): a quote opened and never closed made one field of the
    rest of the file — the rows after it silently lost — or, past 128 KiB, a raw csv.Error."""
    short = tmp_path / "short.csv"
    short.write_text('a,b\n0,ok\n1,"never closed\n2,y\n3,z\n', encoding="utf-8")
    records = list(read_rows(short))
    assert [(r.line, r.row) for r in records] == [(2, {"a": "0", "b": "ok"}), (3, {})]
    err = records[1].error
    assert err is not None and (err.line, err.field) == (3, None)
    assert "never closed" in err.reason and "line 5" in err.reason

    long = tmp_path / "long.csv"
    long.write_text('a,b\n0,ok\n1,"never closed\n' + "2,y\n" * 40000, encoding="utf-8")
    records = list(read_rows(long))  # 160 KB after the quote: past the csv module's own limit
    assert [r.line for r in records] == [2, 3] and records[0].error is None
    assert records[1].error is not None and "never closed" in records[1].error.reason
    monkeypatch.setattr(csvio, "FIELD_LIMIT", 100_000)
    try:
        records = list(read_rows(long))
    finally:
        csv.field_size_limit(csvio.FIELD_LIMIT)
    assert [r.line for r in records] == [2, 3]
    assert records[1].error is not None and "runs past 100,000 characters" in records[1].error.reason


def test_a_closed_cell_longer_than_the_csv_module_default_is_read(tmp_path: Path) -> None:
    """Regression (a new user's review): one properly quoted 200,000-character cell stopped the
    file (the csv module's default limit is 131,072)."""
    p = tmp_path / "long-cell.csv"
    p.write_text('a,b\n1,"' + "x" * 200_000 + '"\n2,y\n', encoding="utf-8")
    assert [(r.line, len(r.row.get("b", "")), r.error) for r in read_rows(p)] == [(2, 200_000, None), (3, 1, None)]


def test_a_stray_quote_rejects_its_record_and_reading_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "stray.csv"
    p.write_text('a,b\n1,"x"y\n2,"say ""hi"""\n', encoding="utf-8")
    records = list(read_rows(p))
    assert records[0].line == 2 and records[0].error is not None and "not valid CSV" in records[0].error.reason
    assert (records[1].line, records[1].row, records[1].error) == (3, {"a": "2", "b": 'say "hi"'}, None)


def test_a_folder_is_named_as_a_folder_not_a_missing_file(tmp_path: Path) -> None:
    """Regression (a new user's review): `capmap ingest --format events FOLDER` said "file not found"."""
    from ingest.event_schema import read_raw

    (tmp_path / "events.jsonl").mkdir()
    for p in (tmp_path, tmp_path / "events.jsonl"):
        with pytest.raises(InputError, match="is a folder: name a file in it"):
            list(read_raw(p))
    with pytest.raises(InputError, match="file not found"):
        list(read_raw(tmp_path / "missing.csv"))
