"""Behaviour coders: turn events into skill evidence against the BEC codebook.

Three coders, each recorded on the evidence it writes:

- ``rules``: bilingual regular expressions from the codebook and event-type rules (CRM stage
  changes, xAPI verbs);
- ``text``: a scikit-learn text classifier trained on human-annotated utterances
  (:class:`TextCoder`);
- ``annotation``: a human annotator's label carried in the source data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from graph.model import Event, Evidence
from ingest.codebook import Code, Codebook
from ingest.text import is_chinese, snippet

log = logging.getLogger(__name__)

NON_STRATEGY = "non-strategy"


@dataclass(frozen=True)
class Unit:
    """One sentence unit to code, with the context the text coder uses.

    Every field after ``text`` is optional; a field left empty reads as "no such context", so a
    loader should fill in every field it can (the coder was trained with all of them filled in).
    """

    text: str
    prev_text: str = ""  # what the other party said just before
    turn: int = 0
    index_in_turn: int = 0
    next_text: str = ""  # the other party's reply right after this turn (known when coding after the fact)
    prev_own_text: str = ""  # the speaker's previous unit in the same turn
    next_own_text: str = ""  # the speaker's next unit in the same turn
    prev_turn_text: str = ""  # the speaker's whole previous turn
    dialogue_turns: int = 0  # turns in the whole dialogue (highest turn number + 1); 0 if unknown
    dialogue: str = ""  # dialogue id: the coder's inner cross-validation keeps a dialogue's units together


# One CJK ideograph, or a run of two or more other word characters (scikit-learn's default
# words): Chinese has no spaces, so its characters act as words and word bigrams as char bigrams.
_TOKEN = r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]{2,}"
_CONTEXT_FIELDS = ("prev_text", "next_text", "prev_own_text", "next_own_text", "prev_turn_text")
_MAX_TURN = 12


def _tfidf(kind: str) -> TfidfVectorizer:
    if kind == "char":
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    return TfidfVectorizer(token_pattern=_TOKEN, ngram_range=(1, 2) if kind == "word" else (1, 1),
                           min_df=2, sublinear_tf=True)


def _position(u: Unit) -> list[float]:
    """Dense cues: turn number, place in the turn and the dialogue, question, figures, length."""
    t = min(u.turn, _MAX_TURN)
    rel = u.turn / (u.dialogue_turns - 1) if u.dialogue_turns > 1 else 0.0
    known = u.dialogue_turns > 0
    return [1.0 if t == k else 0.0 for k in range(_MAX_TURN + 1)] + [
        float(u.index_in_turn == 0), min(u.index_in_turn, 5) / 5.0, float(not u.next_own_text),
        rel, rel * rel, float(known and u.turn >= u.dialogue_turns - 1),
        *[float(known and min(int(rel * 5), 4) == k) for k in range(5)],
        float("?" in u.text or "？" in u.text), float(any(c.isdigit() for c in u.text)),
        float(any(c in u.text for c in "$¥￥€£元")), min(len(u.text), 200) / 200.0,
    ]


def _position_matrix(units: Sequence[Unit]) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray([_position(u) for u in units], dtype=np.float64).reshape(len(units), -1))


class _Featurizer:
    """Turns units into two views: the unit's own text, and that text with its context."""

    def __init__(self, context: bool, context_weight: float) -> None:
        self.context = context
        self.context_weight = context_weight
        self.text_: list[TfidfVectorizer] = []
        self.context_: dict[str, TfidfVectorizer | None] = {}

    def fit_transform(self, units: Sequence[Unit]) -> list[sp.csr_matrix]:
        """Learn the vocabularies from ``units``; return their views (see :meth:`transform`)."""
        texts = [u.text for u in units]
        self.text_ = [_tfidf("word"), _tfidf("char")]
        own = sp.hstack([v.fit_transform(texts) for v in self.text_], format="csr")
        if not self.context:
            return [own]
        blocks = [own]
        for name in _CONTEXT_FIELDS:
            vec = _tfidf("context")
            try:
                blocks.append(self.context_weight * vec.fit_transform([getattr(u, name) for u in units]))
                self.context_[name] = vec
            except ValueError:  # no context of this kind in the training units
                self.context_[name] = None
        blocks.append(_position_matrix(units))
        return [own, sp.hstack(blocks, format="csr")]

    def transform(self, units: Sequence[Unit]) -> list[sp.csr_matrix]:
        """The views' feature matrices: ``[text]``, or ``[text, text + context]``."""
        texts = [u.text for u in units]
        own = sp.hstack([v.transform(texts) for v in self.text_], format="csr")
        if not self.context:
            return [own]
        blocks = [own]
        for name, vec in self.context_.items():
            if vec is not None:
                blocks.append(self.context_weight * vec.transform([getattr(u, name) for u in units]))
        blocks.append(_position_matrix(units))
        return [own, sp.hstack(blocks, format="csr")]


