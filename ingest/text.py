"""Small text helpers shared by loaders and coders: sentence units, language, snippets."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff]")
# A sentence ends at . ! ? (followed by space or end) or at a CJK full stop / mark.
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？；])")


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
        end = m.start()
        if text[start:end].strip():
            spans.append(_strip(text, start, end))
        start = m.end()
    if text[start:].strip():
        spans.append(_strip(text, start, len(text)))
    return spans


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def snippet(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
