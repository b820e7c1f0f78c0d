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
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from graph.model import Event, Evidence
from ingest.codebook import Code, Codebook
from ingest.text import is_chinese, snippet

log = logging.getLogger(__name__)

NON_STRATEGY = "non-strategy"


@dataclass(frozen=True)
class Unit:
    """One sentence unit to code, with the context the text coder uses."""

    text: str
    prev_text: str = ""  # what the other party said just before
    turn: int = 0
    index_in_turn: int = 0


def _position_features(units: Sequence[Unit]) -> sp.csr_matrix:
    rows = []
    for u in units:
        t = min(u.turn, 12)
        onehot = [1.0 if t == k else 0.0 for k in range(13)]
        rows.append(onehot + [1.0 if u.index_in_turn == 0 else 0.0, min(u.index_in_turn, 5) / 5.0])
    return sp.csr_matrix(np.asarray(rows, dtype=np.float64))


class TextCoder:
    """A text classifier for behaviour codes, following the scikit-learn estimator contract.

    Features: word 1–2-grams and character 2–5-grams of the unit (Chinese text works through
    the character n-grams), word n-grams of the other party's previous utterance, and the
    unit's position (turn number, place in the turn). Classifier: class-balanced logistic
    regression, whose probabilities become evidence confidence.

    Parameters
    ----------
    C:
        Inverse regularisation strength of the logistic regression.
    context:
        Whether to use the previous utterance and the position features.
    random_state:
        Seed for the solver; the coder is deterministic for a given seed and data.
    """

    def __init__(self, C: float = 4.0, context: bool = True, random_state: int = 0) -> None:
        self.C = C
        self.context = context
        self.random_state = random_state

    def _features(self, units: Sequence[Unit], fit: bool) -> sp.csr_matrix:
        texts = [u.text for u in units]
        if fit:
            self.word_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
            self.char_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
            blocks = [self.word_.fit_transform(texts), self.char_.fit_transform(texts)]
            if self.context:
                self.prev_ = TfidfVectorizer(ngram_range=(1, 1), min_df=2, sublinear_tf=True)
                blocks.append(0.5 * self.prev_.fit_transform([u.prev_text or "<start>" for u in units]))
        else:
            blocks = [self.word_.transform(texts), self.char_.transform(texts)]
            if self.context:
                blocks.append(0.5 * self.prev_.transform([u.prev_text or "<start>" for u in units]))
        if self.context:
            blocks.append(_position_features(units))
        return sp.hstack(blocks, format="csr")

    def fit(self, units: Sequence[Unit], labels: Sequence[str]) -> TextCoder:
        if len(units) != len(labels):
            raise ValueError(f"{len(units)} units but {len(labels)} labels")
        X = self._features(units, fit=True)
        self.model_ = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=3000, random_state=self.random_state
        )
        self.model_.fit(X, list(labels))
        self.classes_ = list(self.model_.classes_)
        return self

    def predict_proba(self, units: Sequence[Unit]) -> np.ndarray:
        return self.model_.predict_proba(self._features(units, fit=False))

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
