"""Terminal report: golden plain output, 80 columns, colours, and hostile control codes."""

from __future__ import annotations

import os

from conftest import GOLDEN, example_analysis
from rich.cells import cell_len

from unspin import Analyzer
from unspin.analysis import PhraseTagger
from unspin.report import render


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


def test_a_byte_order_mark_is_not_printed() -> None:
    text = "\ufeffThey are thugs.\n"
    a = Analyzer(PhraseTagger({"thugs": "Name_Calling,Labeling"}), entities=None).analyze(text)
    out = render([a], "terminal", color=False, width=80)
    assert "\ufeff" not in out and "They are [thugs]NC." in out


def test_a_run_on_sentence_is_clipped_in_the_most_loaded_list() -> None:
    """A text without sentence ends is one sentence: the list shows its start, not all of it
    again (the article itself is still shown whole, in both reports)."""
    from unspin.report import TOP_SENTENCE_CHARS, clip

    text = "The thugs " + "and the vote goes on " * 300 + "untouched tail"
    a = Analyzer(PhraseTagger({"thugs": "Name_Calling,Labeling"}), entities=None).analyze(text)
    assert a.summary.top_sentences == [0]
    shown = clip(text)
    assert len(shown) <= TOP_SENTENCE_CHARS + 2 and shown.endswith(" …")
    assert text.startswith(shown[:-2]) and shown[-3] != " "
    for fmt in ("terminal", "html"):
        out = render([a], fmt, width=80) if fmt == "terminal" else render([a], fmt)
        assert out.count("untouched tail") == 1, fmt  # the article, not the list
    assert clip("Short.") == "Short."
