"""Terminal report (rich): the article with highlights, a legend and the summary.

With colour, each technique has a background colour and a short tag after the span (``NC``);
spans inside a quotation are underlined instead of filled. Without colour (``--no-color``,
``NO_COLOR`` or a pipe), spans are bracketed: ``[own words]NC`` and ``{quoted words}NC``.
Fits 80 columns.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from rich.console import Console, Group
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from unspin.analysis import Analysis
from unspin.explain import EXPLANATIONS
from unspin.report import clip, darken, segments
from unspin.techniques import TECHNIQUES
from unspin.text import starts_with

__all__ = ["render_terminal", "safe"]

# C0/C1 control characters (but newline and tab) and bidi overrides could rewrite the terminal
# or disguise text: each is shown as U+FFFD, one code point for one, so layout stays faithful.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """Article text made harmless for a terminal (carriage returns dropped, controls shown, a
    byte-order mark, which has no width, dropped)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    return _UNSAFE.sub("\ufffd", text)


def _bar(fraction: float, width: int) -> str:
    full = round(max(0.0, min(1.0, fraction)) * width)
    return "\u2588" * full + "\u2591" * (width - full)


def _article(a: Analysis, color: bool) -> Text:
    out = Text()
    text = a.text
    spans = a.spans
    ends_at: dict[int, list[int]] = {}
    starts_at: dict[int, list[int]] = {}
    for s in spans:
        ends_at.setdefault(s.end, []).append(s.id)
        starts_at.setdefault(s.start, []).append(s.id)

    def tags(pos: int) -> None:
        for i in sorted(ends_at.get(pos, []), key=lambda i: -spans[i].start):
            s = spans[i]
            ex = EXPLANATIONS[s.technique]
            if color:
                out.append(ex.code, style=f"bold {darken(ex.color)}")
            else:
                out.append(("}" if s.quoted else "]") + ex.code)

    for seg in segments(a):
        if not color:
            for i in sorted(starts_at.get(seg.start, []), key=lambda i: -spans[i].end):
                out.append("{" if spans[i].quoted else "[")
        piece = safe(text[seg.start : seg.end])
        if not seg.spans or not color:
            out.append(piece)
        else:
            own = [spans[i] for i in seg.spans if not spans[i].quoted]
            if own:
                inner = min(own, key=lambda s: (s.end - s.start, -s.score))
                style = f"#000000 on {EXPLANATIONS[inner.technique].color}"
                if len(own) < len(seg.spans):
                    style += " underline"
            else:
                inner = min((spans[i] for i in seg.spans), key=lambda s: s.end - s.start)
                style = f"italic underline {darken(EXPLANATIONS[inner.technique].color)}"
            # Colour each line of the piece separately so the fill never spans a line break.
            for k, line in enumerate(piece.split("\n")):
                if k:
                    out.append("\n")
                out.append(line, style=style)
        tags(seg.end)
    out.rstrip()
    return out


def _legend(a: Analysis, color: bool) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column("tag", no_wrap=True, width=4)
    table.add_column("technique", ratio=1)
    table.add_column("n", justify="right", no_wrap=True, width=3)
    for t in TECHNIQUES:
        n = a.summary.counts[t]
        if not n:
            continue
        ex = EXPLANATIONS[t]
        tag = Text(f" {ex.code} ", style=f"#000000 on {ex.color}" if color else "")
        desc = Text(ex.name, style="bold")
        desc.append(f" - {ex.definition}", style="" if not color else "dim")
        table.add_row(tag, desc, str(n))
    return table


def _span_list(a: Analysis, color: bool) -> Table:
    """Every span with its confidence, technique code and words (quoted ones marked)."""
    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    for sp in a.spans:
        ex = EXPLANATIONS[sp.technique]
        words = " ".join(sp.text.split())
        if len(words) > 70:
            words = words[:67] + "..."
        line = Text(f"“{safe(words)}”")
        if sp.quoted:
            line.append("  (in a quotation)", style="dim" if color else "")
        tag = Text(f" {ex.code} ", style=f"#000000 on {ex.color}" if color else "")
        table.add_row(f"{sp.score:.0%}", tag, line)
    return table


