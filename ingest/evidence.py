"""Evidence items with their readable reasons, level signals, and the rule coder.

The ``rules`` coder matches the codebook's bilingual regular expressions; :func:`evidence_for`
builds the evidence item every coder writes (the text coder lives in :mod:`ingest.coders`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import groupby

from graph.model import Event, Evidence, make
from ingest.codebook import Code, Codebook
from ingest.text import is_chinese, snippet


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
    return make(Evidence, {  # every field, in order: made without __init__
        "id": f"ev:{event.id}:{code.code}:{start if start is not None else 0}",
        "event_id": event.id,
        "rep_id": event.rep_id,
        "skill_id": code.skill,
        "code": code.code,
        "level": level,
        "polarity": code.polarity,
        "confidence": round(float(confidence), 4),
        "credibility": codebook.credibility(credibility_source or event.source),
        "coder": coder,
        "codebook_version": codebook.version,
        "reason": reason,
        "span_start": start,
        "span_end": span[1] if span else None,
        "at": event.at,
        "state": "suggested",
    })


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


# a back-reference or a conditional names a group by its number or name, which joining shifts
_REFERS_TO_GROUP = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


def union_pattern(codes: Iterable[Code]) -> re.Pattern[str]:
    """One expression that matches a text wherever a pattern of ``codes`` does.

    One search then tells that a text matches no code at all (most sentences), instead of a
    search per pattern. The patterns are joined as alternatives; those that begin alike (the
    codebook's English patterns all begin with ``\\b``) are joined in one group, so that the
    regular expression engine tests their common beginning once per position rather than once
    per pattern. Where joining could change what a pattern means (patterns compiled with
    different flags or in verbose mode, back-references), the result matches every text, and
    callers simply test each pattern.

    >>> from types import SimpleNamespace as Ns
    >>> rx = union_pattern([Ns(patterns=(re.compile(r"\\bwhy not\\b", re.I), re.compile("顾虑", re.I)))])
    >>> [bool(rx.search(t)) for t in ("WHY NOT?", "somewhy not", "有什么顾虑", "Sure.")]
    [True, False, True, False]
    """
    patterns = [p for c in codes for p in c.patterns]
    flags = {p.flags for p in patterns}
    if len(flags) != 1 or any(_REFERS_TO_GROUP.search(p.pattern) for p in patterns):
        return re.compile("")
    flag = flags.pop()
    if flag & re.VERBOSE:  # a comment would swallow the patterns joined after it
        return re.compile("")
    sources = sorted({p.pattern for p in patterns})  # those that begin alike side by side
    groups = ["(?:" + "|".join(same) + ")" for _, same in groupby(sources, key=lambda src: src[:2])]
    try:
        return re.compile("|".join(groups), flag)
    except re.error:  # e.g. a global flag inside a pattern, two groups of the same name
        return re.compile("")


class RuleCoder:
    """Codes sentence units with the codebook's bilingual patterns."""

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.codes = [c for c in codebook.codes.values() if c.patterns and c.event_type is None]
        self._any = union_pattern(self.codes)

    def match(self, text: str) -> list[Code]:
        """Codes whose patterns match ``text``, in codebook order."""
        if not self._any.search(text):
            return []
        return [c for c in self.codes if any(p.search(text) for p in c.patterns)]
