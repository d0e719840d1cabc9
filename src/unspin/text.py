"""Plain-text facts every stage shares: what a line break is and what counts as blank."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["LINE_BREAK", "blank_trimmed", "is_blank", "lines"]

# a line break of any kind str.splitlines() knows; CRLF is one break, a lone CR another
LINE_BREAK = re.compile(r"\r\n|\r(?!\n)|[\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def is_blank(ch: str) -> bool:
    """Whitespace of any kind, or an invisible format character (zero-width space, BOM, LRM,
    soft hyphen)."""
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def blank_trimmed(text: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """``(start, end)`` narrowed past blanks (``is_blank``) at both ends."""
    end = len(text) if end is None else end
    while start < end and is_blank(text[start]):
        start += 1
    while end > start and is_blank(text[end - 1]):
        end -= 1
    return start, end


def lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) for each line of ``text``, split at any line break."""
    out, pos = [], 0
    for m in LINE_BREAK.finditer(text):
        out.append((pos, text[pos : m.start()]))
        pos = m.end()
    out.append((pos, text[pos:]))
    return out
