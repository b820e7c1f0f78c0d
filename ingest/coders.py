"""Behaviour coders: turn events into skill evidence against the BEC codebook.

Three coders, each recorded on the evidence it writes:

- ``rules``: bilingual regular expressions from the codebook and event-type rules (CRM stage
  changes, xAPI verbs) — :class:`ingest.evidence.RuleCoder`;
- ``text``: a scikit-learn text classifier trained on human-annotated utterances
  (:class:`TextCoder`, this module);
- ``annotation``: a human annotator's label carried in the source data.

:func:`ingest.evidence.evidence_for` builds the evidence item each of them writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

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
_WORDS = re.compile(_TOKEN)
_DIGIT = re.compile(r"\d")
_MONEY = re.compile("[$¥￥€£元]")
_CONTEXT_FIELDS = ("prev_text", "next_text", "prev_own_text", "next_own_text", "prev_turn_text")
_MAX_TURN = 12
_TEXT_BLOCKS = 2  # the unit's own text: word n-grams, character n-grams


def _distinct(docs: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct strings of ``docs`` in order of first appearance, and each doc's index among them."""
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(d, len(index)) for d in docs), dtype=np.int64, count=len(docs))
    return list(index), inverse


def _char_wb(word: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's ``char_wb`` n-grams of one word (padded with a space each side)."""
    w = f" {word} "
    if len(w) < lo:  # a word shorter than the shortest n-gram counts once, whole
        return [w]
    return [w[i : i + n] for n in range(lo, min(hi, len(w)) + 1) for i in range(len(w) - n + 1)]


class _Tfidf:
    """scikit-learn's ``TfidfVectorizer(min_df=2, sublinear_tf=True)`` — the same vocabulary, idf
    and values — for word 1–2-grams of :data:`_TOKEN` (``analyzer="word"``) or character n-grams
    within words (``"char_wb"``), with a transform that looks each word up once: a document's
    counts are its words' counts (``char_wb``: a sparse product with a word × n-gram table)."""

    def __init__(self, analyzer: str, ngram_range: tuple[int, int]) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range

    def _pieces(self, doc: str) -> list[str]:
        return doc.lower().split() if self.analyzer == "char_wb" else _WORDS.findall(doc.lower())

    def fit(self, docs: Sequence[str]) -> _Tfidf:
        """Learn vocabulary and idf as scikit-learn does (``ValueError`` if no term is left)."""
        kw = {"token_pattern": _TOKEN} if self.analyzer == "word" else {}
        vec = TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range, min_df=2, sublinear_tf=True, **kw)
        vec.fit(docs)
        self.vocabulary_: dict[str, int] = {str(f): int(i) for f, i in vec.vocabulary_.items()}
        self.idf_ = vec.idf_
        if self.analyzer == "char_wb":
            words = sorted({w for d in set(docs) for w in self._pieces(d)})
            self.pieces_ = {w: i for i, w in enumerate(words)}
            self.table_ = self._char_table(words)
            return self
        tokens = sorted({t for f in self.vocabulary_ for t in f.split(" ")})
        self.pieces_ = {t: i for i, t in enumerate(tokens)}
        self.unigrams_ = np.full(len(tokens), -1, dtype=np.int64)
        pairs = [(f.split(" "), i) for f, i in self.vocabulary_.items()]
        for parts, i in pairs:
            if len(parts) == 1:
                self.unigrams_[self.pieces_[parts[0]]] = i
        codes = {self.pieces_[p[0]] * len(tokens) + self.pieces_[p[1]]: i for p, i in pairs if len(p) == 2}
        self.bigram_codes_ = np.array(sorted(codes), dtype=np.int64)
        self.bigrams_ = np.array([codes[c] for c in self.bigram_codes_.tolist()], dtype=np.int64)
        return self

    def _char_table(self, words: list[str]) -> sp.csr_matrix:
        """Word × n-gram counts of ``words`` (n-grams outside the vocabulary dropped)."""
        lo, hi = self.ngram_range
        grams = [_char_wb(w, lo, hi) for w in words]
        lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(words))
        cols = np.fromiter(map(self.vocabulary_.get, chain.from_iterable(grams), repeat(-1)), dtype=np.int64,
                           count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(words)), lengths)
        keep = cols >= 0
        return sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(len(words), len(self.vocabulary_)))

    def _counts(self, pieces: list[list[str]]) -> sp.csr_matrix:
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        rows = np.repeat(np.arange(len(pieces)), lengths)
        shape = (len(pieces), len(self.vocabulary_))
        n_known = len(self.pieces_)
        flat = list(chain.from_iterable(pieces))
        ids = np.fromiter(map(self.pieces_.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        if self.analyzer == "char_wb":  # words not seen in training get rows after the table's
            unseen = np.flatnonzero(ids < 0)
            new, inverse = _distinct([flat[i] for i in unseen])
            ids[unseen] = n_known + inverse
            table = sp.vstack([self.table_, self._char_table(new)], format="csr") if new else self.table_
            words = sp.csr_matrix((np.ones(len(ids)), (rows, ids)), shape=(len(pieces), table.shape[0]))
            return sp.csr_matrix(words @ table)
        known = ids >= 0
        uni = np.where(known, self.unigrams_[np.where(known, ids, 0)], -1)
        r, c = [rows[uni >= 0]], [uni[uni >= 0]]
        if len(self.bigram_codes_) and len(ids) > 1:
            a, b = ids[:-1], ids[1:]
            pair = (rows[:-1] == rows[1:]) & known[:-1] & known[1:]
            code = a[pair] * n_known + b[pair]
            at = np.minimum(np.searchsorted(self.bigram_codes_, code), len(self.bigram_codes_) - 1)
            hit = self.bigram_codes_[at] == code
            r.append(rows[:-1][pair][hit])
            c.append(self.bigrams_[at[hit]])
        rr, cc = np.concatenate(r), np.concatenate(c)
        return sp.csr_matrix((np.ones(len(rr)), (rr, cc)), shape=shape)

    def transform(self, docs: Sequence[str], pieces: list[list[str]] | None = None) -> sp.csr_matrix:
        """TF-IDF rows of ``docs``: sublinear term frequency × idf, each row of unit length;
        ``pieces``, if given, are the docs' words as :meth:`_pieces` would split them."""
        x = self._counts(pieces if pieces is not None else [self._pieces(d) for d in docs])
        np.log(x.data, out=x.data)
        x.data += 1.0
        x.data *= self.idf_[x.indices]
        lengths = np.diff(x.indptr)
        squares = np.append(x.data * x.data, 0.0)  # the extra zero is the sum of trailing empty rows
        norms = np.sqrt(np.add.reduceat(squares, x.indptr[:-1])) if len(lengths) else np.zeros(0)
        x.data /= np.repeat(np.where(lengths > 0, norms, 1.0), lengths)
        return x


def _text_cues(text: str) -> tuple[float, float, float, float]:
    return (float("?" in text or "？" in text), float(_DIGIT.search(text) is not None),
            float(_MONEY.search(text) is not None), min(len(text), 200) / 200.0)


def _position_matrix(units: Sequence[Unit]) -> np.ndarray:
    """Dense cues: turn number, place in the turn and the dialogue, question, figures, length."""
    n = len(units)
    turn = np.fromiter((u.turn for u in units), dtype=np.float64, count=n)
    index = np.fromiter((u.index_in_turn for u in units), dtype=np.float64, count=n)
    turns = np.fromiter((u.dialogue_turns for u in units), dtype=np.float64, count=n)
    last_unit = np.fromiter((not u.next_own_text for u in units), dtype=np.float64, count=n)
    texts, inverse = _distinct([u.text for u in units])
    cues = np.array([_text_cues(t) for t in texts], dtype=np.float64).reshape(len(texts), 4)[inverse]
    rel = np.where(turns > 1, turn / np.maximum(turns - 1, 1), 0.0)
    known = turns > 0
    fifth = np.minimum((rel * 5).astype(np.int64), 4)
    return np.column_stack([
        np.minimum(turn, _MAX_TURN)[:, None] == np.arange(_MAX_TURN + 1), index == 0, np.minimum(index, 5) / 5.0,
        last_unit, rel, rel * rel, known & (turn >= turns - 1),
        known[:, None] & (fifth[:, None] == np.arange(5)), cues,
    ]).astype(np.float64)


class _Featurizer:
    """The units' feature blocks, each computed once per distinct string of its field: the unit's
    own text (word 1–2-grams and character 2–5-grams); with context, word unigrams of each
    context field (scaled by ``context_weight``) and the dense cues of :func:`_position_matrix`.
    View 0 is the text blocks alone (the first :data:`_TEXT_BLOCKS`), view 1 every block."""

    def __init__(self, context: bool, context_weight: float) -> None:
        self.context = context
        self.context_weight = context_weight

    def fit(self, units: Sequence[Unit]) -> _Featurizer:
        texts = [u.text for u in units]
        self.text_ = [_Tfidf("word", (1, 2)).fit(texts), _Tfidf("char_wb", (2, 5)).fit(texts)]
        self.context_: dict[str, _Tfidf] = {}
        for name in _CONTEXT_FIELDS if self.context else ():
            try:
                self.context_[name] = _Tfidf("word", (1, 1)).fit([getattr(u, name) for u in units])
            except ValueError:  # no context of this kind in the training units
                pass
        return self

    def blocks(self, units: Sequence[Unit]) -> list[tuple[sp.csr_matrix | np.ndarray, np.ndarray]]:
        """Per block, its rows for the distinct strings of its field and each unit's row among them."""
        memo: dict[str, list[str]] = {}  # the word tokens of each string, shared by the fields

        def tokens(strings: list[str]) -> list[list[str]]:
            return [memo[s] if s in memo else memo.setdefault(s, _WORDS.findall(s.lower())) for s in strings]

        texts, inverse = _distinct([u.text for u in units])
        word, char = self.text_
        out: list[tuple[sp.csr_matrix | np.ndarray, np.ndarray]] = [
            (word.transform(texts, tokens(texts)), inverse), (char.transform(texts), inverse)]
        if not self.context:
            return out
        for name, vec in self.context_.items():
            strings, inverse = _distinct([getattr(u, name) for u in units])
            out.append((self.context_weight * vec.transform(strings, tokens(strings)), inverse))
        out.append((_position_matrix(units), np.arange(len(units))))
        return out

    def views(self, units: Sequence[Unit]) -> tuple[list[sp.csr_matrix], list[int]]:
        """The views' feature matrices (``[text]`` or ``[text, every block]``), one row per unit,
        and the width of every block."""
        rows = [sp.csr_matrix(x[inverse]) for x, inverse in self.blocks(units)]
        views = [sp.hstack(rows[:_TEXT_BLOCKS], format="csr")]
        if self.context:
            views.append(sp.hstack(rows, format="csr"))
        return views, [r.shape[1] for r in rows]


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


def _block_weights(
    views: list[tuple[np.ndarray, np.ndarray]], widths: list[int]
) -> tuple[list[np.ndarray], np.ndarray]:
    """The views' weights regrouped by feature block: per block a (block width × views·classes)
    matrix, zero where a view lacks the block (view 0 holds the text blocks only), and the
    views' intercepts side by side; a unit's stacked scores are then the sum over blocks."""
    k = len(views[0][1])
    edges = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    weights = [np.zeros((w, k * len(views))) for w in widths]
    for v, (coef, _) in enumerate(views):
        for b in range(len(widths) if v else _TEXT_BLOCKS):
            weights[b][:, v * k : (v + 1) * k] = coef[:, edges[b] : edges[b + 1]].T
    return weights, np.concatenate([intercept for _, intercept in views])


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

    Coding is fast because the views are linear: a unit's stacked scores are a sum over
    feature blocks (its text, each context field, the dense cues), and each block is computed
    once per *distinct* string of its field in the batch — the units of one turn share their
    context — with TF-IDF values equal to scikit-learn's but built from each distinct word once
    (a word's character n-grams come from a table learnt at fit). A batch therefore gives every
    unit the probabilities it would get alone. On the 14,551 PersuasionForGood units the demo
    codes, ``predict_proba`` takes about 0.45 s on one core (1.6–1.7 s before this design).

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
        self.featurizer_ = _Featurizer(self.context, self.context_weight).fit(units)
        views, widths = self.featurizer_.views(units)
        stacked, means = self._fold_scores(views, y, [u.dialogue or u.text for u in units])
        self.weights_, self.intercept_ = _block_weights(means, widths)
        with threadpool_limits(1):  # a small dense problem: threads only contend
            self.meta_ = LogisticRegression(C=self.meta_C, max_iter=3000).fit(stacked, y)
        logp = self.meta_.predict_log_proba(stacked)
        self.bias_ = _macro_f1_bias(logp, y) if self.decision == "macro-f1" else np.zeros(len(self.classes_))
        self.temperature_ = _temperature(logp + self.bias_, y)
        return self

    def predict_proba(self, units: Sequence[Unit]) -> np.ndarray:
        """Calibrated class probabilities, columns in the order of ``classes_``."""
        if not units:
            return np.zeros((0, len(self.classes_)))
        stacked = np.tile(self.intercept_, (len(units), 1))
        for (x, inverse), weights in zip(self.featurizer_.blocks(units), self.weights_, strict=True):
            stacked += (x @ weights)[inverse]
        logits = (self.meta_.predict_log_proba(stacked) + self.bias_) / self.temperature_
        return softmax(logits, axis=1)

    def predict(self, units: Sequence[Unit]) -> list[str]:
        proba = self.predict_proba(units)
        return [self.classes_[i] for i in proba.argmax(axis=1)]
