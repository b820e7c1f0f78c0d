"""The faster coding path computes exactly what the straightforward one did: the character
n-gram table of unseen words, the feature blocks (each string tokenised once for every field),
the text cues, and nodes made without ``__init__``; a used coder pickles without its caches."""

from __future__ import annotations

import pickle
import random
import re
from dataclasses import dataclass
from datetime import date
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from graph.errors import InputError
from graph.model import Event, Evidence, make
from ingest.codebook import Code, load_codebook
from ingest.coders import (
    _CONTEXT_FIELDS,
    _SENTINEL,
    _WORDS,
    TextCoder,
    Unit,
    _cue_matrix,
    _distinct,
    _Featurizer,
    _GramCodes,
    _position_matrix,
    _Tfidf,
)
from ingest.csvio import Record
from ingest.evidence import evidence_for
from ingest.records import CrmPipelineRow, validate

TRAIN = ["Would you like to donate today?", "Save the Children is a trusted charity.", "I donate $2 to kids.",
         "您愿意今天捐款吗？", "这个慈善机构很有信誉", "How much would you like to give?", "They help kids in 190 countries.",
         "Thanks so much!", "It's a great cause, isn't it?", "we'd love your help"]
ODD = ["", "   ", "naïve café ÉCOLE", "ΣΊΣΥΦΟΣ ΟΔΟΣ", "x", "a b c", f"hidden {_SENTINEL} token", "tab\tand\nnewline",
       "emoji 😀 and \u00a0nbsp", "snake_case and digits 123 ４５", "İstanbul ǅ ß", "donate?? donate!! DONATE...",
       "混合 mixed 文本 text", "\ud800 lone surrogate"]