def _linear(model: LinearSVC | int, n_classes: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted SVM as weights and intercepts for every class (rows in class order): a class the
    model never saw scores -1, and a bare class index (only that class seen) scores +1 for it."""
    coef, intercept = np.zeros((n_classes, n_features)), np.full(n_classes, -1.0)
    if isinstance(model, int):
        intercept[model] = 1.0
    elif len(model.classes_) == 2:
        neg, pos = model.classes_
        coef[pos], intercept[pos] = model.coef_[0], model.intercept_[0]
        coef[neg], intercept[neg] = -model.coef_[0], -model.intercept_[0]
    else:
        coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
    return coef, intercept


def _macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


def _macro_f1_bias(logp: np.ndarray, y: np.ndarray, sweeps: int = 2) -> np.ndarray:
    """Per-class offsets to the log-probabilities that raise macro-F1 (coordinate ascent)."""
    k = logp.shape[1]
    bias = np.zeros(k)
    best = _macro_f1(y, logp.argmax(1), k)
    for _ in range(sweeps):
        for j in range(k):
            for step in np.linspace(-1.5, 1.5, 31):
                trial = bias.copy()
                trial[j] = step
                f = _macro_f1(y, (logp + trial).argmax(1), k)
                if f > best + 1e-12:
                    best, bias = f, trial
    return bias


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the log-loss of ``softmax(logits / T)``."""

    def nll(t: float) -> float:
        z = logits / t
        return float(-(z[np.arange(len(y)), y] - logsumexp(z, axis=1)).mean())

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


class TextCoder:
    """A text classifier for behaviour codes, following the scikit-learn estimator contract.

    Features, in two views: (1) the unit's own text — word 1–2-grams and character 2–5-grams
    (Chinese works through single-character "words" and the character n-grams); (2) the same
    plus word unigrams of the context (the other party's previous utterance and next reply, the
    speaker's neighbouring units in the turn and previous turn) and dense cues (turn number,
    place in the turn and in the dialogue, question mark, figures, length).

    Model: a class-balanced linear SVM per view, trained in an inner cross-validation grouped by
    dialogue; a multinomial logistic regression stacked on the views' out-of-fold scores turns
    them into probabilities. New units are scored by the mean of the fold SVMs, on the same
    scale as the out-of-fold scores the stack learnt from. With ``decision="macro-f1"``,
    per-class offsets tuned on the out-of-fold probabilities favour macro-F1 over accuracy; a
    final temperature, fitted by log-loss, keeps the probabilities calibrated, so evidence
    confidence reads as the chance that the code is right. ``predict`` is the argmax of
    ``predict_proba``.

    Measured by ``bench/coder.py`` on PersuasionForGood (5-fold cross-validation grouped by
    dialogue): see that script for the figures and the baseline beside them.

    Parameters
    ----------
    C:
        Inverse regularisation strength of the linear SVMs.
    context:
        Whether to use the context view (otherwise the unit's text alone).
    context_weight:
        Scale of the context blocks against the unit's own text.
    inner_folds:
        Folds of the inner cross-validation that produces the stacking scores.
    meta_C:
        Inverse regularisation strength of the stacked logistic regression.
    decision:
        ``"macro-f1"`` (per-class offsets tuned for macro-F1) or ``"probability"`` (plain argmax).
    class_weight:
        Class weights of the SVMs (``"balanced"`` or ``None``).
    random_state:
        Seed for the SVM solver; the coder is deterministic for a given seed and data, whatever
        the order of the training units.
    """

    def __init__(self, C: float = 0.1, context: bool = True, context_weight: float = 0.5, inner_folds: int = 5,
                 meta_C: float = 1.0, decision: str = "macro-f1", class_weight: str | None = "balanced",
                 random_state: int = 0) -> None:
        self.C = C
        self.context = context
        self.context_weight = context_weight
        self.inner_folds = inner_folds
        self.meta_C = meta_C
        self.decision = decision
        self.class_weight = class_weight
        self.random_state = random_state

    def _svm(self, X: sp.csr_matrix, y: np.ndarray) -> LinearSVC | int:
        if len(np.unique(y)) < 2:
            return int(y[0])
        return LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state).fit(X, y)

    def _fold_scores(
        self, views: list[sp.csr_matrix], y: np.ndarray, groups: list[str]
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Out-of-fold scores of every view's SVM, side by side (in-sample with one group), and
        per view the mean of the fold SVMs' weights and intercepts, which scores new units on
        the same scale as the out-of-fold scores (and bags the fold models)."""
        k = len(self.classes_)
        scores = np.zeros((len(y), k * len(views)))
        n_folds = min(self.inner_folds, len(set(groups)))
        splits = list(GroupKFold(n_folds).split(views[0], y, groups)) if n_folds >= 2 else [(np.arange(len(y)),) * 2]
        mean = [(np.zeros((k, X.shape[1])), np.zeros(k)) for X in views]
        for train, test in splits:
            for v, X in enumerate(views):
                coef, intercept = _linear(self._svm(X[train], y[train]), k, X.shape[1])
                scores[test, v * k : (v + 1) * k] = X[test] @ coef.T + intercept
                mean[v][0][:] += coef / len(splits)
                mean[v][1][:] += intercept / len(splits)
        return scores, mean

    def fit(self, units: Sequence[Unit], labels: Sequence[str]) -> TextCoder:
        if len(units) != len(labels):
            raise ValueError(f"{len(units)} units but {len(labels)} labels")
        if self.decision not in ("macro-f1", "probability"):
            raise ValueError(f"decision={self.decision!r}: use 'macro-f1' or 'probability'")
        # a canonical order makes the fit independent of the order the units come in
        order = sorted(range(len(units)), key=lambda i: (tuple(vars(units[i]).values()), labels[i]))
        units = [units[i] for i in order]
        self.classes_ = sorted(set(labels))
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two classes to learn, got {self.classes_}")
        y = np.searchsorted(self.classes_, [labels[i] for i in order])
        self.featurizer_ = _Featurizer(self.context, self.context_weight)
        views = self.featurizer_.fit_transform(units)
        stacked, self.views_ = self._fold_scores(views, y, [u.dialogue or u.text for u in units])
        with threadpool_limits(1):  # a small dense problem: threads only contend
            self.meta_ = LogisticRegression(C=self.meta_C, max_iter=3000).fit(stacked, y)
        logp = self.meta_.predict_log_proba(stacked)
        self.bias_ = _macro_f1_bias(logp, y) if self.decision == "macro-f1" else np.zeros(len(self.classes_))
        self.temperature_ = _temperature(logp + self.bias_, y)
        return self

    def predict_proba(self, units: Sequence[Unit]) -> np.ndarray:
        """Calibrated class probabilities, columns in the order of ``classes_``."""
        views = self.featurizer_.transform(units)
        stacked = np.hstack([X @ coef.T + intercept for X, (coef, intercept) in zip(views, self.views_, strict=True)])
        logits = (self.meta_.predict_log_proba(stacked) + self.bias_) / self.temperature_
        return softmax(logits, axis=1)

    def predict(self, units: Sequence[Unit]) -> list[str]:
        proba = self.predict_proba(units)
        return [self.classes_[i] for i in proba.argmax(axis=1)]


def evidence_for(
    event: Event,
    code: Code,
    *,
    level: int,
    confidence: float,
    coder: str,
    codebook: Codebook,
    skill_names: dict[str, tuple[str, str]],
    text: str | None = None,
    span: tuple[int, int] | None = None,
    why: tuple[str, str] | None = None,
    credibility_source: str | None = None,
) -> Evidence:
    """Build one evidence item with its readable one-line reason (Chinese for Chinese text)."""
    en, zh = skill_names.get(code.skill, (code.skill, code.skill))
    quote = snippet(text[span[0] : span[1]] if (text and span) else (text or ""))
    chinese = is_chinese(quote)
    if chinese:
        extra = f"，{why[1]}" if why else ""
        reason = f"{code.label_zh} → {zh} L{level}{extra}"
        reason += f"：“{quote}”" if quote else ""
        reason += f"（{coder}，置信度 {confidence:.2f}）"
    else:
        extra = f", {why[0]}" if why else ""
        reason = f"{code.label_en} → {en} L{level}{extra}"
        reason += f': "{quote}"' if quote else ""
        reason += f" ({coder}, p={confidence:.2f})"
    start = span[0] if span else None
    return Evidence(
        id=f"ev:{event.id}:{code.code}:{start if start is not None else 0}",
        event_id=event.id,
        rep_id=event.rep_id,
        skill_id=code.skill,
        code=code.code,
        level=level,
        polarity=code.polarity,
        confidence=round(float(confidence), 4),
        credibility=codebook.credibility(credibility_source or event.source),
        coder=coder,
        codebook_version=codebook.version,
        reason=reason,
        span_start=start,
        span_end=span[1] if span else None,
        at=event.at,
    )


def upgraded_level(code: Code, text: str) -> tuple[int, tuple[str, str] | None]:
    """The level signal of ``code`` for ``text``, raised by the first upgrade pattern that matches."""
    for up in code.upgrades:
        if up.pattern.search(text):
            return max(code.level, up.level), (up.why_en, up.why_zh)
    return code.level, None


OUTCOME_WHY = {"won": ("in an engagement that was won", "且该商机最终赢单"),
               "lost": ("in an engagement that was lost", "但该商机最终丢单")}


def outcome_level(code: Code, text: str, outcome: str) -> tuple[int, tuple[str, str] | None]:
    """The level signal after upgrades and the engagement's outcome (codebook ``outcome_level``):
    a behaviour in an engagement that was won is evidence of a higher level than the same
    behaviour alone. Returns the level and the why-phrases (en, zh) that explain it."""
    level, why = upgraded_level(code, text)
    if outcome in code.outcome_level and code.outcome_level[outcome] > level:
        level = code.outcome_level[outcome]
        ow = OUTCOME_WHY.get(outcome, (outcome, outcome))
        why = (f"{why[0]}, {ow[0]}", f"{why[1]}，{ow[1]}") if why else ow
    return level, why


class RuleCoder:
    """Codes sentence units with the codebook's bilingual patterns."""

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.codes = [c for c in codebook.codes.values() if c.patterns and c.event_type is None]

    def match(self, text: str) -> list[Code]:
        """Codes whose patterns match ``text``, in codebook order."""
        return [c for c in self.codes if any(p.search(text) for p in c.patterns)]
