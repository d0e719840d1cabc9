"""PTC label output: id<TAB>technique<TAB>start<TAB>end, readable by unspin.corpus."""

from __future__ import annotations

import pytest

from unspin.analysis import Analyzer, PhraseTagger
from unspin.corpus import read_labels
from unspin.report import render
from unspin.report.semeval import article_id

TEXT = "Our brave heroes crushed the thugs.\nThe thugs fled.\n"


def test_label_rows_round_trip(tmp_path) -> None:  # noqa: ANN001 - pytest fixture
    tagger = PhraseTagger(
        {"brave heroes": "Flag-Waving", "thugs": "Name_Calling,Labeling", "crushed": "Doubt"}
    )
    a = Analyzer(tagger, entities=None).analyze(TEXT, source="data/article111.txt")
    out = render([a], "semeval")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["111", "Flag-Waving", "4", "16"]
    assert len(rows) == 4
    for aid, _tech, start, end in rows:
        assert aid == "111"
        assert TEXT[int(start) : int(end)] in {"brave heroes", "thugs", "crushed"}
    path = tmp_path / "pred.labels"
    path.write_text(out, encoding="utf-8")
    labels = read_labels(path, task="joint", articles={"111": TEXT})
    assert [(x.start, x.end, x.technique) for x in labels] == [
        (s.start, s.end, s.technique) for s in a.spans
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("articles/article7654.txt", "7654"),
        ("article7654", "7654"),
        ("in/articleA7.txt", "A7"),  # as `unspin predict` names it
        ("in/articleA7.html", "articleA7"),
        ("notes/my story.html", "my_story"),
        ("https://news.example/2024/05/big-win.html", "big-win"),
        ("https://news.example/", "article"),
        ("<stdin>", "stdin"),
        (None, "stdin"),
    ],
)
def test_article_id(source: str | None, expected: str) -> None:
    assert article_id(source) == expected


def test_offsets_of_a_file_with_a_bom_match_the_file(tmp_path) -> None:  # noqa: ANN001
    from unspin.corpus import read_article
    from unspin.ingest import read_path

    path = tmp_path / "article5.txt"
    path.write_bytes(("\ufeff" + TEXT).encode())
    doc = read_path(path)
    tagger = PhraseTagger({"thugs": "Name_Calling,Labeling"})
    a = Analyzer(tagger, entities=None).analyze(doc.text, source=str(path))
    rows = [line.split("\t") for line in render([a], "semeval").splitlines()]
    article = read_article(path)  # what `unspin predict` and the PTC labels count in
    assert rows and all(article[int(s) : int(e)] == "thugs" for _, _, s, e in rows)
    assert rows[0][2] == str(TEXT.index("thugs") + 1)


def test_the_same_article_twice_is_refused() -> None:
    from unspin.errors import InputError
    from unspin.report.semeval import check_ids

    check_ids(["a/article1.txt", "b/article2.txt"])
    with pytest.raises(InputError, match="article1.txt is given twice"):
        check_ids(["a/article1.txt", "a/article1.txt"])
    with pytest.raises(InputError, match="both get the article id '1'"):
        check_ids(["a/article1.txt", "b/article1.txt"])
