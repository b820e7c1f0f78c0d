"""The text coder on small hand-written data with known answers (fast, no files)."""

from __future__ import annotations

import inspect
import random

import numpy as np
import pytest

from ingest.coders import TextCoder, Unit

ASK_EN = ["would you like to donate today", "will you donate some of your payment", "could you give a small amount",
          "please consider donating to the children", "would you be willing to give a dollar",
          "can you donate fifty cents now"]
ASK_ZH = ["您愿意今天捐款吗", "您可以捐一点钱吗", "请考虑为孩子们捐款", "您愿意捐一美元吗", "能不能捐五毛钱",
          "您今天可以捐赠一些吗"]
CRED_EN = ["save the children is a trusted charity", "the charity has been rated highly for years",
           "the organization was founded in 1919", "they are a well known international charity",
           "the charity is certified and audited", "the organization has a strong reputation"]
CRED_ZH = ["救助儿童会是一个值得信赖的慈善机构", "这个慈善机构多年来评级很高", "该组织成立于1919年",
           "他们是一个知名的国际慈善组织", "这个机构经过认证和审计", "该组织口碑很好，是慈善机构"]


def bilingual() -> tuple[list[Unit], list[str]]:
    """Two classes in English and Chinese; each sentence its own dialogue, with some context."""
    units, labels = [], []
    for label, texts in [("ask", ASK_EN + ASK_ZH), ("cred", CRED_EN + CRED_ZH)]:
        for i, t in enumerate(texts):
            units.append(Unit(t, prev_text="ok" if i % 2 else "好的", turn=1 + i % 4, index_in_turn=i % 2,
                              next_text="sure" if label == "ask" else "I see", dialogue_turns=10, dialogue=f"{label}{i}"))
            labels.append(label)
    return units, labels


@pytest.fixture(scope="module")
def fitted() -> tuple[TextCoder, list[Unit], list[str]]:
    units, labels = bilingual()
    return TextCoder(random_state=0).fit(units, labels), units, labels


