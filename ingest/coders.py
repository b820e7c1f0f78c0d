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
from operator import attrgetter, not_
from typing import Any

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
# Strings are tokenised together, joined by a separator holding a token (two runic letters)
# that no string holds: the tokens between two separators are one string's. In text without
# CJK ideographs, _TOKEN's words are runs of two or more word characters.
_SENTINEL = "\u16a0\u16a0"
_SEPARATOR = f" {_SENTINEL} "
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORDS_NOT_CJK = re.compile(r"\w{2,}")
_CONTEXT_FIELDS = ("prev_text", "next_text", "prev_own_text", "next_own_text", "prev_turn_text")
_MAX_TURN = 12
_NUMBERS = attrgetter("turn", "index_in_turn", "dialogue_turns")
_NEXT_OWN = attrgetter("next_own_text")
_TEXT_BLOCKS = 2  # the unit's own text: word n-grams, character n-grams


def _distinct(docs: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct strings of ``docs`` in order of first appearance, and each doc's index among them."""
    index = {d: i for i, d in enumerate(dict.fromkeys(docs))}
    inverse = np.fromiter(map(index.__getitem__, docs), dtype=np.int64, count=len(docs))
    return list(index), inverse


def _char_wb(word: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's ``char_wb`` n-grams of one word (padded with a space each side)."""
    w = f" {word} "
    if len(w) < lo:  # a word shorter than the shortest n-gram counts once, whole
        return [w]
    return [w[i : i + n] for n in range(lo, min(hi, len(w)) + 1) for i in range(len(w) - n + 1)]


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (a lone surrogate included), one per character."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class _GramCodes:
    """A ``char_wb`` vocabulary as integer codes, to find the known n-grams of many words at
    once with array operations: a character is its rank in the vocabulary's alphabet (0 for a
    character no n-gram has), an n-gram the ranks of its characters side by side in ``bits``
    bits each. A code never stands for two n-grams (ranks start at 1, so lengths differ too).

    Where the vocabulary holds the prefix of each of its n-grams longer than ``lo`` (as one
    learnt with a minimum document frequency does: a prefix is in every document its n-gram
    is), an n-gram is looked up only when its prefix was found."""

    def __init__(self, vocabulary: dict[str, int], bits: int, alphabet: np.ndarray, lo: int) -> None:
        self.bits = bits
        self.rank = np.zeros(int(alphabet[-1]) + 2, dtype=np.int32)  # by code point; the last: any other
        self.rank[alphabet] = np.arange(1, len(alphabet) + 1)
        self.prefix_closed = all(g[:-1] in vocabulary for g in vocabulary if len(g) > lo)
        rank = {chr(c): i + 1 for i, c in enumerate(alphabet.tolist())}
        codes = {}
        for gram, col in vocabulary.items():
            code = 0
            for ch in gram:
                code = (code << bits) | rank[ch]
            codes[code] = col
        self.keys = np.array(sorted(codes), dtype=np.int64)
        self.cols = np.array([codes[k] for k in self.keys.tolist()], dtype=np.int64)

    @staticmethod
    def build(vocabulary: dict[str, int], lo: int, hi: int) -> _GramCodes | None:
        """The codes of ``vocabulary`` (n-grams of ``lo`` to ``hi`` characters), or None when they
        would not fit in 63 bits (a very large alphabet) or there is no n-gram."""
        alphabet = np.array(sorted({ord(ch) for gram in vocabulary for ch in gram}), dtype=np.int64)
        bits = max(1, len(alphabet).bit_length())
        if not len(alphabet) or bits * hi > 63 or any(not lo <= len(g) <= hi for g in vocabulary):
            return None
        return _GramCodes(vocabulary, bits, alphabet, lo)

    def table(self, words: list[str], lo: int, hi: int, n_cols: int) -> sp.csr_matrix:
        """Word × n-gram counts of ``words`` in the vocabulary: :meth:`_Tfidf._char_table`'s
        matrix, element for element (it has no word shorter than ``lo - 2`` characters)."""
        padded = [f" {w} " for w in words]
        lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
        cp = _code_points("".join(padded)).astype(np.int64)
        rank = self.rank[np.minimum(cp, len(self.rank) - 1)].astype(np.int64)
        room = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(cp))  # characters left in the word
        word = np.repeat(np.arange(len(words)), lengths)
        rows, cols = [], []
        code, known = rank, rank > 0  # the n-grams starting at each position, n = 1 first
        for n in range(1, hi + 1):
            if n > 1:
                code = (code[:-1] << self.bits) | rank[n - 1 :]
                known = known[:-1] & (rank[n - 1 :] > 0)
            if n < lo:
                continue
            ok = np.flatnonzero(known & (room[: len(code)] >= n))
            found = np.minimum(np.searchsorted(self.keys, code[ok]), len(self.keys) - 1)
            hit = self.keys[found] == code[ok]
            at = ok[hit]
            rows.append(word[at])
            cols.append(self.cols[found[hit]])
            if self.prefix_closed:  # only the n-grams found can begin a longer one that is known
                known = np.zeros(len(known), dtype=bool)
                known[at] = True
        r, c = np.concatenate(rows), np.concatenate(cols)
        return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(words), n_cols))


