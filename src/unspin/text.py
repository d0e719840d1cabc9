"""Plain-text facts every stage shares: what a line break is and what counts as blank."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["LINE_BREAK", "blank_trimmed", "is_blank", "lines", "looks_english", "starts_with"]

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


def starts_with(text: str, prefix: str) -> bool:
    """Whether ``text`` begins with ``prefix`` once leading blanks (a BOM too) are skipped: a
    report shows a title above the text only when the text does not start with it."""
    return text.startswith(prefix, blank_trimmed(text)[0])


# the commonest English words: about 40% of the words of English news, rare in other languages
_ENGLISH = frozenset(
    "the of and to a in is that for it on with as was be by this are not but have from or they "
    "we he she you i his her their an at which will has had were been our its who would there "
    "what all more can said than if about".split()
)
# the commonest words of the languages most often mistaken for input (French, German, Spanish,
# Italian, Portuguese, Dutch, Polish, Romanian), English look-alikes ("die", "do", "care") left out
_FOREIGN = frozenset(
    "le la les des du et est une pour que qui dans sur pas au aux ce cette il elle nous vous ont "
    "sont par plus avec der das und ist nicht ein eine zu dem mit sich auf für von im auch es sie "
    "wir el los las y en del por una para se lo como más pero su al di che è della gli sono da "
    "os da das dos em um não é na het een ik te dat niet zijn voor met w z że się nie jest și "
    "în cu pe nu".split()
)
_WORD = re.compile(r"[^\W\d_]+")
ENGLISH_MIN_WORDS = 20  # shorter texts are not judged by their words


def _latin(ch: str) -> bool:
    return ch < "\u0250" or "\u1e00" <= ch <= "\u1eff"  # Basic Latin to Latin Extended-B


def looks_english(text: str) -> bool:
    """False when ``text`` is plainly not English: most of its letters outside the Latin
    script, or (from 20 words on) under 10% of its words among the commonest English words and
    more of them among the commonest words of other European languages (a list of names or
    captions has few of either, and stays English).
    unspin's models read English only; on other languages they find little, which must not
    read as "plain reporting"."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return True
    if sum(1 for ch in letters if _latin(ch)) < 0.5 * len(letters):
        return False
    words = _WORD.findall(text.lower())
    if len(words) < ENGLISH_MIN_WORDS:
        return True
    english = sum(1 for w in words if w in _ENGLISH)
    foreign = sum(1 for w in words if w in _FOREIGN)
    return english >= 0.1 * len(words) or foreign <= english
