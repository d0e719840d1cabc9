"""Decode stage: per-token probabilities -> character spans.

Window outputs are averaged per article token, then runs of tokens above a threshold become
spans, snapped outwards to whole words and stitched back to exact code-point offsets.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

from unspin.segment import Encoded, Window
from unspin.text import LINE_BREAK, is_blank

__all__ = [
    "stitch",
    "runs_to_spans",
    "snap_to_words",
    "complete_phrase",
    "split_paragraphs",
    "occurrences",
    "repetition_features",
    "span_token_range",
    "only_function_words",
]


def stitch(windows: list[Window], outputs: list[np.ndarray], n_tokens: int) -> np.ndarray:
    """Average window outputs (each (len(ids), k), CLS/SEP rows included) per article token.

    Tokens are weighted by distance from their window's edge, so the centre of a window (which
    saw context on both sides) counts more than its margins.
    """
    k = outputs[0].shape[-1]
    acc = np.zeros((n_tokens, k), dtype=np.float64)
    wsum = np.zeros((n_tokens, 1), dtype=np.float64)
    for w, out in zip(windows, outputs, strict=True):
        pos = np.arange(w.n)
        weight = (np.minimum(pos, w.n - 1 - pos) + 1.0)[:, None]
        acc[w.first : w.first + w.n] += weight * out[1 : 1 + w.n]
        wsum[w.first : w.first + w.n] += weight
    return (acc / np.maximum(wsum, 1e-9)).astype(np.float32)


_MARKS = frozenset({"Mn", "Mc", "Me"})
_JOINERS = "\u00ad\u200c\u200d"  # soft hyphen, zero-width non-joiner and joiner: inside words


def _is_word(ch: str) -> bool:
    # combining marks belong to their letter: "e\u0301" (an accent stored apart) is one letter
    # and so do the invisible characters that sit inside a word (a soft hyphen, ZWJ, ZWNJ);
    # a zero-width space, by contrast, separates words
    return ch.isalnum() or ch in "'’-" or ch in _JOINERS or unicodedata.category(ch) in _MARKS


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow [start, end) outwards so it neither starts nor ends inside a word."""
    while start > 0 and _is_word(text[start - 1]) and _is_word(text[start]):
        start -= 1
    while end < len(text) and _is_word(text[end]) and _is_word(text[end - 1]):
        end += 1
    return start, end


# closed-class English words: a span made of these alone ("will", "they are") names no technique
FUNCTION_WORDS = frozenset(
    """a an the and or but if nor so than that this these those there here it its they them
    their we our us you your he him his she her i me my who whom which what when where why how
    all any each few more most other some such only own same too very just also then once again
    of to in on at by for with from as into over under up down out off about after before above
    below between through during while because until against is are was were be been being am
    will would shall should can could may might must do does did have has had not no""".split()
)


# the endings of contractions ("they're", "it's", "we'll", "I'd", "I'm", "don't")
_CONTRACTION_TAILS = frozenset("s re ve ll d m t".split())
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")


def _function_word(word: str) -> bool:
    head, _, tail = word.replace("\u2019", "'").partition("'")
    if not tail:
        return head in FUNCTION_WORDS
    if tail not in _CONTRACTION_TAILS:
        return False
    if tail == "t" and head.endswith("n"):  # don't, isn't, can't, won't, shan't
        return head[:-1] in FUNCTION_WORDS or head in ("can", "won", "shan")
    return head in FUNCTION_WORDS


def _function_token(word: str) -> bool:
    """``_function_word`` for a word as written: "US" (the country) is not "us"."""
    return word != "US" and _function_word(word.lower())


def only_function_words(text: str) -> bool:
    """True when ``text`` has no word outside ``FUNCTION_WORDS`` (or no word at all);
    contractions of function words ("they're", "don't") count as function words, "US" does
    not."""
    return all(_function_token(w) for w in _WORD.findall(text))


