"""The HTML report of a hostile page in headless Chromium: nothing runs, nothing loads, the
article's markup shows as text, and the highlights work (hover/click card, stacked lines)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from unspin.analysis import Analyzer, PhraseEntities, PhraseTagger
from unspin.ingest import read_path
from unspin.report import render

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
FAKES = json.loads((ROOT / "tests" / "golden" / "example_fakes.json").read_text("utf-8"))
CHROMIUM = os.environ.get("UNSPIN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201 - playwright Browser
    sync_api = pytest.importorskip("playwright.sync_api")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_hostile_article_in_chromium(browser, tmp_path: Path) -> None:  # noqa: ANN001
    doc = read_path(ROOT / "examples" / "hostile.html")
    phrases = {k: (v[0], v[1]) for k, v in FAKES["hostile_phrases"].items()}
    phrases["the takfiri terrorists near the border"] = ("Appeal_to_fear-prejudice", 0.6)
    analyzer = Analyzer(PhraseTagger(phrases), entities=PhraseEntities({"US": "GPE"}))
    analysis = analyzer.analyze(doc.text, doc.title, source=doc.source)
    report = tmp_path / "report.html"
    report.write_text(render([analysis], "html"), encoding="utf-8")

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    dialogs: list[str] = []
    requests: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(report.as_uri())
    page.wait_for_load_state("load")

    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert requests == [report.as_uri()]  # nothing but the file itself
    assert errors == []  # our script ran under the CSP without a violation
    assert page.locator("script").count() == 2
    assert page.locator("img, iframe, a, object, embed").count() == 0
    text = page.locator("[data-doc]").inner_text()
    assert "<script>window.__pwned=1</script>" in text
    assert '<img src=x onerror="window.__pwned=2">' in text
    assert "javascript:window.__pwned=3" in text
    assert "Victory <script>" in page.title() or "unspin report" in page.title()

    # Overlapping spans: the Name calling span inside the fear span has two underlines.
    seg = page.locator(".seg", has_text="takfiri terrorists").first
    image = seg.evaluate("e => getComputedStyle(e).backgroundImage")
    assert image.count("linear-gradient") == 2

    # Hover shows the card; click pins it; hostile text in the card stays text.
    hostile = page.locator(".seg", has_text="<script>window.__pwned=1</script>").first
    hostile.hover()
    card = page.locator("#card")
    assert card.is_visible()
    assert "Loaded language" in card.inner_text()
    assert "55% confidence" in card.inner_text()
    assert "<script>window.__pwned=1</script>" in card.inner_text()
    assert card.locator("script").count() == 0
    seg.click()
    assert "Name calling / labeling" in card.inner_text()
    assert "Appeal to fear / prejudice" in card.inner_text()
    assert "Attaches an insulting or admiring label" in card.inner_text()
    if os.environ.get("UNSPIN_SCREENSHOT"):
        page.screenshot(path=os.environ["UNSPIN_SCREENSHOT"], full_page=True)
    page.keyboard.press("Escape")
    assert not card.is_visible()
    # By keyboard: Enter opens the card with focus inside it; Escape returns focus to the span.
    seg.focus()
    page.keyboard.press("Enter")
    assert card.is_visible()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Close"
    page.keyboard.press("Escape")
    assert not card.is_visible()
    assert page.evaluate("document.activeElement.textContent") == seg.inner_text()
    # Screen readers: each highlight names its techniques; the page has a heading.
    assert "Name calling" in (seg.get_attribute("aria-label") or "")
    assert page.locator("h1").count() == 1
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    page.close()
