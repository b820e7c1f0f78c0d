"""Small text helpers shared by loaders and coders: sentence units, language, snippets."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff]")
# A sentence ends at . ! ? (followed by space or end) or at a CJK full stop / mark. A match is
# the mark that ends a sentence and the space after it (the space belongs to no sentence).
_SPLIT = re.compile(r"[.!?]\s+(?=\S)|[。！？；]")


def is_chinese(text: str) -> bool:
    """True when ``text`` contains CJK ideographs (the reason is then written in Chinese)."""
    return bool(_CJK.search(text))


def sentence_units(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentence units; return (start, end) character spans.

    >>> t = "Hello there. Would you donate? 好的。谢谢"
    >>> [t[a:b] for a, b in sentence_units(t)]
    ['Hello there.', 'Would you donate?', '好的。', '谢谢']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SPLIT.finditer(text):
        _add_stripped(spans, text, start, m.start() + 1)
        start = m.end()
    _add_stripped(spans, text, start, len(text))
    return spans


def _add_stripped(spans: list[tuple[int, int]], text: str, a: int, b: int) -> None:
    """Append the span of ``text[a:b]`` without its surrounding whitespace, unless it is blank."""
    piece = text[a:b].lstrip()
    if piece:
        a = b - len(piece)
        spans.append((a, a + len(piece.rstrip())))


def snippet(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