def runs_to_spans(
    text: str,
    enc: Encoded,
    prob: np.ndarray,
    threshold: float,
    *,
    begin: np.ndarray | None = None,
    min_chars: int = 3,
    max_gap: int = 0,
    sentences: bool = False,
    extend: float | None = None,
    complete: int = 0,
) -> list[tuple[int, int, float]]:
    """Maximal runs of tokens with ``prob > threshold`` -> (start, end, mean prob) char spans.

    ``begin`` (optional, per token) splits a run where a new span clearly begins.
    Runs separated by at most ``max_gap`` tokens below threshold are joined. ``extend`` (a
    lower threshold, hysteresis) grows each run over its neighbours with ``prob > extend``, up
    to the next run. With ``sentences``, spans are also cut where a sentence ends inside them.
    ``complete`` > 0: a span ending on a function word takes up to that many more words
    (``complete_phrase``).
    """
    above = prob > threshold
    spans: list[tuple[int, int]] = []
    i, n = 0, len(prob)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i + 1
        while j < n:
            if above[j]:
                if begin is not None and begin[j] > 0.5 and begin[j] > prob[j] - begin[j]:
                    break
                j += 1
                continue
            gap_end = j
            while gap_end < n and not above[gap_end] and gap_end - j < max_gap:
                gap_end += 1
            if gap_end < n and above[gap_end] and gap_end - j <= max_gap and max_gap > 0:
                j = gap_end
                continue
            break
        spans.append((i, j))
        i = j
    if extend is not None and extend < threshold:
        grown: list[tuple[int, int]] = []
        for k, (a, b) in enumerate(spans):
            lo = grown[-1][1] if grown else 0
            hi = spans[k + 1][0] if k + 1 < len(spans) else n
            while a > lo and prob[a - 1] > extend:
                a -= 1
            while b < hi and prob[b] > extend:
                b += 1
            grown.append((a, b))
        spans = grown
    out: list[tuple[int, int, float]] = []
    for a, b in spans:
        s, e = snap_to_words(text, int(enc.offsets[a, 0]), int(enc.offsets[b - 1, 1]))
        score = float(prob[a:b].mean())
        for ps, pe in split_paragraphs(text, s, e):
            cuts = split_sentences(text, ps, pe) if sentences else [(ps, pe)]
            for cs, ce in cuts:
                ce = complete_phrase(text, cs, ce, complete) if complete else ce
                if ce - cs >= min_chars:
                    out.append((cs, ce, score))
    return _merge_overlaps(out, text if complete else None)


_TOKEN = re.compile(r"\S+")
_TOKEN_TAIL = re.compile(
    r"[,;:!?)\]}\"'”’»…]+$|\.{2,}[\"'”’)\]]*$|(?<![.\d\W][A-Za-z])(?<!\.\w)\.$"
)


def complete_phrase(text: str, start: int, end: int, max_words: int = 3) -> int:
    """The end of a span that stops on a function word ("the great victory of our"), moved
    over the next words of the same clause until one is not a function word ("... of our
    people"), at most ``max_words`` of them. A word is a whole token ("U.S.", "1,000", "9/11",
    "US/NATO"); a line break, a token that opens with punctuation (a quote, a bracket) or one
    that ends a clause (its trailing comma or full stop stays out) stops it."""
    words = _WORD.findall(text, start, end)
    if not words or not _function_token(words[-1]):
        return end
    pos, n = end, 0
    for m in _TOKEN.finditer(text, end):
        gap = text[pos : m.start()]
        if not gap or any(c not in " \t\u00a0" for c in gap) or not m.group()[0].isalnum():
            break
        tail = _TOKEN_TAIL.search(m.group())
        core = m.group()[: tail.start()] if tail else m.group()
        if not core:
            break
        pos, n = m.start() + len(core), n + 1
        if tail or not all(_function_token(w) for w in _WORD.findall(core)) or n >= max_words:
            break
    return pos


def _merge_overlaps(
    spans: list[tuple[int, int, float]], text: str | None = None
) -> list[tuple[int, int, float]]:
    """Merge spans that overlap (two runs inside one word both snap out to that word), the
    score weighted by length; spans that only touch stay apart. With ``text``, spans apart by
    spaces only are merged too: phrase completion grew one up to the next ("our great" +
    "nation"), which the maximal runs never leave otherwise; but not across a sentence end
    (a quotation cut with its closing marks, then the next sentence)."""
    merged: list[tuple[int, int, float]] = []
    for s, e, score in sorted(spans):
        spaced = (
            text is not None
            and merged
            and s > merged[-1][1]
            and all(c in " \t\u00a0" for c in text[merged[-1][1] : s])
            and not _SPAN_ENDS_SENTENCE.search(text, merged[-1][0], merged[-1][1])
        )
        if merged and (s < merged[-1][1] or spaced):
            ms, me, mscore = merged[-1]
            ne = max(me, e)
            w1, w2 = me - ms, e - s
            merged[-1] = (ms, ne, (mscore * w1 + score * w2) / (w1 + w2))
        else:
            merged.append((s, e, score))
    return merged


