"""Training examples: encoder windows with token labels and the gold spans they hold."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unspin.decode import repetition_features, span_token_range
from unspin.segment import encode_article, locate, make_windows
from unspin.techniques import TECHNIQUE_INDEX, TECHNIQUES

__all__ = ["Example", "SpanItem", "build_examples", "merge_intervals"]

OUTSIDE, BEGIN, INSIDE = 0, 1, 2
IGNORE = -100


@dataclass
class SpanItem:
    a: int  # window-local token positions (CLS = 0), [a, b)
    b: int
    label: int
    feats: np.ndarray


@dataclass
class Example:
    ids: np.ndarray
    si: np.ndarray  # (L,) O/B/I with IGNORE on CLS/SEP
    tech: np.ndarray  # (L, 14) float
    spans: list[SpanItem] = field(default_factory=list)
    si_soft: np.ndarray | None = None  # (L, 3) teacher P(O/B/I) for unlabeled windows


def merge_intervals(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def build_examples(
    texts: dict[str, str],
    labels: dict[str, list[tuple[int, int, str]]],
    tok,
    *,
    cls_id: int,
    sep_id: int,
    max_len: int,
    stride: int,
) -> list[Example]:
    """One example per window of every article; each gold span is attached (for the span
    classifier) to the one window that holds most of it, nearest its centre."""
    examples: list[Example] = []
    for aid, text in texts.items():
        enc = encode_article(tok, text)
        n = len(enc.ids)
        if n == 0:
            continue
        gold = labels.get(aid, [])
        si = np.full(n, OUTSIDE, dtype=np.int64)
        tech = np.zeros((n, len(TECHNIQUES)), dtype=np.float32)
        for s, e in merge_intervals([(s, e) for s, e, _ in gold]):
            a, b = span_token_range(enc, s, e)
            si[a:b] = INSIDE
            si[a] = BEGIN
        for s, e, t in gold:
            a, b = span_token_range(enc, s, e)
            tech[a:b, TECHNIQUE_INDEX[t]] = 1.0
        windows = make_windows(enc, cls_id, sep_id, max_len, stride)
        exs = []
        for w in windows:
            lab = np.full(w.n + 2, IGNORE, dtype=np.int64)
            lab[1:-1] = si[w.first : w.first + w.n]
            tl = np.zeros((w.n + 2, len(TECHNIQUES)), dtype=np.float32)
            tl[1:-1] = tech[w.first : w.first + w.n]
            exs.append(Example(ids=w.ids, si=lab, tech=tl))
        for s, e, t in gold:
            a, b = span_token_range(enc, s, e)
            best, la, lb = locate(windows, a, b)
            feats = repetition_features(text, s, e)
            exs[best].spans.append(SpanItem(la, lb, TECHNIQUE_INDEX[t], feats))
        examples.extend(exs)
    return examples