class _Tfidf:
    """scikit-learn's ``TfidfVectorizer(min_df=2, sublinear_tf=True)`` — the same vocabulary, idf
    and values — for word 1–2-grams of :data:`_TOKEN` (``analyzer="word"``) or character n-grams
    within words (``"char_wb"``), with a transform that looks each word up once: a document's
    counts are its words' counts (``char_wb``: a sparse product with a word × n-gram table)."""

    def __init__(self, analyzer: str, ngram_range: tuple[int, int]) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}  # caches are rebuilt

    def _pieces(self, doc: str) -> list[str]:
        return doc.lower().split() if self.analyzer == "char_wb" else _WORDS.findall(doc.lower())

    def fit(self, docs: Sequence[str]) -> _Tfidf:
        """Learn vocabulary and idf as scikit-learn does (``ValueError`` if no term is left)."""
        self.__dict__.pop("_codes", None)  # a cache of the vocabulary fitted before
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

    def _new_word_table(self, words: list[str]) -> sp.csr_matrix:
        """:meth:`_char_table` of words not seen in training, with array operations."""
        lo, hi = self.ngram_range
        if not hasattr(self, "_codes"):  # built at the first call
            self._codes = _GramCodes.build(self.vocabulary_, lo, hi)
        codes = self._codes
        if codes is None or not words or lo > 3:  # (``_char_table`` counts a word shorter than lo whole)
            return self._char_table(words)
        return codes.table(words, lo, hi, len(self.vocabulary_))

    def _counts(self, pieces: list[list[str]]) -> sp.csr_matrix:
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        rows = np.repeat(np.arange(len(pieces)), lengths)
        n_known = len(self.pieces_)
        flat = list(chain.from_iterable(pieces))
        ids = np.fromiter(map(self.pieces_.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        if self.analyzer == "char_wb":  # words not seen in training get rows after the table's
            unseen = np.flatnonzero(ids < 0)
            new, inverse = _distinct([flat[i] for i in unseen])
            ids[unseen] = n_known + inverse
            table = self.table_
            if new:
                extra = self._new_word_table(new)
                table = sp.csr_matrix((np.concatenate([table.data, extra.data]),
                                       np.concatenate([table.indices, extra.indices]),
                                       np.concatenate([table.indptr, extra.indptr[1:] + table.indptr[-1]])),
                                      shape=(table.shape[0] + extra.shape[0], table.shape[1]))
            words = sp.csr_matrix((np.ones(len(ids)), (rows, ids)), shape=(len(pieces), table.shape[0]))
            return sp.csr_matrix(words @ table)
        return self._word_counts(ids, rows, len(pieces))

    def _word_counts(self, ids: np.ndarray, rows: np.ndarray, n_docs: int) -> sp.csr_matrix:
        """Word n-gram counts of ``n_docs`` documents from their tokens' ids in :attr:`pieces_`
        (-1 for a token no n-gram has), in document order, and each token's document."""
        shape = (n_docs, len(self.vocabulary_))
        n_known = len(self.pieces_)
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
        return self._tfidf(self._counts(pieces if pieces is not None else [self._pieces(d) for d in docs]))

    def _tfidf(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """Counts to TF-IDF values, in place."""
        np.log(x.data, out=x.data)
        x.data += 1.0
        x.data *= self.idf_[x.indices]
        lengths = np.diff(x.indptr)
        squares = np.append(x.data * x.data, 0.0)  # the extra zero is the sum of trailing empty rows
        norms = np.sqrt(np.add.reduceat(squares, x.indptr[:-1])) if len(lengths) else np.zeros(0)
        x.data /= np.repeat(np.where(lengths > 0, norms, 1.0), lengths)
        return x


def _cue_matrix(texts: list[str]) -> np.ndarray:
    """Per text, as a row (computed a column at a time): a question mark, a digit, a currency
    sign (1.0 or 0.0), and the length up to 200 characters over 200."""
    out = np.empty((len(texts), 4))
    out[:, 0] = [("?" in t or "？" in t) for t in texts]
    digit, money = _DIGIT.search, _MONEY.search
    out[:, 1] = [digit(t) is not None for t in texts]
    out[:, 2] = [money(t) is not None for t in texts]
    out[:, 3] = np.minimum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), 200) / 200.0
    return out


def _position_matrix(units: Sequence[Unit], texts: tuple[list[str], np.ndarray] | None = None) -> np.ndarray:
    """Dense cues: turn number, place in the turn and the dialogue, question, figures, length;
    ``texts``, if given, are the units' distinct texts and each unit's index among them."""
    n = len(units)
    numbers = np.array(list(map(_NUMBERS, units)), dtype=np.float64).reshape(n, 3)
    turn, index, turns = numbers[:, 0], numbers[:, 1], numbers[:, 2]
    last_unit = np.fromiter(map(not_, map(_NEXT_OWN, units)), dtype=np.float64, count=n)
    distinct, inverse = texts if texts is not None else _distinct([u.text for u in units])
    cues = _cue_matrix(distinct)[inverse]
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
        self.__dict__.pop("_tokens", None)  # a cache of the vocabularies fitted before
        texts = [u.text for u in units]
        self.text_ = [_Tfidf("word", (1, 2)).fit(texts), _Tfidf("char_wb", (2, 5)).fit(texts)]
        self.context_: dict[str, _Tfidf] = {}
        for name in _CONTEXT_FIELDS if self.context else ():
            try:
                self.context_[name] = _Tfidf("word", (1, 1)).fit([getattr(u, name) for u in units])
            except ValueError:  # no context of this kind in the training units
                pass
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}  # caches are rebuilt

    def _token_ids(self) -> tuple[dict[str, int], dict[str, int], list[np.ndarray]]:
        """Every token of the word vocabularies (the text's, then each context field's) numbered
        once, the same with the separator's token (:data:`_SENTINEL`) numbered last, and per
        vocabulary an array from that number to the token's id in its ``pieces_`` (-1 where it
        has none; the last two numbers: a token no vocabulary has, the separator)."""
        cached: tuple[dict[str, int], dict[str, int], list[np.ndarray]] | None = getattr(self, "_tokens", None)
        if cached is None:
            vecs = [self.text_[0], *self.context_.values()]
            ids = {t: i for i, t in enumerate(sorted(set().union(*(v.pieces_ for v in vecs))))}
            n = len(ids)
            local = []
            for v in vecs:
                to_local = np.full(n + 2, -1, dtype=np.int64)
                to_local[np.fromiter(map(ids.__getitem__, v.pieces_), dtype=np.int64, count=len(v.pieces_))] = list(
                    v.pieces_.values())
                local.append(to_local)
            cached = self._tokens = ids, {**ids, _SENTINEL: n + 1}, local
        return cached

    def _tokenise(self, lowered: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The word tokens (:data:`_TOKEN`) of the lower-cased strings ``lowered`` by their number
        in :meth:`_token_ids`, all in one array, and where each string's begin (one more: the end)."""
        ids, with_separator, local = self._token_ids()
        unknown, separator = len(local[0]) - 2, len(local[0]) - 1
        joined = _SEPARATOR.join(lowered)
        if joined.count(_SENTINEL) == max(len(lowered) - 1, 0):  # no string holds the separator's token
            tokens = (_WORDS_NOT_CJK if _CJK.search(joined) is None else _WORDS).findall(joined)
            number = np.fromiter(map(with_separator.get, tokens, repeat(unknown)), dtype=np.int64, count=len(tokens))
            is_separator = number == separator
            lengths = np.bincount(np.cumsum(is_separator)[~is_separator], minlength=len(lowered))
            number = number[~is_separator]
        else:
            pieces = [_WORDS.findall(s) for s in lowered]
            lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
            flat = list(chain.from_iterable(pieces))
            number = np.fromiter(map(ids.get, flat, repeat(unknown)), dtype=np.int64, count=len(flat))
        return number, np.concatenate([[0], np.cumsum(lengths)])

    def blocks(self, units: Sequence[Unit]) -> list[tuple[sp.csr_matrix | np.ndarray, np.ndarray]]:
        """Per block, its rows for the distinct strings of its field and each unit's row among them.

        Every distinct string of the text and context fields is tokenised once, its tokens
        looked up once (:meth:`_tokenise`); a field's counts are then taken from those tokens by
        array operations, with the values :meth:`_Tfidf.transform` gives."""
        names = ["text", *self.context_] if self.context else ["text"]
        columns = [list(map(attrgetter(name), units)) for name in names]
        strings = list(dict.fromkeys(chain.from_iterable(columns)))  # the distinct texts come first
        where = {s: i for i, s in enumerate(strings)}
        number = [np.fromiter(map(where.__getitem__, c), dtype=np.int64, count=len(units)) for c in columns]
        texts_inverse = number[0]
        texts = strings[: int(texts_inverse.max()) + 1] if len(units) else []
        lowered = list(map(str.lower, strings))
        tokens, starts = self._tokenise(lowered)
        local = self._token_ids()[2]
        word, char = self.text_

        def counts(vec: _Tfidf, to_local: np.ndarray, rows: np.ndarray) -> sp.csr_matrix:
            lengths = starts[rows + 1] - starts[rows]
            ends = np.cumsum(lengths)
            at = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(starts[rows] - (ends - lengths), lengths)
            return vec._tfidf(vec._word_counts(to_local[tokens[at]], np.repeat(np.arange(len(rows)), lengths), len(rows)))

        out: list[tuple[sp.csr_matrix | np.ndarray, np.ndarray]] = [
            (counts(word, local[0], np.arange(len(texts))), texts_inverse),
            (char.transform(texts, [s.split() for s in lowered[: len(texts)]]), texts_inverse)]
        if not self.context:
            return out
        for vec, to_local, inverse in zip(self.context_.values(), local[1:], number[1:], strict=True):
            rows, inverse = np.unique(inverse, return_inverse=True)
            out.append((self.context_weight * counts(vec, to_local, rows), inverse))
        out.append((_position_matrix(units, (texts, texts_inverse)), np.arange(len(units))))
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