_LEAD = ",.;:)]}"
_TRAIL = ",;:([{"


# a sentence end: . ! ? (a run of them, then closing quotes/brackets), whitespace, then a
# capital, digit or opening quote; not after an initial or a common abbreviation ("U.S. Army",
# "Mr. Haddad", "Sept. 11", "Apple Inc. CEO", "5 p.m. Monday")
_LINE_END = re.compile(r"[ \t\u00a0]*(?:\r|\n|\u2028|\u2029)")  # a line or paragraph ends
_NEXT_SENTENCE = re.compile(r"\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_END_MARKS = ".!?…"  # the marks that end a sentence
_FINAL_END = re.compile(rf"([{_END_MARKS}]+)([\"'”’)\]]*)\s*$")
_SENT_END = re.compile(rf"([{_END_MARKS}]+)([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")
# a span whose last characters end a sentence (its marks, then closing quotes or brackets)
_SPAN_ENDS_SENTENCE = re.compile(rf"[{_END_MARKS}][\"'”’)\]]*$")
_ABBREV = re.compile(
    r"(?:\b[A-Z]|\b(?:[A-Z]\.)+[A-Z]|\b[ap]\.m|\b(?:Mr|Mrs|Ms|Dr|St|Gen|Sen|Rep|Gov|Lt|Col|Sgt|"
    r"Jr|Sr|No|vs|etc|Prof|Pres|Capt|Maj|Adm|Rev|Ft|Mt|Inc|Corp|Ltd|Co|Jan|Feb|Mar|Apr|Jun|Jul|"
    r"Aug|Sep|Sept|Oct|Nov|Dec))$",
    re.IGNORECASE,
)
_OPENERS = "\"'“‘(["


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a span where a sentence ends inside it (annotated spans rarely cross one). The end
    marks stay out of the left piece, unless it opened a quotation that they close."""
    pieces, pos = [], start
    for m in _SENT_END.finditer(text, start, end):
        marks, closers = m.group(1), m.group(2)
        if marks == "." and _ABBREV.search(text, max(start, m.start() - 12), m.start()):
            continue
        cut = (
            m.end(2) if closers and any(c in text[pos : m.start()] for c in _OPENERS) else m.start()
        )
        pieces.append((pos, cut))
        pos = m.end()
    # a span that ends with the marks of a sentence end, before the next sentence, a line
    # break or the end of the text: the marks stay out, as they do when the span runs on
    last = _FINAL_END.search(text, pos, end)
    after = end  # a span may stop inside a run of marks ("listen.." of "listen...")
    while after < len(text) and text[after] in _END_MARKS:
        after += 1
    if (
        last
        and (
            _NEXT_SENTENCE.match(text, after)
            or _LINE_END.match(text, after)
            or all(is_blank(c) for c in text[after:])
        )
        and not (
            last.group(1) == "." and _ABBREV.search(text, max(pos, last.start() - 12), last.start())
        )
    ):
        closers = last.group(2)
        end = last.end(2) if closers and any(c in text[pos:end] for c in _OPENERS) else last.start()
    pieces.append((pos, end))
    return [t for t in (_trim(text, s, e) for s, e in pieces) if t[1] > t[0]]


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    """Drop stray punctuation, stray quotes and whitespace at a span's edges: an opening quote
    at the end, a closing one at the start, and a quote whose partner is not in the span
    ("a self-described “", "MANIAC'")."""
    while True:
        s0, e0 = s, e
        while s < e and (text[s] in _LEAD or is_blank(text[s])):
            s += 1
        while e > s and (text[e - 1] in _TRAIL or is_blank(text[e - 1])):
            e -= 1
        if s < e and (text[s] in "”’" or (text[s] in "“‘\"'" and not _closes(text, s, e))):
            s += 1
        if e > s and (text[e - 1] in "“‘" or (text[e - 1] in "”’\"'" and not _opens(text, s, e))):
            e -= 1
        if (s, e) == (s0, e0):
            return s, e


_PARTNER = {"“": "”", "‘": "’", '"': '"', "'": "'"}


def _closes(text: str, s: int, e: int) -> bool:
    """The quote at ``s`` is closed inside the span."""
    close = _PARTNER[text[s]]
    return close in text[s + 1 : e] or (close == "’" and "'" in text[s + 1 : e])


def _opens(text: str, s: int, e: int) -> bool:
    """The quote at ``e - 1`` was opened inside the span (a word's apostrophe, as in "Dems'",
    has none: it goes too)."""
    q = text[e - 1]
    inside = text[s : e - 1]
    if q == "”":
        return "“" in inside or '"' in inside
    if q == "’":
        return "‘" in inside or "'" in inside
    return q in inside


def _paragraph_breaks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each paragraph break inside text[start:end]: two line breaks with only
    blanks between them, or a paragraph separator (U+2029)."""
    out: list[tuple[int, int]] = []
    prev: re.Match[str] | None = None
    for m in LINE_BREAK.finditer(text, start, end):
        if m.group() == "\u2029":
            out.append((m.start(), m.end()))
            prev = None
            continue
        if prev is not None and all(is_blank(c) for c in text[prev.end() : m.start()]):
            if out and out[-1][1] >= prev.start():  # a run of blank lines is one break
                out[-1] = (out[-1][0], m.end())
            else:
                out.append((prev.start(), m.end()))
        prev = m
    return out


def split_paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a span at blank lines (a title or paragraph break) and trim stray punctuation and
    whitespace at its edges."""
    pieces, pos = [], start
    for b_start, b_end in _paragraph_breaks(text, start, end):
        pieces.append((pos, b_start))
        pos = b_end
    pieces.append((pos, end))
    return [t for t in (_trim(text, s, e) for s, e in pieces) if t[1] > t[0]]


def span_token_range(enc: Encoded, start: int, end: int) -> tuple[int, int]:
    """Article tokens [a, b) that overlap the character span [start, end)."""
    a = int(np.searchsorted(enc.offsets[:, 1], start, side="right"))
    b = int(np.searchsorted(enc.offsets[:, 0], end, side="left"))
    if b <= a:  # span inside one token or between tokens
        b = min(a + 1, len(enc.offsets))
        a = max(0, b - 1)
    return a, b


_EDGE = " \t\n\"'“”‘’.,;:!?"


@functools.lru_cache(maxsize=8)
def _lower(text: str) -> str:
    """``text.lower()``, kept for the few articles in hand: every span of an article asks."""
    return text.lower()


def _substring_count(text: str, start: int, end: int) -> int:
    """The span's text (lower-cased, edge punctuation stripped) counted as a substring of the
    article; 1 for a key under 3 characters. The span classifier's recurrence feature: the
    shipped networks were trained with it, so it stays as it is."""
    key = text[start:end].lower().strip(_EDGE)
    return _lower(text).count(key) if len(key) >= 3 else 1


@functools.lru_cache(maxsize=256)
def _whole(key: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(key) + r"(?!\w)")


def occurrences(text: str, start: int, end: int) -> int:
    """How often the span's text occurs in the article as whole words (case-insensitive, edge
    punctuation and quotes stripped): "war" is not counted inside "award" or "warning". 1 for
    a key under 3 characters or of function words only ("the", "of our")."""
    key = text[start:end].lower().strip(_EDGE)
    if len(key) < 3 or only_function_words(text[start:end]):
        return 1
    low = _lower(text)
    if low.count(key) < 2:  # whole-word matches are some of these: at most one
        return 1
    return max(1, len(_whole(key).findall(low)))


def repetition_features(text: str, start: int, end: int) -> np.ndarray:
    """Article-level features of a span: length, recurrence of its text, punctuation cues."""
    frag = text[start:end]
    low = _lower(text)
    key = frag.lower().strip(_EDGE)
    occ = _substring_count(text, start, end)
    words = [w for w in key.split() if len(w) > 3]
    if len(low) == len(text):
        others = low[:start] + " " + low[end:]
    else:  # lower-casing lengthened the text ("İ" is two code points): offsets no longer fit
        others = text[:start].lower() + " " + text[end:].lower()
    share = sum(1 for w in words if w in others) / len(words) if words else 0.0
    return np.asarray(
        [
            np.log1p(len(frag)) / 5.0,
            np.log1p(max(occ - 1, 0)),
            float(occ > 1),
            share,
            float(frag.rstrip().endswith("?")),
            float(frag.rstrip().endswith("!")),
        ],
        dtype=np.float32,
    )