def test_follows_the_estimator_contract(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    params = [p for p in inspect.signature(TextCoder.__init__).parameters if p != "self"]
    fresh = TextCoder(C=0.3, random_state=7)
    assert sorted(vars(fresh)) == sorted(params)  # __init__ only stores parameters
    assert fresh.C == 0.3 and fresh.random_state == 7
    coder, units, labels = fitted
    assert all(name.endswith("_") for name in set(vars(coder)) - set(params))  # learned state ends in _
    again = TextCoder(random_state=0)
    assert again.fit(units, labels) is again


def test_predict_proba_rows_sum_to_one_and_align_with_classes(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    coder, units, _ = fitted
    assert coder.classes_ == ["ask", "cred"]
    proba = coder.predict_proba(units)
    assert proba.shape == (len(units), 2)
    assert np.all(proba >= 0) and proba.sum(axis=1) == pytest.approx(np.ones(len(units)))
    assert coder.predict(units) == [coder.classes_[i] for i in proba.argmax(axis=1)]
    assert coder.temperature_ > 0 and coder.bias_.shape == (2,)


def test_learns_the_training_set(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    coder, units, labels = fitted
    assert np.mean(np.array(coder.predict(units)) == np.array(labels)) >= 0.95


def test_codes_unseen_chinese_and_english_units(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    coder, _, _ = fitted
    test = [Unit("您愿意捐款吗"), Unit("这个慈善组织很有信誉"), Unit("该机构成立于很多年前"),
            Unit("would you donate a dollar"), Unit("the charity is highly rated")]
    assert coder.predict(test) == ["ask", "cred", "cred", "ask", "cred"]


def test_deterministic_for_a_seed_whatever_the_training_order() -> None:
    units, labels = bilingual()
    order = list(range(len(units)))
    random.Random(3).shuffle(order)
    a = TextCoder(random_state=0).fit(units, labels)
    b = TextCoder(random_state=0).fit([units[i] for i in order], [labels[i] for i in order])
    c = TextCoder(random_state=0).fit(units, labels)
    test = units + [Unit("您愿意捐款吗"), Unit("a trusted charity")]
    assert np.array_equal(a.predict_proba(test), c.predict_proba(test))
    assert np.array_equal(a.predict_proba(test), b.predict_proba(test))
    assert a.predict(test) == b.predict(test)


def test_context_decides_when_the_text_cannot() -> None:
    """The same words mean different codes after different questions: only the context tells."""
    units, labels = [], []
    for i in range(12):
        units.append(Unit("yes sure", prev_text=f"do you want to donate {i}", dialogue=f"a{i}"))
        labels.append("agree-donate")
        units.append(Unit("yes sure", prev_text=f"nice weather today {i}", dialogue=f"b{i}"))
        labels.append("small-talk")
    test = [Unit("yes sure", prev_text="do you want to donate"), Unit("yes sure", prev_text="nice weather today")]
    assert TextCoder(random_state=0).fit(units, labels).predict(test) == ["agree-donate", "small-talk"]
    blind = TextCoder(context=False, random_state=0).fit(units, labels).predict_proba(test)
    assert blind[0] == pytest.approx(blind[1])


def test_units_without_context_are_still_coded(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    coder, _, _ = fitted
    proba = coder.predict_proba([Unit("please donate"), Unit("")])
    assert proba.shape == (2, 2) and np.isfinite(proba).all()


def test_probability_decision_is_the_plain_argmax() -> None:
    units, labels = bilingual()
    coder = TextCoder(decision="probability", random_state=0).fit(units, labels)
    assert np.array_equal(coder.bias_, np.zeros(2))


def test_three_classes_and_tiny_data() -> None:
    units = [Unit(t) for t in ["hello there", "hi there", "please donate", "do donate", "we are trusted", "a trusted charity"]]
    labels = ["greet", "greet", "ask", "ask", "cred", "cred"]
    coder = TextCoder(random_state=0).fit(units, labels)
    assert coder.classes_ == ["ask", "cred", "greet"]
    assert coder.predict_proba(units).sum(axis=1) == pytest.approx(np.ones(6))


@pytest.mark.parametrize(
    ("units", "labels", "message"),
    [([Unit("a"), Unit("b")], ["x"], "2 units but 1 labels"),
     ([Unit("a b"), Unit("a c")], ["x", "x"], "at least two classes")],
)
def test_rejects_bad_training_data(units: list[Unit], labels: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextCoder().fit(units, labels)


def test_rejects_an_unknown_decision() -> None:
    units, labels = bilingual()
    with pytest.raises(ValueError, match="decision='best'"):
        TextCoder(decision="best").fit(units, labels)


def test_a_batch_codes_each_unit_as_if_alone(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    """Repeated texts and contexts are analysed once per batch: that changes no probability."""
    coder, units, _ = fitted
    batch = [*units, *units[:5], Unit("您愿意捐款吗", prev_text="ok"), Unit("您愿意捐款吗", prev_text="ok"),
             Unit("unseen words entirely", prev_text="brand new context"), Unit("")]
    together = coder.predict_proba(batch)
    alone = np.vstack([coder.predict_proba([u]) for u in batch])
    assert together == pytest.approx(alone, abs=1e-12)
    assert together[len(units) : len(units) + 5] == pytest.approx(together[:5], abs=1e-12)
    assert coder.predict_proba([]).shape == (0, 2)


def test_probabilities_do_not_depend_on_the_batch_order(fitted: tuple[TextCoder, list[Unit], list[str]]) -> None:
    """Units of one dialogue coded together, in any order, get the same probabilities each."""
    coder, units, _ = fitted
    dialogue = [Unit(t, prev_text="ok", turn=i // 2, index_in_turn=i % 2, dialogue_turns=6, dialogue="d1")
                for i, t in enumerate([*ASK_EN[:3], *CRED_ZH[:3]])]
    batch = [*dialogue, *units[:4], Unit("please donate"), Unit("")]
    order = list(range(len(batch)))
    random.Random(5).shuffle(order)
    reference = coder.predict_proba(batch)
    shuffled = coder.predict_proba([batch[i] for i in order])
    assert shuffled == pytest.approx(reference[order], abs=1e-12)


@pytest.mark.parametrize(("analyzer", "ngram_range"), [("word", (1, 2)), ("word", (1, 1)), ("char_wb", (2, 5))])
def test_fast_tfidf_equals_scikit_learn(analyzer: str, ngram_range: tuple[int, int]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from ingest.coders import _TOKEN, _Tfidf

    train = ASK_EN + ASK_ZH + CRED_EN + CRED_ZH + ASK_EN[:3] + ["a b", "A  b\tc", "x"]
    test = [*train, "", "unseen words and a donate", "您愿意 捐款", "x", "a a a b b"]
    kw = {"token_pattern": _TOKEN} if analyzer == "word" else {}
    ref = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, min_df=2, sublinear_tf=True, **kw).fit(train)
    fast = _Tfidf(analyzer, ngram_range).fit(train)
    assert fast.vocabulary_ == ref.vocabulary_
    assert fast.transform(test).toarray() == pytest.approx(ref.transform(test).toarray(), abs=1e-12)
