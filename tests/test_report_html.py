"""HTML report, checked at DOM level: self-contained, escaped, overlaps visible, legend."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from unspin import Analysis, Analyzer
from unspin.analysis import PhraseEntities, PhraseTagger
from unspin.ingest import read_path
from unspin.report import render
from unspin.report.html import CSP, SCRIPT

ROOT = Path(__file__).resolve().parents[1]
FAKES = json.loads((ROOT / "tests" / "golden" / "example_fakes.json").read_text("utf-8"))


class Dom(HTMLParser):
    """Collects elements, script bodies and the text inside the article's .doc element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.doc_text: list[str] = []
        self._stack: list[str] = []
        self._in_doc = 0
        self._script: dict[str, str | None] | None = None
        self._script_body: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag in {"meta", "link", "img", "br", "input"}:
            return
        if self._in_doc:
            self._in_doc += 1
        elif "data-doc" in a:
            self._in_doc = 1
        if tag == "script":
            self._script, self._script_body = a, []

    def handle_endtag(self, tag: str) -> None:
        if self._in_doc:
            self._in_doc -= 1
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._script_body)))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script_body.append(data)
        elif self._in_doc:
            self.doc_text.append(data)


def hostile_analysis() -> Analysis:
    doc = read_path(ROOT / "examples" / "hostile.html")
    phrases = {k: (v[0], v[1]) for k, v in FAKES["hostile_phrases"].items()}
    analyzer = Analyzer(PhraseTagger(phrases), entities=PhraseEntities({"US": "GPE"}))
    return analyzer.analyze(doc.text, doc.title, source=doc.source)


def example_analysis() -> Analysis:
    phrases = {k: (v[0], v[1]) for k, v in FAKES["phrases"].items()}
    analyzer = Analyzer(PhraseTagger(phrases), entities=PhraseEntities(FAKES["entities"]))
    text = (ROOT / "examples" / "article.txt").read_text("utf-8")
    return analyzer.analyze(text, source="examples/article.txt")


def parse(html: str) -> Dom:
    dom = Dom()
    dom.feed(html)
    dom.close()
    return dom


def test_text_is_exact_and_everything_escaped() -> None:
    a = hostile_analysis()
    html = render([a], "html")
    dom = parse(html)
    # The article text comes back exactly from the highlighted document.
    assert "".join(dom.doc_text) == a.text
    # Hostile markup from the article never appears as markup.
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html
    assert 'alert("title")</script>' not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    tags = [t for t, _ in dom.elements]
    assert tags.count("img") == 0 and tags.count("iframe") == 0
    # Only our two scripts: the inert JSON data and the page script whose hash the CSP allows.
    assert [s[0].get("type") for s in dom.scripts] == ["application/json", None]
    assert dom.scripts[1][1] == SCRIPT
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in CSP
    data = json.loads(dom.scripts[0][1])
    assert "<script>window.__pwned=1</script>" in {s["text"] for s in data["articles"][0]["spans"]}
    # No handler attributes, no javascript: URLs, nothing fetched from anywhere.
    for tag, attrs in dom.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in {"src", "href", "action", "srcset"}, (tag, name)
            if value and name not in ("title", "aria-label"):  # (text, never followed)
                assert "javascript:" not in value.lower(), (tag, name, value)
    metas = [a for t, a in dom.elements if t == "meta" and a.get("http-equiv")]
    assert metas and metas[0]["content"] == CSP
    assert "default-src 'none'" in CSP


def test_overlaps_stack_and_quotes_dash() -> None:
    a = example_analysis()
    dom = parse(render([a], "html"))
    segs = [attrs for tag, attrs in dom.elements if tag == "span" and "data-spans" in attrs]
    by_ids = {s["data-spans"]: s for s in segs}
    savages = next(s for s in a.spans if s.text == "savages")
    fear = next(s for s in a.spans if s.technique == "Appeal_to_fear-prejudice")
    both = by_ids[" ".join(str(i) for i in sorted((savages.id, fear.id)))]
    style = both["style"] or ""
    assert style.count("linear-gradient") == 2  # two stacked underlines
    assert "calc(100% - 0px)" in style and "calc(100% - 4px)" in style
    assert "Name calling / labeling (90%)" in (both["title"] or "")
    quoted = next(s for s in a.spans if s.quoted)
    qseg = by_ids[str(quoted.id)]
    assert "repeating-linear-gradient" in (qseg["style"] or "")  # dashed: inside a quotation
    assert "q" in (qseg["class"] or "").split()
    assert all(s.get("tabindex") == "0" for s in segs)


def test_legend_counts_and_summary() -> None:
    a = example_analysis()
    html = render([a], "html")
    dom = parse(html)
    legend = {
        attrs["data-technique"]: attrs for tag, attrs in dom.elements if "data-technique" in attrs
    }
    assert set(legend) == {t for t, n in a.summary.counts.items() if n}
    for t, n in a.summary.counts.items():
        if n:
            assert re.search(rf'data-technique="{re.escape(t)}".*?<span class="n">{n}</span>', html)
    assert "Who is attacked / who is glorified" in html
    assert 'class="bars"' in html and 'class="meter"' in html
    assert f'<span class="big">{a.summary.score:g}</span>' in html
    assert "Heavily loaded" in html


def test_several_articles_one_page() -> None:
    html = render([example_analysis(), hostile_analysis()], "html")
    dom = parse(html)
    docs = [a["data-doc"] for t, a in dom.elements if "data-doc" in a]
    assert docs == ["0", "1"]
    data = json.loads(dom.scripts[0][1])
    assert len(data["articles"]) == 2


def test_screen_readers_get_a_heading_named_highlights_and_counted_bars() -> None:
    import re

    from conftest import example_analysis as titled

    first_line = titled()  # its title is its first line, shown as text
    assert first_line.title and first_line.text.startswith(first_line.title)
    assert re.findall(r"<h1[^>]*>([^<]*)</h1>", render([first_line], "html")) == [first_line.title]
    a = hostile_analysis()
    html = render([a], "html")
    assert len(re.findall(r"<h1[ >]", html)) == 1
    labels = re.findall(
        r'class="seg[^"]*" tabindex="0" role="button" data-spans="[^"]*" '
        r'aria-label="([^"]*)"',
        html,
    )
    assert labels and all(": " in label and "%)" in label for label in labels)
    items = re.findall(r'role="listitem" aria-label="([^"]*)"', html)
    assert items and all(re.search(r": \d+$", item) for item in items)
    assert html.count('class="track" aria-hidden="true"') == len(items)
