"""JSON report: the committed schema, validation, round trips and the Python API golden."""

from __future__ import annotations

import json

import pytest
from conftest import GOLDEN, ROOT, example_analysis

from unspin import Analysis
from unspin.report import render
from unspin.report.json import schema_text


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "docs" / "schema.json").read_text("utf-8")
    assert committed == schema_text(), (
        "docs/schema.json is stale: python -m unspin.report.json --schema > docs/schema.json"
    )


def test_api_matches_cli_golden() -> None:
    """The Python API gives the same objects the CLI serialises (golden from test_report_cli)."""
    golden = json.loads((GOLDEN / "article.json").read_text("utf-8"))
    data = json.loads(render([example_analysis()], "json"))
    golden["model"] = data["model"]  # the CLI names the model; an injected tagger has none
    assert data == golden


def test_round_trip_and_offsets() -> None:
    a = example_analysis()
    text = render([a], "json")
    back = Analysis.model_validate_json(text)
    assert back == a
    data = json.loads(text)
    for span in data["spans"]:
        assert data["text"][span["start"] : span["end"]] == span["text"]
        assert set(span) >= {"start", "end", "text", "technique", "score", "sentence", "quoted"}
    assert data["schema_version"] == "1.1"


def test_output_validates_against_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(render([example_analysis()], "json"))
    jsonschema.Draft202012Validator(schema).validate(data)


def test_several_analyses_make_an_array() -> None:
    a = example_analysis()
    data = json.loads(render([a, a], "json"))
    assert isinstance(data, list) and len(data) == 2 and data[0] == data[1]
    assert render((x for x in (a, a)), "json") == render([a, a], "json")  # any iterable


def test_render_refuses_what_is_not_a_list_of_analyses() -> None:
    from unspin.errors import InputError

    a = example_analysis()
    for bad, match in (
        (a, r"render\(\[analysis\], fmt\)"),
        (None, "got NoneType"),
        ([a, "text"], "one item is a str"),
    ):
        with pytest.raises(InputError, match=match):
            render(bad, "json")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="use json, html, semeval or terminal"):
        render([a], "pdf")  # type: ignore[arg-type]


def test_docs_excerpt_matches_the_default_model_on_the_example() -> None:
    """docs/report.md shows `unspin analyze examples/article.txt --format json`: its numbers
    must be what the shipped default model prints (update the excerpt when a model changes)."""
    import re

    from unspin import Analyzer
    from unspin.ingest import load

    doc = (ROOT / "docs" / "report.md").read_text("utf-8")
    excerpt = json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1))  # type: ignore[union-attr]
    source = load(ROOT / "examples" / "article.txt")
    # targets (spaCy) are not compared: they change no number below
    got = json.loads(
        render([Analyzer(entities=None).analyze(source.text, title=source.title)], "json")
    )
    assert got["model"] == excerpt["model"]
    want, have = excerpt["summary"], got["summary"]
    keys = ["sentences", "loaded_sentences", "characters", "loaded_characters", "spans"]
    keys += ["character_share", "top_sentences", "score", "level", "quoted_spans"]
    assert {k: have[k] for k in keys} == {k: want[k] for k in keys}
    shown = excerpt["spans"][0]
    span = next(s for s in got["spans"] if s["id"] == shown["id"])
    assert {k: span[k] for k in ("start", "end", "technique", "score")} == {
        k: shown[k] for k in ("start", "end", "technique", "score")
    }
    assert got["sentences"][0]["load"] == excerpt["sentences"][0]["load"]
