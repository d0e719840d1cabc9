"""spaCy component: nlp.add_pipe("unspin") fills doc.spans["unspin"] for displacy."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

spacy = pytest.importorskip("spacy")

from spacy import displacy  # noqa: E402

from unspin.spans import Span  # noqa: E402

TEXT = "The takfiri terrorists fled, and the brave army of our great nation cheered."


class FakeTagger:
    """Flags fixed phrases of TEXT; one span is off token boundaries on purpose."""

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]:
        def at(phrase: str, technique: str, score: float, shift: int = 0) -> Span:
            start = text.index(phrase) + shift
            return Span(start, start + len(phrase) - shift, technique, score)

        spans = [
            at("takfiri terrorists", "Name_Calling,Labeling", 0.93),
            at("terrorists", "Loaded_Language", 0.61),
            at("brave army of our great nation", "Flag-Waving", 0.8),
            at("terrorists", "Doubt", 0.7, shift=3),  # "rorists": widened to the token
        ]
        cut = 0.5 if threshold is None else threshold
        return [s for s in spans if s.score >= cut]


def fake_tagger() -> FakeTagger:
    return FakeTagger()


def test_entry_point_declared() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="spacy_factories")}
    if "unspin" not in names:
        pytest.skip("unspin is not installed with its entry points (pip install -e .)")
    assert names["unspin"] == "unspin.spacy_component:make_unspin"


def test_round_trip_with_fake_tagger() -> None:
    import unspin.spacy_component  # noqa: F401 - registers the factory without metadata

    nlp = spacy.blank("en")
    component = nlp.add_pipe("unspin", config={"model": "small", "threshold": 0.5})
    assert component.model == "small" and component.threshold == 0.5
    component.tagger = fake_tagger()
    doc = nlp(TEXT)
    group = doc.spans["unspin"]
    got = [(s.text, s.label_) for s in group]
    assert got == [
        ("takfiri terrorists", "Name_Calling,Labeling"),
        ("terrorists", "Loaded_Language"),
        ("terrorists", "Doubt"),
        ("brave army of our great nation", "Flag-Waving"),
    ]
    assert group.attrs["scores"] == [0.93, 0.61, 0.7, 0.8]
    html = displacy.render(doc, style="span", options={"spans_key": "unspin"})
    assert "Name_Calling,Labeling" in html and "Flag-Waving" in html
    assert nlp.config["components"]["unspin"]["model"] == "small"


def test_threshold_and_custom_key() -> None:
    import unspin.spacy_component  # noqa: F401

    nlp = spacy.blank("en")
    component = nlp.add_pipe("unspin", config={"threshold": 0.75, "spans_key": "sc"})
    component.tagger = fake_tagger()
    doc = nlp(TEXT)
    assert [s.label_ for s in doc.spans["sc"]] == ["Name_Calling,Labeling", "Flag-Waving"]
    assert "unspin" not in doc.spans


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": "nope"}, "Unknown model 'nope'"),
        ({"threshold": 2.0}, "threshold must be between 0 and 1"),
    ],
)
def test_a_bad_config_fails_at_add_pipe(config: dict, message: str) -> None:
    import unspin.spacy_component  # noqa: F401
    from unspin.errors import UnspinError

    nlp = spacy.blank("en")
    with pytest.raises(UnspinError, match=message):
        nlp.add_pipe("unspin", config=config)
