"""HTML report: one self-contained file (no network), safe for hostile articles.

* Every string taken from the article (text, title, source, entity names) is HTML-escaped; span
  data for the script travels as JSON inside ``<script type="application/json">`` with ``<``,
  ``>`` and ``&`` escaped, and the script only ever writes it with ``textContent``.
* A Content-Security-Policy allows no network at all and only this file's own script (by
  hash), so even a missed escape could not run injected code or load anything.
* The text is cut at every span boundary; each piece carries one underline per covering span
  (stacked in lanes, so overlapping spans stay visible): solid for the article's own words,
  dashed inside quotations. Hover or focus shows the techniques in a ``title``; click (or
  Enter) opens a card with technique, confidence, definition, example and target.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from html import escape
from typing import Any

from unspin.analysis import Analysis
from unspin.explain import EXPLANATIONS
from unspin.report import clip, darken, lanes, segments
from unspin.techniques import TECHNIQUES
from unspin.text import starts_with

__all__ = ["render_html", "CSP", "SCRIPT"]

_LANE_PX = 4  # vertical distance between stacked underlines
_LINE_PX = 2  # underline thickness

_CSS = """
:root{--fg:#1d1d1f;--muted:#5f6368;--bg:#fff;--card:#f6f6f8;--line:#d9d9de}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header.top{padding:12px 24px;border-bottom:1px solid var(--line);display:flex;gap:12px;
align-items:baseline;flex-wrap:wrap}
header.top b{font-size:18px}
header.top small{color:var(--muted)}
main{max-width:1200px;margin:0 auto;padding:0 24px 48px}
article.report{display:grid;grid-template-columns:minmax(0,1fr) 340px;gap:32px;
padding-top:24px;border-bottom:1px solid var(--line)}
@media (max-width:900px){article.report{grid-template-columns:1fr}}
h1.title{font:700 26px/1.25 Georgia,serif;margin:0 0 6px}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.source{color:var(--muted);font-size:13px;word-break:break-all;margin:0 0 12px}
.reading{font-size:17px;margin:0 0 18px;padding:10px 14px;border-radius:8px;background:var(--card)}
.doc{font:18px/var(--lh) Georgia,"Times New Roman",serif;white-space:pre-wrap;
overflow-wrap:anywhere;margin:0}
.seg{background-repeat:no-repeat;cursor:pointer;border-radius:2px;
-webkit-box-decoration-break:clone;box-decoration-break:clone}
.seg:hover,.seg:focus,.seg.hot{outline:2px solid #3b82f6;outline-offset:1px}
.seg.q{font-style:italic}
aside h2,section h2{font-size:15px;text-transform:uppercase;letter-spacing:.05em;
color:var(--muted);margin:22px 0 8px}
.legend{list-style:none;padding:0;margin:0}
.legend li{padding:6px 0;border-bottom:1px solid var(--line)}
.legend .sw{display:inline-block;width:14px;height:14px;border-radius:3px;
vertical-align:-2px;margin-right:6px;border:2px solid}
.legend .n{float:right;font-variant-numeric:tabular-nums;color:var(--muted)}
.legend details{font-size:14px;color:var(--muted);margin:2px 0 0 22px}
.legend details p{margin:4px 0}
.key{font-size:13px;color:var(--muted);margin:0 0 6px}
.key i{display:inline-block;width:26px;height:0;border-bottom:2px solid #444;
vertical-align:middle;margin-right:4px}
.key i.dash{border-bottom-style:dashed}
.score{display:flex;align-items:center;gap:10px;font-size:14px}
.score .big{font-size:30px;font-weight:700}
.meter{flex:1;height:10px;background:#eee;border-radius:5px;overflow:hidden}
.meter span{display:block;height:100%}
.facts{font-size:14px;color:var(--muted);margin:8px 0}
.bars{display:grid;grid-template-columns:auto 1fr auto;gap:4px 8px;align-items:center;
font-size:14px}
.bars .track{height:12px;background:#f0f0f0;border-radius:3px}
.bars .fill{display:block;height:100%;border-radius:3px}
ol.top{padding-left:20px;font-size:15px}
ol.top li{margin-bottom:8px}
.chip{display:inline-block;font:600 11px/1.6 system-ui,sans-serif;padding:0 6px;
border-radius:9px;margin-left:4px;color:#111}
table.targets{border-collapse:collapse;font-size:14px;width:100%}
table.targets th,table.targets td{text-align:left;padding:4px 6px;border-bottom:1px solid
var(--line)}
table.targets td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{font-size:14px;color:var(--muted)}
#card{position:absolute;z-index:10;max-width:360px;background:#fff;border:1px solid #bbb;
border-radius:8px;box-shadow:0 6px 24px rgba(0,0,0,.18);padding:10px 12px;font-size:14px;
display:none}
#card.on{display:block}
#card .item{padding:6px 0;border-top:1px solid var(--line)}
#card .item:first-of-type{border-top:0}
#card .conf{height:6px;background:#eee;border-radius:3px;margin:4px 0}
#card .conf span{display:block;height:100%;border-radius:3px}
#card .def{color:var(--muted)}
#card .close{float:right;border:0;background:none;font-size:18px;cursor:pointer;line-height:1}
"""

# The only script in the page. It reads span data with JSON.parse and writes with textContent.
SCRIPT = """
(function(){
  "use strict";
  var el = document.getElementById("unspin-data");
  if (!el) return;
  var data = JSON.parse(el.textContent);
  var card = document.getElementById("card");
  var pinned = null;
  function add(parent, tag, cls, text){
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    parent.appendChild(n);
    return n;
  }
  function hot(seg, on){
    var doc = seg.closest("[data-doc]");
    var ids = seg.getAttribute("data-spans").split(" ");
    doc.querySelectorAll(".seg").forEach(function(s){
      var other = s.getAttribute("data-spans").split(" ");
      var share = on && other.some(function(i){ return ids.indexOf(i) >= 0; });
      s.classList.toggle("hot", share);
    });
  }
  function show(seg){
    var art = data.articles[+seg.closest("[data-doc]").getAttribute("data-doc")];
    var ids = seg.getAttribute("data-spans").split(" ").map(Number);
    card.textContent = "";
    var close = add(card, "button", "close", "\\u00d7");
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", hide);
    ids.forEach(function(id){
      var sp = art.spans[id];
      var ex = data.techniques[sp.technique];
      var item = add(card, "div", "item");
      var head = add(item, "div");
      add(head, "b", "", ex.name);
      add(head, "span", "", " \\u2014 " + Math.round(sp.score * 100) + "% confidence" +
          (sp.quoted ? " \\u00b7 inside a quotation" : ""));
      var bar = add(add(item, "div", "conf"), "span");
      bar.style.width = Math.round(sp.score * 100) + "%";
      bar.style.background = ex.line;
      add(item, "div", "span-text", "\\u201c" + sp.text + "\\u201d");
      add(item, "div", "def", ex.definition);
      add(item, "div", "def", "Example: " + ex.example);
      if (sp.target) {
        add(item, "div", "", "Target: " + sp.target.text + " (" + sp.target.label + ", " +
            sp.target.stance + ")");
      }
    });
    var r = seg.getBoundingClientRect();
    card.style.left = Math.max(8, Math.min(window.scrollX + r.left,
        window.scrollX + document.documentElement.clientWidth - 380)) + "px";
    card.style.top = (window.scrollY + r.bottom + 8) + "px";
    card.classList.add("on");
  }
  function hide(){
    var back = pinned;
    pinned = null;
    card.classList.remove("on");
    if (back && card.contains(document.activeElement)) back.focus();  /* back where it was */
  }
  document.querySelectorAll(".seg").forEach(function(seg){
    seg.removeAttribute("title");  /* the card replaces the no-script tooltip */
    seg.addEventListener("mouseenter", function(){ hot(seg, true); if (!pinned) show(seg); });
    seg.addEventListener("mouseleave", function(){ hot(seg, false); if (!pinned) hide(); });
    seg.addEventListener("focus", function(){ hot(seg, true); });
    seg.addEventListener("blur", function(){ hot(seg, false); });
    seg.addEventListener("click", function(ev){ ev.stopPropagation(); pinned = seg; show(seg); });
    seg.addEventListener("keydown", function(ev){
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault(); pinned = seg; show(seg);
        card.querySelector(".close").focus();  /* into the card; Escape or x comes back */
      }
      if (ev.key === "Escape") hide();
    });
  });
  document.addEventListener("click", function(ev){ if (!card.contains(ev.target)) hide(); });
  document.addEventListener("keydown", function(ev){ if (ev.key === "Escape") hide(); });
})();
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")

#: No network, no plugins, no frames, no forms; inline styles, and only our own script.
CSP = (
    "default-src 'none'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; "
    "style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def _e(text: str) -> str:
    return escape(text, quote=True)


def _json_for_script(data: Any) -> str:
    """JSON that is inert inside ``<script type="application/json">``."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        raw.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _seg_style(a: Analysis, ids: Sequence[int], lane_of: Sequence[int]) -> str:
    images, sizes, positions = [], [], []
    for i in sorted(ids, key=lambda i: lane_of[i]):
        s = a.spans[i]
        line = darken(EXPLANATIONS[s.technique].color)
        if s.quoted:
            images.append(f"repeating-linear-gradient(90deg,{line} 0 5px,transparent 5px 8px)")
        else:
            images.append(f"linear-gradient({line},{line})")
        sizes.append(f"100% {_LINE_PX}px")
        positions.append(f"0 calc(100% - {lane_of[i] * _LANE_PX}px)")
    depth = max(lane_of[i] for i in ids) + 1
    style = (
        f"background-image:{','.join(images)};background-size:{','.join(sizes)};"
        f"background-position:{','.join(positions)};padding-bottom:{depth * _LANE_PX}px"
    )
    own = [a.spans[i] for i in ids if not a.spans[i].quoted]
    if own:
        inner = min(own, key=lambda s: (s.end - s.start, -s.score))
        style += f";background-color:{EXPLANATIONS[inner.technique].color}99"
    return style


def _seg_title(a: Analysis, ids: Sequence[int]) -> str:
    lines = []
    for i in ids:
        s = a.spans[i]
        q = ", quoted" if s.quoted else ""
        lines.append(f"{EXPLANATIONS[s.technique].name} ({s.score:.0%}{q})")
    return "\n".join(lines)


def _doc(a: Analysis, k: int) -> tuple[str, int]:
    lane_of = lanes(a)
    parts: list[str] = []
    for seg in segments(a):
        piece = _e(a.text[seg.start : seg.end])
        if not seg.spans:
            parts.append(piece)
            continue
        quoted = all(a.spans[i].quoted for i in seg.spans)
        cls = "seg q" if quoted else "seg"
        ids = " ".join(str(i) for i in seg.spans)
        techniques = _seg_title(a, seg.spans)
        # the title is the no-script tooltip (the script drops it); the label names the
        # techniques to screen readers, which read a button by its label
        label = f"{a.text[seg.start : seg.end]}: {techniques.replace(chr(10), '; ')}"
        parts.append(
            f'<span class="{cls}" tabindex="0" role="button" data-spans="{ids}" '
            f'aria-label="{_e(label)}" title="{_e(techniques)}" '
            f'style="{_seg_style(a, seg.spans, lane_of)}">{piece}</span>'
        )
    depth = max(lane_of, default=-1) + 1
    return "".join(parts), depth


def _legend(a: Analysis) -> str:
    items = []
    for t in TECHNIQUES:
        n = a.summary.counts[t]
        if not n:
            continue
        ex = EXPLANATIONS[t]
        items.append(
            f'<li data-technique="{_e(t)}"><span class="sw" style="background:{ex.color};'
            f'border-color:{darken(ex.color)}"></span><b>{_e(ex.name)}</b>'
            f'<span class="n">{n}</span><details><summary>What is this?</summary>'
            f"<p>{_e(ex.definition)}</p><p><i>Example:</i> {_e(ex.example)}</p></details></li>"
        )
    if not items:
        return '<p class="note">No technique found.</p>'
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _chips(techniques: Sequence[str]) -> str:
    return "".join(
        f'<span class="chip" style="background:{EXPLANATIONS[t].color}" '
        f'title="{_e(EXPLANATIONS[t].name)}">{EXPLANATIONS[t].code}</span>'
        for t in techniques
    )


def _summary(a: Analysis) -> str:
    sm = a.summary
    meter_color = {
        "none": "#9ca3af",
        "unrated": "#9ca3af",
        "light": "#84cc16",
        "moderate": "#f59e0b",
    }.get(sm.level, "#dc2626")
    out = [
        '<section class="summary"><h2>Summary</h2>',
        (  # an unrated text's score means nothing: no number, no meter
            '<div class="score"><span class="big">–</span><span>not rated</span></div>'
            if sm.level == "unrated"
            else f'<div class="score"><span class="big">{sm.score:g}</span><span>/ 100</span>'
            f'<div class="meter" role="img" aria-label="score {sm.score:g} of 100">'
            f'<span style="width:{sm.score:.1f}%;background:{meter_color}"></span></div></div>'
        ),
        f'<p class="facts">{sm.loaded_sentences} of {sm.sentences} sentences '
        f"({_pct(sm.sentence_share)}) and {_pct(sm.character_share)} of the characters carry "
        f"a technique; {sm.spans} spans, {sm.quoted_spans} inside quotations.</p>",
    ]
    counts = sorted(
        ((t, n) for t, n in sm.counts.items() if n), key=lambda x: (-x[1], TECHNIQUES.index(x[0]))
    )
    if counts:
        top = max(n for _, n in counts)
        out.append('<h2>Techniques</h2><div class="bars" role="list">')
        for t, n in counts:
            ex = EXPLANATIONS[t]
            out.append(  # one list item a technique, named with its count
                f'<span role="listitem" aria-label="{_e(ex.name)}: {n}">{_e(ex.name)}</span>'
                f'<span class="track" aria-hidden="true"><span class="fill" style="width:'
                f'{100 * n / top:.1f}%;background:{darken(ex.color, 0.8)}"></span></span>'
                f'<span aria-hidden="true">{n}</span>'
            )
        out.append("</div>")
    if sm.top_sentences:
        out.append('<h2>Most loaded sentences</h2><ol class="top">')
        for idx in sm.top_sentences:
            s = a.sentences[idx]
            out.append(f"<li>{_e(clip(s.text))}{_chips(s.techniques)}</li>")
        out.append("</ol>")
    out.append("<h2>Who is attacked / who is glorified</h2>")
    if sm.targets:
        out.append(
            '<table class="targets"><thead><tr><th>Target</th><th>Attacked</th>'
            "<th>Glorified</th><th>By</th></tr></thead><tbody>"
        )
        for r in sm.targets:
            out.append(
                f'<tr><td>{_e(r.entity)} <small class="note">{_e(r.label)}</small></td>'
                f'<td class="num">{r.attacked}</td><td class="num">{r.glorified}</td>'
                f"<td>{_chips(r.techniques)}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        note = sm.targets_note or "no named entity next to an attacking or glorifying span"
        out.append(f'<p class="note">None found ({_e(note)}).</p>')
    out.append("</section>")
    return "".join(out)


def _article(a: Analysis, k: int) -> str:
    body, depth = _doc(a, k)
    lh = f"calc(1.7em + {depth * _LANE_PX}px)"
    title = a.title or ""
    shown = title and not starts_with(a.text, title)  # else it is the text's first line
    # a title that is the text's first line shows there; screen readers still get a heading
    heading = (
        f'<h1 class="title">{_e(title)}</h1>'
        if shown
        else f'<h1 class="sr-only">{_e(title or a.source or "Article")}</h1>'
    )
    source = f'<p class="source">{_e(a.source)}</p>' if a.source else ""
    level_word = a.summary.reading.split(":", 1)
    reading = (
        f"<b>{_e(level_word[0][:1].upper() + level_word[0][1:])}</b>:{_e(level_word[1])}"
        if len(level_word) == 2
        else _e(a.summary.reading)
    )
    return (
        f'<article class="report" id="article-{k}"><div class="main">{heading}{source}'
        f'<p class="reading">{reading}</p>'
        f'<div class="doc" data-doc="{k}" style="--lh:{lh}">{body}</div></div>'
        '<aside><h2>Techniques found</h2><p class="key"><i></i>own words '
        '<i class="dash"></i>inside a quotation; stacked lines = overlapping techniques. '
        "Click highlighted text for details.</p>"
        f"{_legend(a)}{_summary(a)}</aside></article>"
    )


def _data(analyses: Sequence[Analysis]) -> dict[str, Any]:
    return {
        "techniques": {
            t: {
                "name": ex.name,
                "definition": ex.definition,
                "example": ex.example,
                "line": darken(ex.color),
            }
            for t, ex in EXPLANATIONS.items()
        },
        "articles": [
            {
                "spans": [
                    s.model_dump(
                        mode="json", include={"text", "technique", "score", "quoted", "target"}
                    )
                    for s in a.spans
                ]
            }
            for a in analyses
        ],
    }


def render_html(analyses: Sequence[Analysis]) -> str:
    """A complete HTML document for one or more analyses."""
    first = analyses[0] if analyses else None
    page_title = "unspin report"
    if first is not None and (first.title or first.source):
        page_title += " - " + (first.title or first.source or "")
    generator = first.generator if first is not None else "unspin"
    articles = "".join(_article(a, k) for k, a in enumerate(analyses))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta name="generator" content="{_e(generator)}">'
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body>"
        '<header class="top"><b>unspin</b><small>How this article tries to persuade: '
        "propaganda techniques found by a model; confidence shown on each.</small></header>"
        f'<main>{articles}</main><div id="card" role="dialog" aria-live="polite"></div>'
        f'<script type="application/json" id="unspin-data">{_json_for_script(_data(analyses))}'
        f"</script><script>{SCRIPT}</script></body></html>\n"
    )
