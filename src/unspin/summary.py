"""The per-sentence load and the article summary: how loaded the text is, in plain words.

See docs/report.md for how the score is defined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from unspin.schema import Level, SentenceInfo, SpanInfo, Summary, TargetRow, TargetStatus
from unspin.spans import Span
from unspin.techniques import TECHNIQUES
from unspin.text import looks_english

__all__ = ["score_reading", "sentence_infos", "summarise"]

SHORT_TEXT = 3  # sentences: under this, the reading warns that the score means little


def score_reading(
    score: float, sentence_share: float, n_spans: int, threshold: float | None = None
) -> tuple[Level, str]:
    """The level and plain-language reading of an overall score (see docs/report.md). With a
    user ``threshold`` the reading says that only spans at or above it were counted: a high
    one leaves no spans, which must not read as "plain reporting"."""
    pct = round(100 * sentence_share)
    if n_spans == 0 and threshold is not None:
        return "none", (
            f"no techniques found at confidence {threshold:g} or above (the threshold asked "
            "for); without a threshold the model's own cut applies and may find some"
        )
    if n_spans == 0:
        return "none", (
            "no techniques found; the model misses many, so this is no proof of plain reporting"
        )
    if score < 5:
        level: Level = "none"
        words = "barely loaded"
    elif score < 20:
        level, words = "light", "lightly loaded"
    elif score < 40:
        level, words = "moderate", "moderately loaded"
    else:
        level, words = "heavy", "heavily loaded"
    noun = "sentence uses" if pct == 1 else "of sentences use"
    only = f" at confidence {threshold:g} or above" if threshold is not None else ""
    return level, f"{words}: {pct}% {noun} at least one technique{only}"


def sentence_infos(
    text: str, sentences: Sequence[tuple[int, int]], infos: Sequence[SpanInfo]
) -> list[SentenceInfo]:
    """One :class:`~unspin.schema.SentenceInfo` per sentence range, with its techniques and load.

    A span counts in every sentence it overlaps; a technique's load in a sentence is its highest
    span score there, halved when all its spans there are quoted.
    """
    order = {t: i for i, t in enumerate(TECHNIQUES)}
    per_sent: list[dict[str, tuple[float, bool]]] = [{} for _ in sentences]
    for info in infos:
        j = info.sentence
        while j < len(sentences) and sentences[j][0] < info.end:
            if sentences[j][1] > info.start:
                seen = per_sent[j].get(info.technique)
                own = not info.quoted
                if seen is None:
                    per_sent[j][info.technique] = (info.score, own)
                else:
                    per_sent[j][info.technique] = (max(seen[0], info.score), seen[1] or own)
            j += 1
    out: list[SentenceInfo] = []
    for j, (a, b) in enumerate(sentences):
        techs = per_sent[j]
        load = sum(sc if own else sc / 2 for sc, own in techs.values())
        out.append(
            SentenceInfo(
                index=j,
                start=a,
                end=b,
                text=text[a:b],
                techniques=sorted(techs, key=order.__getitem__),
                load=round(load, 4),
                quoted_only=bool(techs) and not any(own for _, own in techs.values()),
            )
        )
    return out


def summarise(
    text: str,
    spans: Sequence[Span],
    sentences: Sequence[SentenceInfo],
    infos: Sequence[SpanInfo],
    targets: list[TargetRow],
    targets_status: TargetStatus,
    targets_note: str | None,
    threshold: float | None = None,
) -> Summary:
    """The article-level :class:`~unspin.schema.Summary` of an analysis."""
    n_sent = len(sentences)
    loaded = [s for s in sentences if s.techniques]
    quoted_only = [s for s in loaded if s.quoted_only]
    covered = [False] * len(text)
    for s in spans:
        covered[s.start : s.end] = [True] * (s.end - s.start)
    chars = sum(1 for ch in text if not ch.isspace() and ch != "\ufeff")
    loaded_chars = sum(
        1 for ch, c in zip(text, covered, strict=True) if c and not ch.isspace() and ch != "\ufeff"
    )
    share = len(loaded) / n_sent if n_sent else 0.0
    score = 100.0 * (len(loaded) - len(quoted_only) / 2) / n_sent if n_sent else 0.0
    score = round(min(100.0, max(0.0, score)), 1)
    level, reading = score_reading(score, share, len(spans), threshold)
    if quoted_only:
        reading += f" ({len(quoted_only)} only inside quotations)"
    if not looks_english(text):  # the models read English only: "none found" would mislead
        level = "unrated"
        reading = (
            "not rated: this text does not look like English, and unspin's models read English "
            "only"
            + (
                f" (the {len(spans)} span{'s' if len(spans) > 1 else ''} shown "
                f"{'are' if len(spans) > 1 else 'is'} unreliable)"
                if spans
                else ""
            )
        )
    elif spans and n_sent < SHORT_TEXT:  # "Traitors!" alone is 100% loaded, and says little
        level = "unrated"
        # a share of sentences: however long the text, one or two sentences say little
        reading = (
            f"not rated: the score is a share of sentences, and {n_sent} "
            f"sentence{'s are' if n_sent > 1 else ' is'} too few ({len(loaded)} of {n_sent} "
            f"use{'s' if n_sent == 1 else ''} a technique"
            + (f" at confidence {threshold:g} or above" if threshold is not None else "")
            + ")"
        )
    counts = Counter(s.technique for s in spans)
    top = sorted(loaded, key=lambda s: (-s.load, s.index))[:3]
    return Summary(
        sentences=n_sent,
        loaded_sentences=len(loaded),
        quoted_only_sentences=len(quoted_only),
        sentence_share=round(share, 4),
        characters=chars,
        loaded_characters=loaded_chars,
        character_share=round(loaded_chars / chars, 4) if chars else 0.0,
        spans=len(spans),
        quoted_spans=sum(1 for i in infos if i.quoted),
        counts={t: counts.get(t, 0) for t in TECHNIQUES},
        top_sentences=[s.index for s in top],
        score=score,
        level=level,
        reading=reading,
        targets=targets,
        targets_status=targets_status,
        targets_note=targets_note,
    )
