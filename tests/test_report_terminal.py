"""Terminal report: golden plain output, 80 columns, colours, and hostile control codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.cells import cell_len

from unspin import Analysis, Analyzer
from unspin.analysis import PhraseEntities, PhraseTagger
from unspin.report import render

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
FAKES = json.loads((GOLDEN / "example_fakes.json").read_text("utf-8"))


def example_analysis() -> Analysis:
    phrases = {k: (v[0], v[1]) for k, v in FAKES["phrases"].items()}
    analyzer = Analyzer(PhraseTagger(phrases), entities=PhraseEntities(FAKES["entities"]))
    text = (ROOT / "examples" / "article.txt").read_text("utf-8")
    return analyzer.analyze(text, title=text.split("\n", 1)[0], source="examples/article.txt")


def test_plain_golden_fits_80_columns() -> None:
    out = render([example_analysis()], "terminal", color=False, width=80)
    path = GOLDEN / "article_terminal.txt"
    if os.environ.get("UNSPIN_UPDATE_GOLDEN") == "1":
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text("utf-8")
    assert "\x1b" not in out
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    # own words in [..], quoted words in {..}; nested spans nest their brackets
    assert "{the great victory of our people}FW" in out
    assert "[if these [savages]NC are not stopped" in out
    for heading in ("Legend", "Summary", "Most loaded sentences", "Who is attacked"):
        assert heading in out


def test_colour_output() -> None:
    out = render([example_analysis()], "terminal", color=True, width=80)
    assert "\x1b[" in out
    assert "[takfiri" not in out  # colours replace the brackets
    assert "takfiri" in out and "NC" in out


def test_control_codes_from_the_article_are_neutralised() -> None:
    text = "The thugs\x1b[2J\x1b]0;pwned\x07 left.\u202eevil\n"
    a = Analyzer(PhraseTagger({"thugs": "Name_Calling,Labeling"}), entities=None).analyze(text)
    for color in (True, False):
        out = render([a], "terminal", color=color, width=80)
        assert "\x1b[2J" not in out and "\x1b]0;" not in out and "\x07" not in out
        assert "\u202e" not in out
        assert "\ufffd[2J" in out


def test_no_spans() -> None:
    a = Analyzer(PhraseTagger({}), entities=None).analyze("Nothing to see here.\n")
    out = render([a], "terminal", color=False, width=80)
    assert "No technique found." in out
    assert "no techniques found" in out
