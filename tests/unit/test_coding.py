from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.errors import CodebookError
from graph.model import Event, Evidence
from ingest.codebook import load_codebook
from ingest.coders import TextCoder, Unit
from ingest.evidence import RuleCoder, evidence_for, outcome_level
from ingest.text import is_chinese, sentence_units

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
CODEBOOK = SEEDS / "codebook" / "bec-v1.json"
NAMES = {"capmap:closing": ("Closing", "促成成交"), "capmap:building-credibility": ("Building credibility", "建立信任")}


@pytest.fixture(scope="module")
def codebook():  # type: ignore[no-untyped-def]
    return load_codebook(CODEBOOK)


def test_codebook_has_the_ten_strategies_and_bilingual_indicators(codebook) -> None:  # type: ignore[no-untyped-def]
    assert len(codebook.text_coder_classes) == 11
    assert codebook.codes["credibility-appeal"].skill == "capmap:building-credibility"
    assert codebook.codes["proposition-of-donation"].skill == "capmap:closing"
    for c in codebook.codes.values():
        assert c.label_zh and c.indicators_zh, c.code
    assert codebook.credibility("self_rating") < codebook.credibility("crm")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["codes"].append(dict(d["codes"][0])), "listed twice"),
        (lambda d: d["codes"][0].update(patterns=["(unclosed"]), "not a valid regular expression"),
        (lambda d: d["codes"][0].update(level=7), "codes.0.level"),
        (lambda d: d["codes"][0].update(skill="capmap:nope"), "not a known skill"),
    ],
)
def test_bad_codebook_is_named(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    d = json.loads(CODEBOOK.read_text(encoding="utf-8"))
    edit(d)
    p = tmp_path / "cb.json"
    p.write_text(json.dumps(d), encoding="utf-8")
    known = {c["skill"] for c in json.loads(CODEBOOK.read_text(encoding="utf-8"))["codes"]}
    with pytest.raises(CodebookError, match=message):
        load_codebook(p, known_skills=known)


def test_rules_code_english_and_chinese(codebook) -> None:  # type: ignore[no-untyped-def]
    rc = RuleCoder(codebook)
    assert "proposition-of-donation" in [c.code for c in rc.match("Would you like to donate some of your payment?")]
    assert "proposition-of-donation" in [c.code for c in rc.match("您今天愿意签约吗？")]
    assert "credibility-appeal" in [c.code for c in rc.match("我们公司成立于1998年，通过了ISO认证。")]
    assert rc.match("The weather is nice.") == []


def test_outcome_and_figures_raise_the_level(codebook) -> None:  # type: ignore[no-untyped-def]
    code = codebook.codes["credibility-appeal"]
    assert outcome_level(code, "They are rated well.", "lost") == (2, None)
    assert outcome_level(code, "They helped 3 million children.", "lost")[0] == 3
    lvl, why = outcome_level(code, "They are rated well.", "won")
    assert lvl == 3 and why is not None and "won" in why[0]


def test_chinese_reason_for_chinese_text(codebook) -> None:  # type: ignore[no-untyped-def]
    ev = Event(id="e1", rep_id="r1", type="call", source="call", text="我们公司成立于1998年，客户遍布全国。")
    code = codebook.codes["credibility-appeal"]
    x = evidence_for(ev, code, level=3, confidence=0.8, coder="rules", codebook=codebook, skill_names=NAMES,
                     text=ev.text, span=(0, len(ev.text or "")), why=("backed by figures", "引用了具体数据"))
    assert is_chinese(x.reason)
    assert x.reason.startswith("信誉诉求 → 建立信任 L3，引用了具体数据：“我们公司成立于1998年")
    assert x.credibility == codebook.credibility("call") == 0.9
    assert x.id == "ev:e1:credibility-appeal:0"


def test_sentence_units_spans() -> None:
    t = "Hi. How are you?  我很好。谢谢！Ok"
    assert [t[a:b] for a, b in sentence_units(t)] == ["Hi.", "How are you?", "我很好。", "谢谢！", "Ok"]


def test_text_coder_learns_and_is_deterministic() -> None:
    units = [Unit(t) for t in ["would you donate today", "please donate now", "we are a trusted charity",
                               "the charity is rated highly"] * 10]
    labels = ["ask", "ask", "cred", "cred"] * 10
    a = TextCoder(random_state=0).fit(units, labels)
    b = TextCoder(random_state=0).fit(list(reversed(units)), list(reversed(labels)))
    test = [Unit("will you donate"), Unit("a highly rated charity")]
    assert a.predict(test) == ["ask", "cred"]
    assert a.predict_proba(test) == pytest.approx(b.predict_proba(test), abs=1e-6)


def test_one_sentence_counts_once_per_skill() -> None:
    """Regression: a sentence matching two closing codes was two pieces of closing evidence."""
    from ingest.p4g import _dedupe

    def ev(code: str, level: int, conf: float, skill: str = "capmap:closing", start: int = 0) -> Evidence:
        return Evidence(id=f"ev:e1:{code}:{start}", event_id="e1", rep_id="r", skill_id=skill, code=code, level=level,
                        confidence=conf, span_start=start)

    kept = _dedupe([ev("proposition-of-donation", 3, 0.7), ev("ask-donation-amount", 3, 0.9),
                    ev("praise-user", 1, 0.7, skill="capmap:rapport-building"), ev("ask-donation-amount", 2, 0.9, start=40)])
    assert [(e.code, e.skill_id, e.span_start) for e in kept] == [
        ("ask-donation-amount", "capmap:closing", 0), ("ask-donation-amount", "capmap:closing", 40),
        ("praise-user", "capmap:rapport-building", 0)]
