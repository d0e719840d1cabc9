"""Sentence and quotation splitting: regex/line based, offsets into the original text.

Every range is a ``(start, end)`` pair of code-point offsets (``end`` exclusive) into the text
given, so spans, sentences and quotations can be compared directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from unspin.text import blank_trimmed, lines

__all__ = [
    "find_quotes",
    "inside_share",
    "region_of",
    "sentence_of",
    "split_sentences",
]


_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr gen col lt sgt capt maj cmdr adm gov sen rep pres vs etc "
    "inc ltd co corp no nos fig approx dept est jan feb mar apr jun jul aug sep sept oct nov "
    "dec mt ft rev hon e.g i.e u.s u.k u.n a.m p.m".split()
)
# Sentence end: terminal punctuation, then optional closing quotes/brackets, then whitespace.
_SENT_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]\u00bb]*(?=\s)")
# What may stand between a sentence end and the next sentence's first letter: space, then
# opening quotes, brackets or dashes.
_NEXT_START = re.compile(r"\s+[\"'\u201c\u2018(\[\u00ab\-\u2014]*")


def _starts_sentence(ch: str) -> bool:
    """A next sentence starts with a capital of any script (Latin, Greek, Cyrillic...), a digit
    or a letter of a script without case (Arabic, Chinese...); not with a small letter."""
    return ch.isupper() or ch.isdigit() or (ch.isalpha() and ch.lower() == ch.upper())


_WORD_BEFORE = re.compile(r"([A-Za-z.]+)$")


def _is_abbreviation(line: str, dot: int) -> bool:
    """Whether the '.' at ``dot`` ends an abbreviation such as 'Mr.' or 'U.S.' or 'J.'."""
    # the word before the dot, looked for in the last 64 characters first (abbreviations are
    # short), so that a long line with many full stops is not read again for each one; only a
    # run of letters and dots filling all 64 is followed further back
    lo = max(0, dot - 64)
    m = _WORD_BEFORE.search(line, lo, dot)
    if m and m.start() == lo > 0:
        m = _WORD_BEFORE.search(line, 0, dot)
    if not m:
        return False
    word = m.group(1).lower().strip(".")
    if word in _ABBREVIATIONS:
        return True
    return len(word) == 1 and line[dot - 1].isupper()  # an initial: "J. Smith"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentence ranges ``(start, end)``, whitespace trimmed.

    Every line break ends a sentence (headlines and paragraphs stay apart); inside a line a
    sentence ends at ``.``, ``!``, ``?`` or ``...`` (plus closing quotes) followed by space,
    any opening quotes or brackets, and a capital letter of any script, a digit or a letter of a
    script without case - except after common abbreviations.
    """
    out: list[tuple[int, int]] = []
    for base, line in lines(text):
        start = 0
        for m in _SENT_END.finditer(line):
            end = m.end()
            nxt = _NEXT_START.match(line, end)
            if not nxt or nxt.end() >= len(line) or not _starts_sentence(line[nxt.end()]):
                continue
            if (
                line[m.start()] == "."
                and m.end() - m.start() == 1
                and _is_abbreviation(line, m.start())
            ):
                continue
            _add_range(out, line, base, start, end)
            start = end
        _add_range(out, line, base, start, len(line))
    return out


def _add_range(out: list[tuple[int, int]], line: str, base: int, start: int, end: int) -> None:
    start, end = blank_trimmed(line, start, end)
    if end > start:
        out.append((base + start, base + end))


# --------------------------------------------------------------------------- quotations


_OPENERS = {"\u201c": '\u201d"', '"': '"\u201d', "\u00ab": "\u00bb", "\u201e": "\u201c\u201d"}


def find_quotes(text: str) -> list[tuple[int, int]]:
    """Ranges of direct quotations, quote marks included.

    Handles straight ``"..."``, curly ``\u201c...\u201d``, ``\u201e...\u201c``, guillemets and
    curly single quotes ``\u2018...\u2019`` (a ``\u2019`` followed by a letter is an apostrophe).
    A quotation left open at the end of a paragraph runs to the end of that paragraph, as
    multi-paragraph quotes do in news style.
    """
    out: list[tuple[int, int]] = []
    for base, line in lines(text):
        closers: str | None = None
        opened = 0
        for i, ch in enumerate(line):
            if closers is None:
                if ch in _OPENERS:
                    closers, opened = _OPENERS[ch], i
                elif ch == "\u2018" and (i == 0 or not line[i - 1].isalnum()):
                    closers, opened = "\u2019", i
            elif ch in closers:
                if closers == "\u2019" and i + 1 < len(line) and line[i + 1].isalpha():
                    continue  # an apostrophe inside a single-quoted passage
                out.append((base + opened, base + i + 1))
                closers = None
        if closers is not None and line[opened + 1 :].strip():
            out.append((base + opened, base + len(line.rstrip())))
    return out


def inside_share(start: int, end: int, regions: Sequence[tuple[int, int]]) -> float:
    """The share of ``[start, end)`` that lies inside ``regions``."""
    inside = sum(max(0, min(end, b) - max(start, a)) for a, b in regions)
    return inside / max(1, end - start)


def region_of(pos: int, regions: Sequence[tuple[int, int]]) -> int:
    """Index of the quotation containing ``pos``, or -1."""
    for k, (a, b) in enumerate(regions):
        if a <= pos < b:
            return k
    return -1


def sentence_of(pos: int, sentences: Sequence[tuple[int, int]]) -> int:
    """Index of the sentence containing ``pos`` (or the next one, or the last one)."""
    lo, hi = 0, len(sentences)
    while lo < hi:  # first sentence whose end > pos
        mid = (lo + hi) // 2
        if sentences[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, len(sentences) - 1)