def _summary(a: Analysis, color: bool, width: int) -> Group:
    sm = a.summary
    parts: list[Text | Table | Padding] = []
    head = Text()
    if sm.level == "unrated":  # the score exists (JSON) but means nothing here: no bar
        head.append("Score –", style="bold")
        head.append("  ")
    else:
        head.append(f"Score {sm.score:g}/100", style="bold")
        head.append(f"  {_bar(sm.score / 100, 20)}  ")
    head.append(sm.reading)
    parts.append(head)
    parts.append(
        Text(
            f"{sm.loaded_sentences} of {sm.sentences} sentences "
            f"({sm.sentence_share:.0%}) and {sm.character_share:.0%} of the characters carry a "
            f"technique; {sm.spans} spans, {sm.quoted_spans} inside quotations."
        )
    )
    counts = [(t, sm.counts[t]) for t in TECHNIQUES if sm.counts[t]]
    if counts:
        parts.append(Text("\nTechniques", style="bold"))
        top = max(n for _, n in counts)
        bar_w = max(8, width - 44)
        chart = Table(box=None, show_header=False, padding=(0, 1))
        chart.add_column(no_wrap=True, max_width=32)
        chart.add_column(no_wrap=True)
        chart.add_column(justify="right", no_wrap=True)
        for t, n in sorted(counts, key=lambda x: (-x[1], TECHNIQUES.index(x[0]))):
            ex = EXPLANATIONS[t]
            chart.add_row(
                ex.name,
                Text(_bar(n / top, bar_w), style=darken(ex.color) if color else ""),
                str(n),
            )
        parts.append(chart)
    if sm.top_sentences:
        parts.append(Text("\nMost loaded sentences", style="bold"))
        top_table = Table(box=None, show_header=False, padding=(0, 1))
        top_table.add_column(no_wrap=True, justify="right")
        top_table.add_column(ratio=1)
        for rank, idx in enumerate(sm.top_sentences, 1):
            sent = a.sentences[idx]
            line = Text(safe(clip(sent.text)))
            codes = " ".join(EXPLANATIONS[t].code for t in sent.techniques)
            line.append(f"  [{codes}]", style="bold" if color else "")
            top_table.add_row(f"{rank}.", line)
        parts.append(top_table)
    parts.append(Text("\nWho is attacked / who is glorified", style="bold"))
    if sm.targets:
        tt = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        tt.add_column("Target", max_width=30)
        tt.add_column("Kind", no_wrap=True)
        tt.add_column("Attacked", justify="right", no_wrap=True)
        tt.add_column("Glorified", justify="right", no_wrap=True)
        tt.add_column("Techniques")
        for r in sm.targets:
            tt.add_row(
                safe(r.entity),
                r.label,
                str(r.attacked),
                str(r.glorified),
                " ".join(EXPLANATIONS[t].code for t in r.techniques),
            )
        parts.append(Padding(tt, (0, 0, 0, 2)))
    else:
        note = sm.targets_note or "no named entity next to an attacking or glorifying span"
        parts.append(Padding(Text(f"none found ({note})"), (0, 0, 0, 2)))
    return Group(*parts)


def render_terminal(analyses: Sequence[Analysis], *, color: bool = False, width: int = 80) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=color,
        color_system="truecolor" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )
    for k, a in enumerate(analyses):
        if k:
            console.print()
        label = safe(a.source or "text")
        console.print(Rule(Text(f"unspin - {label}", style="bold"), characters="="))
        if a.title and not starts_with(a.text, a.title):
            console.print(Text(safe(a.title), style="bold"))
        console.print(Text(a.summary.reading, style="italic" if color else ""))
        console.print()
        console.print(_article(a, color))
        console.print()
        console.print(Rule("Legend", characters="-"))
        if a.spans:
            key = (
                "Filled: the article's own words. Underlined: inside a quotation."
                if color
                else "[...]XX: the article's own words. {...}XX: inside a quotation."
            )
            console.print(Text(key, style="dim" if color else ""))
            console.print(_legend(a, color))
            console.print()
            console.print(Rule("Spans", characters="-"))
            console.print(
                Text(
                    "Confidence is calibrated: of spans shown at 30%, about 3 in 10 lie mostly "
                    "inside a span that annotators gave the same technique (PTC val).",
                    style="dim" if color else "",
                )
            )
            console.print(_span_list(a, color))
        else:
            console.print(Text("No technique found."))
        console.print()
        console.print(Rule("Summary", characters="-"))
        console.print(_summary(a, color, width))
    out = buf.getvalue()
    if not color:  # rich pads table cells and wrapped lines; plain text needs none of it
        out = "\n".join(line.rstrip() for line in out.split("\n"))
    return out