def _sparse_equal(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


@pytest.fixture(scope="module")
def char_tfidf() -> _Tfidf:
    return _Tfidf("char_wb", (2, 5)).fit(TRAIN + TRAIN[:4])


def _words(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzDONATE?!.,'$你捐款好é😀_1 " + _SENTINEL[0]
    return sorted({"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12))).strip() or "q" for _ in range(n)})


def test_unseen_word_table_equals_the_gram_by_gram_table(char_tfidf: _Tfidf) -> None:
    words = _words(3000, 1) + ["a", "don", "donate", "charity?", "捐", "捐款吗？", "😀😀", "\ud800x"]
    fast = char_tfidf._new_word_table(words)
    assert isinstance(char_tfidf._codes, _GramCodes) and char_tfidf._codes.prefix_closed
    assert _sparse_equal(fast, char_tfidf._char_table(words))
    assert fast.nnz > 1000  # random words share many short n-grams with the training text
    one = char_tfidf._new_word_table(["donate"]).toarray()[0]
    assert {g: one[c] for g, c in char_tfidf.vocabulary_.items() if one[c]} == {
        " d": 1, "do": 1, "on": 1, "na": 1, "at": 1, "te": 1, "e ": 1, " do": 1, "don": 1, "ona": 1, "nat": 1,
        "ate": 1, "te ": 1, " don": 1, "dona": 1, "onat": 1, "nate": 1, "ate ": 1, " dona": 1, "donat": 1,
        "onate": 1, "nate ": 1}


def test_gram_codes_without_prefix_closure_and_their_limits() -> None:
    vocabulary = {"ab": 0, "abcd": 1, " a": 2, "d ": 3, "bcd ": 4}  # "abc" and "bcd" are missing
    codes = _GramCodes.build(vocabulary, 2, 5)
    assert codes is not None and not codes.prefix_closed
    table = codes.table(["abcd", "xabcd", "ab"], 2, 5, len(vocabulary)).toarray()
    assert table.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 1, 1], [1, 0, 1, 0, 0]]
    wide = {chr(0x4E00 + i) + chr(0x4E00 + i + 1): i for i in range(5000)}  # 13 bits a character: 5 × 13 > 63
    assert _GramCodes.build(wide, 2, 5) is None
    assert _GramCodes.build({"a": 0, "ab": 1}, 2, 5) is None  # an n-gram shorter than lo


def test_char_tfidf_falls_back_where_codes_do_not_fit() -> None:
    tfidf = _Tfidf("char_wb", (2, 5)).fit(TRAIN + TRAIN)
    tfidf._codes = None
    words = _words(200, 2)
    assert _sparse_equal(tfidf._new_word_table(words), tfidf._char_table(words))


def _reference_blocks(f: _Featurizer, units: list[Unit]) -> list[np.ndarray]:
    """Each unit's row of each block, as the featurizer computed them before: field by field,
    each string tokenised on its own."""
    word, char = f.text_
    texts, inverse = _distinct([u.text for u in units])
    out = [word.transform(texts, [_WORDS.findall(t.lower()) for t in texts])[inverse],
           char.transform(texts)[inverse]]
    if f.context:
        for name, vec in f.context_.items():
            strings, inverse = _distinct([getattr(u, name) for u in units])
            out.append((f.context_weight * vec.transform(strings, [_WORDS.findall(s.lower()) for s in strings]))[inverse])
        out.append(_reference_positions(units))
    return [np.asarray(x.toarray() if sp.issparse(x) else x) for x in out]


def _text_cues(text: str) -> tuple[float, float, float, float]:
    """The dense text cues one string at a time, as the coder computed them before."""
    return (float("?" in text or "？" in text), float(re.search(r"\d", text) is not None),
            float(re.search("[$¥￥€£元]", text) is not None), min(len(text), 200) / 200.0)


def _reference_positions(units: list[Unit]) -> np.ndarray:
    turn = np.array([u.turn for u in units], dtype=np.float64)
    index = np.array([u.index_in_turn for u in units], dtype=np.float64)
    turns = np.array([u.dialogue_turns for u in units], dtype=np.float64)
    last_unit = np.array([not u.next_own_text for u in units], dtype=np.float64)
    cues = np.array([_text_cues(u.text) for u in units], dtype=np.float64).reshape(len(units), 4)
    rel = np.where(turns > 1, turn / np.maximum(turns - 1, 1), 0.0)
    known = turns > 0
    fifth = np.minimum((rel * 5).astype(np.int64), 4)
    return np.column_stack([
        np.minimum(turn, 12)[:, None] == np.arange(13), index == 0, np.minimum(index, 5) / 5.0,
        last_unit, rel, rel * rel, known & (turn >= turns - 1), known[:, None] & (fifth[:, None] == np.arange(5)), cues,
    ]).astype(np.float64)


def _units(texts: list[str], seed: int) -> list[Unit]:
    rnd = random.Random(seed)
    out = []
    for i, t in enumerate(texts):
        pick = [rnd.choice(texts) for _ in _CONTEXT_FIELDS]
        out.append(Unit(t, pick[0], turn=i % 15, index_in_turn=i % 3, next_text=pick[1], prev_own_text=pick[2],
                        next_own_text=pick[3] if i % 4 else "", prev_turn_text=pick[4], dialogue_turns=(0, 1, 9, 20)[i % 4],
                        dialogue=f"d{i % 5}"))
    return out


@pytest.fixture(scope="module")
def featurizer() -> _Featurizer:
    return _Featurizer(context=True, context_weight=0.5).fit(_units(TRAIN * 2, 0))


@pytest.mark.parametrize(
    "texts",
    [TRAIN, TRAIN + ODD, [t for t in TRAIN + ODD if _SENTINEL not in t], [t for t in TRAIN if t.isascii()], ["", ""],
     [f"{_SENTINEL}"], ["x"]],
    ids=["train", "odd-with-separator-token", "odd", "no-cjk", "empty", "separator-only", "one"],
)
def test_blocks_equal_the_field_by_field_features(featurizer: _Featurizer, texts: list[str]) -> None:
    units = _units(texts + texts[:3], 7)
    fast = [np.asarray(x[inverse].toarray() if sp.issparse(x) else x[inverse]) for x, inverse in featurizer.blocks(units)]
    reference = _reference_blocks(featurizer, units)
    assert len(fast) == len(reference) == 2 + len(featurizer.context_) + 1
    for a, b in zip(fast, reference, strict=True):
        assert np.array_equal(a, b)


def test_blocks_without_context_and_with_no_units(featurizer: _Featurizer) -> None:
    blind = _Featurizer(context=False, context_weight=0.5).fit(_units(TRAIN * 2, 0))
    units = _units(TRAIN + ODD, 3)
    fast = [x[inverse].toarray() for x, inverse in blind.blocks(units)]
    assert len(fast) == 2 and all(np.array_equal(a, b) for a, b in zip(fast, _reference_blocks(blind, units), strict=True))
    empty = featurizer.blocks([])
    assert [x.shape[0] for x, _ in empty] == [0] * len(empty) and all(len(inv) == 0 for _, inv in empty)


def test_cue_matrix_equals_text_cues() -> None:
    texts = TRAIN + ODD + ["￥5", "元", "？", "٣ arabic-indic digit", "price: 5€", "no cue here"]
    assert np.array_equal(_cue_matrix(texts), np.array([_text_cues(t) for t in texts]))
    assert _cue_matrix(["How much? $5", "ok"]).tolist() == [[1.0, 1.0, 1.0, 0.06], [0.0, 0.0, 0.0, 0.01]]
    units = _units(TRAIN + ODD, 5)
    assert np.array_equal(_position_matrix(units), _reference_positions(units))


def test_a_used_coder_pickles_without_its_caches_and_predicts_the_same() -> None:
    units = _units(TRAIN * 3, 11)
    labels = [("ask", "cred", "other")[i % 3] for i in range(len(units))]
    coder = TextCoder(random_state=0).fit(units, labels)
    test = _units(TRAIN + ODD, 12)
    before = coder.predict_proba(test)
    assert hasattr(coder.featurizer_, "_tokens") and hasattr(coder.featurizer_.text_[1], "_codes")
    again = pickle.loads(pickle.dumps(coder))
    assert not hasattr(again.featurizer_, "_tokens") and not hasattr(again.featurizer_.text_[1], "_codes")
    assert np.array_equal(again.predict_proba(test), before)
    assert np.array_equal(coder.predict_proba(test), before)  # the caches change nothing


def test_make_builds_the_instance_init_would() -> None:
    fields = {"id": "e1", "rep_id": "r", "type": "utterance", "source": "transcript", "at": None, "deal_id": "d",
              "text": "Hi", "turn": 3, "attrs_json": None}
    made = make(Event, dict(fields))
    built = Event(**fields)
    assert made == built and hash(made) == hash(built) and made.to_row() == built.to_row()
    assert list(vars(made)) == list(vars(built)) and type(made) is Event
    with pytest.raises(AttributeError):
        made.turn = 4  # type: ignore[misc]
    # fewer fields, or another order: through __init__ (defaults filled in, unknown names refused)
    assert make(Event, {"text": "Hi", "id": "e1"}) == Event(id="e1", text="Hi")
    assert list(vars(make(Event, {"text": "Hi", "id": "e1"})))[:2] == ["id", "rep_id"]
    with pytest.raises(TypeError):
        make(Event, {**fields, "colour": "red"})

    @dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):
        make(Checked, {"x": -1})  # a __post_init__ is never skipped


def test_evidence_for_builds_the_same_evidence_as_the_constructor() -> None:
    codebook = load_codebook(Path(__file__).resolve().parents[2] / "seeds" / "codebook" / "bec-v1.json")
    code: Code = codebook.codes["proposition-of-donation"]
    text = "Hello there. Would you like to donate some of your payment today?"
    ev = Event(id="p4g:d:1", rep_id="p4g:u", type="utterance", source="transcript", at="2018-09-04T04:53:49Z",
               deal_id="p4g:d", text=text, turn=1)
    got = evidence_for(ev, code, level=3, confidence=0.712345, coder="text", codebook=codebook,
                       skill_names={code.skill: ("Closing", "成交")}, text=text, span=(13, 66),
                       why=("in an engagement that was won", "且该商机最终赢单"))
    want = Evidence(id="ev:p4g:d:1:proposition-of-donation:13", event_id="p4g:d:1", rep_id="p4g:u", skill_id=code.skill,
                    code="proposition-of-donation", level=3, polarity=code.polarity, confidence=0.7123,
                    credibility=codebook.credibility("transcript"), coder="text", codebook_version=codebook.version,
                    reason=f'{code.label_en} → Closing L3, in an engagement that was won: '
                           '"Would you like to donate some of your payment today?" (text, p=0.71)',
                    span_start=13, span_end=66, at="2018-09-04T04:53:49Z")
    assert got == want and got.to_row() == want.to_row() and list(vars(got)) == list(vars(want))
    assert got.state == "suggested"


def test_tokenise_splits_strings_joined_by_the_separator(featurizer: _Featurizer) -> None:
    strings = [s.lower() for s in ["Would you donate?", "", "您愿意捐款吗", "donate donate"]]
    ids, _, local = featurizer._token_ids()
    number, starts = featurizer._tokenise(strings)
    unknown = len(local[0]) - 2
    expect = [[ids.get(t, unknown) for t in _WORDS.findall(s)] for s in strings]
    assert [number[starts[i] : starts[i + 1]].tolist() for i in range(len(strings))] == expect
    assert starts.tolist() == [0, 3, 3, 9, 11]
    assert list(chain.from_iterable(expect)) == number.tolist()


_DEAL = {"opportunity_id": "X1", "sales_agent": "A", "product": "GTX", "account": "", "deal_stage": "Won",
         "engage_date": "2017-01-02", "close_date": "2017-02-01", "close_value": "5"}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"deal_stage": "Wonn"}, "deal_stage", "Input should be 'Prospecting', 'Engaging', 'Won' or 'Lost' (value 'Wonn')"),
        ({"close_date": "2016-12-31"}, "close_date",
         "Value error, close_date 2016-12-31 is before engage_date 2017-01-02 (value '2016-12-31')"),
        ({"close_value": "-1"}, "close_value", "Input should be greater than or equal to 0 (value '-1')"),
        ({"close_value": "1e400"}, "close_value", "Input should be a finite number (value '1e400')"),
        ({"engage_date": "2017-13-01"}, "engage_date",
         "Input should be a valid date or datetime, month value is outside expected range of 1-12 (value '2017-13-01')"),
        ({"opportunity_id": " "}, "opportunity_id", "String should have at least 1 character (value ' ')"),
    ],
)
def test_bad_crm_rows_are_rejected_with_line_field_and_reason(change: dict[str, str], field: str, reason: str) -> None:
    err = validate(CrmPipelineRow, Record(4, {**_DEAL, **change}), "p.csv")
    assert isinstance(err, InputError)
    assert (err.file, err.line, err.field, err.reason) == ("p.csv", 4, field, reason)


def test_good_crm_rows_are_trimmed_and_parsed() -> None:
    row = validate(CrmPipelineRow, Record(4, {**_DEAL, "deal_stage": " Lost ", "close_value": " ", "account": "n/a"}), "p")
    assert isinstance(row, CrmPipelineRow)
    assert (row.deal_stage, row.close_value, row.account, row.close_date) == ("Lost", None, None, date(2017, 2, 1))
