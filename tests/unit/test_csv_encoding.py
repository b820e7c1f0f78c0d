"""Which encoding a delimited file is read in (ingest.csvio)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.errors import InputError
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
