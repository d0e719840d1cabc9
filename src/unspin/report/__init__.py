"""Render :class:`~unspin.analysis.Analysis` objects as terminal text, JSON, HTML or PTC labels.

Every renderer takes a sequence of analyses (one per input) and returns one string; nothing
here writes files (the CLI writes atomically).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from unspin.errors import InputError
from unspin.fileio import write_atomic

if TYPE_CHECKING:
    from unspin.analysis import Analysis

__all__ = [
    "FORMATS",
    "Format",
    "Segment",
    "choose_format",
    "darken",
    "lanes",
    "render",
    "segments",
    "write_atomic",
]

Format = Literal["terminal", "json", "html", "semeval"]
FORMATS: tuple[Format, ...] = ("terminal", "json", "html", "semeval")


@dataclass(frozen=True, slots=True)
class Segment:
    """``text[start:end]``, covered by the spans with ids ``spans`` (empty: plain text)."""

    start: int
    end: int
    spans: tuple[int, ...]


def segments(analysis: Analysis) -> list[Segment]:
    """Cut the text at every span boundary; each piece lists the spans covering it."""
    text = analysis.text
    cuts = {0, len(text)}
    for s in analysis.spans:
        cuts.update((s.start, s.end))
    points = sorted(cuts)
    out: list[Segment] = []
    by_start = sorted(analysis.spans, key=lambda s: s.start)
    active: list[int] = []
    k = 0
    for a, b in zip(points, points[1:], strict=False):
        while k < len(by_start) and by_start[k].start <= a:
            active.append(by_start[k].id)
            k += 1
        active = [i for i in active if analysis.spans[i].end > a]
        out.append(Segment(a, b, tuple(sorted(active))))
    return out


def lanes(analysis: Analysis) -> list[int]:
    """A lane (0, 1, ...) per span so that overlapping spans never share one.

    Greedy interval colouring by start: lane 0 is the innermost line under the text.
    """
    lane_end: list[int] = []
    out = [0] * len(analysis.spans)
    for s in sorted(analysis.spans, key=lambda s: (s.start, -s.end, s.id)):
        for lane, end in enumerate(lane_end):
            if end <= s.start:
                lane_end[lane] = s.end
                out[s.id] = lane
                break
        else:
            lane_end.append(s.end)
            out[s.id] = len(lane_end) - 1
    return out


#: characters of a sentence the "Most loaded sentences" lists show (a text without sentence
#: ends is one sentence: shown whole, it repeated the article)
TOP_SENTENCE_CHARS = 300


def clip(text: str, limit: int = TOP_SENTENCE_CHARS) -> str:
    """``text``, or its first ``limit`` characters cut at a word and ended with " …"."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + " …"


def darken(color: str, factor: float = 0.55) -> str:
    """A darker shade of a ``#rrggbb`` colour (for lines and text on white)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(round(c * factor) for c in (r, g, b)))


def render(
    analyses: Iterable[Analysis],
    fmt: Format,
    *,
    color: bool = False,
    width: int = 80,
) -> str:
    """Render ``analyses`` (a list of ``Analysis``) in ``fmt`` (``json``, ``html``,
    ``semeval`` or ``terminal``). ``color``/``width`` only matter for ``terminal``."""
    from unspin.analysis import Analysis

    if isinstance(analyses, Analysis):
        raise InputError("render takes a list of analyses: render([analysis], fmt)")
    if isinstance(analyses, str | bytes) or not isinstance(analyses, Iterable):
        raise InputError(
            "render takes a list of Analysis objects (what Analyzer().analyze returns), got "
            f"{type(analyses).__name__}"
        )
    analyses = list(analyses)  # a generator or map() works too
    wrong = next((a for a in analyses if not isinstance(a, Analysis)), None)
    if wrong is not None:
        raise InputError(
            "render takes a list of Analysis objects (what Analyzer().analyze returns); one "
            f"item is a {type(wrong).__name__}"
        )
    if fmt == "json":
        from unspin.report.json import render_json

        return render_json(analyses)
    if fmt == "html":
        from unspin.report.html import render_html

        return render_html(analyses)
    if fmt == "semeval":
        from unspin.report.semeval import render_semeval

        return render_semeval(analyses)
    if fmt == "terminal":
        from unspin.report.terminal import render_terminal

        return render_terminal(analyses, color=color, width=width)
    raise InputError(f"unknown format {fmt!r}: use json, html, semeval or terminal")


_SUFFIX_FORMATS: dict[str, Format] = {
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".labels": "semeval",
    ".tsv": "semeval",
    ".txt": "terminal",
}


def choose_format(fmt: str | None, output: Path | None, stdout_is_tty: bool) -> Format:
    """The output format: the one asked for; else from ``output``'s extension (an
    InputError for any other extension); else ``terminal`` on a terminal and ``json`` when
    piped."""
    if fmt is not None:
        name = fmt.strip().lower()
        for known in FORMATS:
            if name == known:
                return known
        raise InputError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if output is not None:
        suffix = output.suffix.lower()
        if suffix not in _SUFFIX_FORMATS:
            shown = repr(output.suffix) if output.suffix else f"{output.name!r} (no extension)"
            raise InputError(
                f"cannot tell the format from {shown}; pass --format {'|'.join(FORMATS)}"
            )
        return _SUFFIX_FORMATS[suffix]
    return "terminal" if stdout_is_tty else "json"
