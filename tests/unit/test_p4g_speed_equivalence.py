"""The faster PersuasionForGood path reads, validates, splits and codes exactly as before: the
same sentence spans, the same accepted values and per-record rejects, the same text-coder
choices; and a producer whose consumer stops early leaves no reader thread behind."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Generator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from graph.errors import InputError
from graph.model import Event
from ingest import parallel
from ingest.codebook import load_codebook
from ingest.coders import NON_STRATEGY, Unit
from ingest.csvio import Record, read_rows
from ingest.evidence import RuleCoder, union_pattern
from ingest.p4g import MIN_TEXT_CONFIDENCE, _text_evidence
from ingest.records import P4GAnnotatedRow, P4GDialogRow, P4GInfoRow, validate
from ingest.text import sentence_units

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

# The sentence split as first written (a look-behind split): the specification the faster
# split must keep, character for character.
_SPEC_SPLIT = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？；])")


def spec_sentence_units(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    bounds = [(m.start(), m.end()) for m in _SPEC_SPLIT.finditer(text)] + [(len(text), len(text))]
    for end, nxt in bounds:
        a, b = start, end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
        start = nxt
    return spans


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("Hello there. Would you donate? 好的。谢谢", ["Hello there.", "Would you donate?", "好的。", "谢谢"]),
        ("Wait... what?!  Really.\n\tYes", ["Wait...", "what?!", "Really.", "Yes"]),
        ("e.g. this.   ", ["e.g.", "this."]),
        ("3.5 dollars. ok", ["3.5 dollars.", "ok"]),
        ("好。 下一句；最后！", ["好。", "下一句；", "最后！"]),
        ("?。x", ["?。", "x"]),
        ("  . ", ["."]),
        ("Done!\u3000Next", ["Done!", "Next"]),  # an ideographic space is a space
        ("", []),
        (" \n ", []),
    ],
)
def test_sentence_units_spans(text: str, units: list[str]) -> None:
    spans = sentence_units(text)
    assert [text[a:b] for a, b in spans] == units
    assert spans == spec_sentence_units(text)


def test_sentence_units_match_the_specification_on_random_text() -> None:
    rnd = random.Random(3)
    alphabet = list(" \t\n\u3000\xa0.!?。！？；aB好1\u2028")
    for _ in range(20000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 25)))
        assert sentence_units(text) == spec_sentence_units(text), repr(text)


@pytest.mark.parametrize(
    ("model", "row", "field", "reason"),
    [
        (P4GInfoRow, {"B2": "d1", "B3": "u1", "B4": "2", "B6": "1"}, "B4",
         "Input should be less than or equal to 1 (value '2')"),
        (P4GInfoRow, {"B2": "d1", "B3": "u1", "B4": "1", "B6": "nan"}, "B6", "Input should be a finite number (value 'nan')"),
        (P4GInfoRow, {"B2": "d1", "B3": "u1", "B4": "1", "B6": "1e400"}, "B6",
         "Input should be a finite number (value '1e400')"),
        (P4GInfoRow, {"B2": "d1", "B3": "u1", "B4": "1", "B6": "-0.5"}, "B6",
         "Input should be greater than or equal to 0 (value '-0.5')"),
        (P4GInfoRow, {"B2": " ", "B3": "u1", "B4": "1", "B6": ""}, "B2",
         "String should have at least 1 character (value ' ')"),
        (P4GDialogRow, {"B2": "d1", "B4": "0", "Turn": "x", "Unit": "Hi"}, "Turn",
         "Input should be a valid integer, unable to parse string as an integer (value 'x')"),
        (P4GDialogRow, {"B2": "d1", "B4": "0", "Turn": "-1", "Unit": "Hi"}, "Turn",
         "Input should be greater than or equal to 0 (value '-1')"),
        (P4GDialogRow, {"B2": "d1", "B4": "0", "Unit": "Hi"}, "Turn", "Field required (value None)"),
        (P4GAnnotatedRow, {"B2": "d1", "B4": "0", "Turn": "1.5", "Unit": "Hi", "er_label_1": ""}, "Turn",
         "Input should be a valid integer, unable to parse string as an integer (value '1.5')"),
    ],
)
def test_bad_p4g_rows_are_rejected_with_file_line_field_and_reason(model: Any, row: dict[str, str], field: str,
                                                                   reason: str) -> None:
    err = validate(model, Record(7, row), "f.csv")
    assert isinstance(err, InputError)
    assert (err.file, err.line, err.field, err.reason) == ("f.csv", 7, field, reason)


def test_good_p4g_rows_are_trimmed_parsed_and_frozen() -> None:
    info = validate(P4GInfoRow, Record(2, {"B2": " d1 ", "B3": "u1", "B4": " 1 ", "B6": "n/a", "B7": "9"}), "f.csv")
    assert isinstance(info, P4GInfoRow) and (info.B2, info.B3, info.B4, info.B6) == ("d1", "u1", 1, None)
    assert validate(P4GInfoRow, Record(2, {"B2": "d", "B3": "u", "B4": "0", "B6": " 2.5 "}), "f").B6 == 2.5  # type: ignore[union-attr]
    ann = validate(P4GAnnotatedRow, Record(3, {"B2": "d1", "B4": "0", "Turn": "3", "Unit": "  Hi there. ",
                                               "er_label_1": " greeting ", "neg": "0"}), "f.csv")
    assert isinstance(ann, P4GAnnotatedRow)
    assert (ann.B2, ann.B4, ann.Turn, ann.Unit, ann.er_label_1) == ("d1", 0, 3, "Hi there.", "greeting")
    with pytest.raises(AttributeError):
        ann.Turn = 4  # type: ignore[misc]
    broken = Record(9, {}, InputError("f.csv", 9, None, "has 3 fields, header has 4"))
    assert validate(P4GDialogRow, broken, "f.csv") is broken.error


def test_read_rows_drops_unnamed_columns_and_blank_records(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(",Unit,Turn,\n0,Hi,1,x\n\n , , , \n1,\"Two\nlines\",2,\n2,short\n", encoding="utf-8")
    recs = list(read_rows(p))
    assert [(r.line, r.row) for r in recs if r.error is None] == [(2, {"Unit": "Hi", "Turn": "1"}),
                                                                 (5, {"Unit": "Two\nlines", "Turn": "2"})]
    assert [list(r.row) for r in recs if r.error is None] == [["Unit", "Turn"], ["Unit", "Turn"]]
    (bad,) = [r.error for r in recs if r.error is not None]
    assert (bad.line, bad.reason) == (7, "has 2 fields, header has 4")


def test_text_evidence_takes_the_first_most_probable_class_above_the_threshold() -> None:
    codebook = load_codebook(SEEDS / "codebook" / "bec-v1.json")
    a, b = "credibility-appeal", "proposition-of-donation"
    proba = np.array([
        [0.1, 0.45, 0.45],  # a tie: the first of the two classes
        [0.7, 0.2, 0.1],  # non-strategy wins: no evidence
        [0.325, MIN_TEXT_CONFIDENCE, 0.325],  # at the threshold: kept
        [0.32, 0.34, 0.34],  # a tie under the threshold: none
        [0.0, 0.0, 1.0],
    ])
    coder = SimpleNamespace(classes_=[NON_STRATEGY, a, b], predict_proba=lambda units: proba)
    text = "Save the Children is trusted. Would you like to donate?"
    ev = Event(id="p4g:d:1", rep_id="p4g:u", type="utterance", source="transcript", at="2018-09-04T04:53:49Z",
               deal_id="p4g:d", text=text, turn=1)
    spans = [(0, 29), (30, 55), (0, 29), (0, 29), (30, 55)]
    pending = [(ev, Unit(text[s:e]), (s, e), "won") for s, e in spans]
    out = _text_evidence(coder, pending, codebook, {})  # type: ignore[arg-type]
    assert [(e.code, e.confidence, e.span_start) for e in out] == [(a, 0.45, 0), (a, 0.35, 0), (b, 1.0, 30)]
    assert out[0].reason.endswith("(text, p=0.45)")


def test_union_pattern_matches_exactly_where_a_codebook_pattern_matches() -> None:
    codebook = load_codebook(SEEDS / "codebook" / "bec-v1.json")
    rules = RuleCoder(codebook)
    union = union_pattern(rules.codes)
    assert union.pattern  # the codebook's patterns can be joined
    texts = [r.row["Unit"] for r in read_rows(SEEDS / "persuasionforgood" / "annotated_300_dialog.csv")]
    texts += ["Would you like to donate some of your payment?", "您今天愿意签约吗？", "That's so kind of you!",
              "why not", "somewhy not", "WILL YOU GIVE", "我们公司成立于1998年，通过了ISO认证。", ""]
    hits = 0
    for t in texts:
        brute = [c for c in rules.codes if any(p.search(t) for p in c.patterns)]
        assert bool(union.search(t)) == bool(brute), t
        assert rules.match(t) == brute
        hits += bool(brute)
    assert 100 < hits < len(texts) - 1000  # both outcomes are exercised


@pytest.mark.parametrize(
    "patterns",
    [
        [re.compile("abc", re.I), re.compile("xyz")],  # different flags
        [re.compile(r"(a)\1"), re.compile("b")],  # a back-reference would point at another group
        [re.compile(r"(?P<x>a)(?P=x)"), re.compile("b")],
        [re.compile("(?P<x>a)"), re.compile("(?P<x>b)")],  # the same group name twice
        [re.compile("(?i)abc"), re.compile("b")],  # a global flag, no longer at the start
        [re.compile("a # the letter a", re.X), re.compile("b", re.X)],  # a comment would swallow the rest
    ],
)
def test_union_pattern_matches_everything_where_joining_would_change_a_pattern(patterns: list[re.Pattern[str]]) -> None:
    union = union_pattern([SimpleNamespace(patterns=tuple(patterns))])  # type: ignore[list-item]
    assert union.pattern == "" and union.search("nothing like it")


def _numbers(n: int) -> Generator[int, None, None]:
    yield from range(n)


def test_a_producer_whose_consumer_stops_early_leaves_no_reader_thread() -> None:
    """Regression: the reader thread waited forever to queue units nobody would take."""
    p = parallel.Producer("early-stop", lambda: _numbers(10_000), parallel=True)
    units = iter(p)
    assert next(units) == 0
    deadline = time.monotonic() + 10
    while not p._queue.full() and time.monotonic() < deadline:  # the reader is now waiting
        time.sleep(0.01)
    units.close()  # e.g. the writer failed
    while time.monotonic() < deadline and any(t.name == "capmap-early-stop-reader" for t in threading.enumerate()):
        time.sleep(0.01)
    assert not any(t.name == "capmap-early-stop-reader" for t in threading.enumerate())
