"""Reading and writing PTC articles, label files and splits (own short texts only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unspin.corpus import (
    ENV_CORPUS_DIR,
    Label,
    default_corpus_dir,
    gold_labels,
    load_split,
    read_article,
    read_articles,
    read_labels,
    write_labels,
)
from unspin.errors import CorpusError, InputError
from unspin.techniques import TECHNIQUES

TEXT = "Big headline\n\nThey are TRAITORS, all of them.\nWe must act now!\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- articles


def test_read_article_keeps_bom_and_carriage_returns(tmp_path: Path) -> None:
    path = write(tmp_path / "article1.txt", "\ufeffTitle\r\n\r\nBody")
    text = read_article(path)
    assert text == "\ufeffTitle\r\n\r\nBody"
    assert len(text) == 14  # BOM + "Title" + 2 x "\r\n" + "Body"
    assert text[1:6] == "Title"


def test_read_article_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        read_article(tmp_path / "nope.txt")
    bad = tmp_path / "article2.txt"
    bad.write_bytes(b"ok \xff\xfe bad")
    with pytest.raises(CorpusError, match="not valid UTF-8 at byte offset 3"):
        read_article(bad)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff")
    with pytest.raises(CorpusError, match="looks like a binary file"):
        read_article(bad)
    bad.write_bytes("They vote on Monday.".encode("utf-16"))
    with pytest.raises(CorpusError, match="UTF-16 text"):
        read_article(bad)
    bad.write_bytes(b"abc\x00def")  # valid UTF-8 with a NUL: refused, as `unspin analyze` does
    with pytest.raises(CorpusError, match="looks like a binary file"):
        read_article(bad)


def test_read_articles_picks_article_files_only(tmp_path: Path) -> None:
    write(tmp_path / "article11.txt", TEXT)
    write(tmp_path / "article22.txt", "\ufeffshort")
    write(tmp_path / "notes.txt", "ignored")
    write(tmp_path / "article33.labels", "ignored")
    articles = read_articles(tmp_path)
    assert articles == {"11": TEXT, "22": "\ufeffshort"}


@pytest.mark.parametrize(
    "name", ["Article5.txt", "article5.TXT", "article 5.txt", "ARTICLE_12.txt", "article.txt"]
)
def test_read_articles_refuses_a_name_meant_as_an_article(tmp_path: Path, name: str) -> None:
    # it used to be skipped in silence: a missing article in the output, and exit code 0
    write(tmp_path / "article11.txt", TEXT)
    write(tmp_path / name, TEXT)
    with pytest.raises(CorpusError, match=r"named exactly article<ID>\.txt"):
        read_articles(tmp_path)


def test_read_articles_skips_an_index_file(tmp_path: Path) -> None:
    write(tmp_path / "article11.txt", TEXT)
    write(tmp_path / "Articles.txt", "a list of the articles")
    write(tmp_path / "ARTICLE-LIST.TXT", "another one")
    assert read_articles(tmp_path) == {"11": TEXT}


def test_read_articles_refuses_a_broken_link(tmp_path: Path) -> None:
    write(tmp_path / "article11.txt", TEXT)
    (tmp_path / "article12.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(CorpusError, match="article12.txt: a link to a file that does not exist"):
        read_articles(tmp_path)


def test_read_articles_refuses_an_article_over_the_size_cap(tmp_path: Path) -> None:
    (tmp_path / "article1.txt").write_text("a" * 100, encoding="utf-8")
    (tmp_path / "article2.txt").write_bytes(b"b" * (3 * 2**20))
    with pytest.raises(CorpusError, match=r"article2.txt: 3,145,728 bytes, larger than the "):
        read_articles(tmp_path, max_bytes=2 * 2**20)
    assert set(read_articles(tmp_path)) == {"1", "2"}  # no cap unless asked
    assert set(read_articles(tmp_path, max_bytes=3 * 2**20)) == {"1", "2"}  # at the cap: read


def test_predict_refuses_an_oversized_article_before_loading_a_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from unspin.cli import app

    arts = tmp_path / "arts"
    arts.mkdir()
    (arts / "article1.txt").write_bytes(b"x " * (2**20 + 1))  # just over 2 MiB
    result = CliRunner().invoke(
        app, ["predict", str(arts), "--task", "si", "-o", str(tmp_path / "out.txt")]
    )
    assert result.exit_code == 1 and "(2 MiB) limit for an article" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.txt").exists()


def test_read_articles_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no article.*pass the folder that holds them"):
        read_articles(tmp_path)
    with pytest.raises(CorpusError, match="not found"):
        read_articles(tmp_path / "missing")
    one = write(tmp_path / "article1.txt", "One article.")
    with pytest.raises(CorpusError, match="is a file, not a folder"):
        read_articles(one)


# --------------------------------------------------------------------------- labels


def test_read_si_labels_single_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.labels", "11\t14\t22\n\n  \n22\t0\t3\r\n")
    assert read_labels(path, task="si") == [Label("11", 14, 22, None), Label("22", 0, 3, None)]


def test_read_tc_labels_folder_of_files(tmp_path: Path) -> None:
    folder = tmp_path / "labels"
    write(folder / "article11.task-flc-tc.labels", "11\tLoaded_Language\t23\t31\n")
    write(folder / "article22.task-flc-tc.labels", "")  # an article without propaganda
    write(folder / "article33.task-flc-tc.labels", "33\tSlogans\t0\t4\n33\tDoubt\t5\t9\n")
    write(folder / "README.txt", "not a labels file")
    labels = read_labels(folder, task="tc")
    assert labels == [
        Label("11", 23, 31, "Loaded_Language"),
        Label("33", 0, 4, "Slogans"),
        Label("33", 5, 9, "Doubt"),
    ]
    single = write(tmp_path / "all.labels", "11\tLoaded_Language\t23\t31\n")
    assert read_labels(single, task="joint") == labels[:1]


def test_read_labels_strips_bom_of_labels_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.labels", "\ufeff11\t0\t5\n")
    assert read_labels(path, task="si") == [Label("11", 0, 5, None)]


def test_tc_template_question_mark(tmp_path: Path) -> None:
    path = write(tmp_path / "template.out", "11\t?\t0\t5\n")
    assert read_labels(path, task="tc", allow_unknown_technique=True) == [Label("11", 0, 5, None)]
    with pytest.raises(CorpusError, match=r"template\.out, line 1"):
        read_labels(path, task="tc")


@pytest.mark.parametrize(
    ("task", "content", "line", "message"),
    [
        ("si", "11\t0\t5\n11\t7\n", 2, "expected 3 tab-separated columns"),
        ("si", "11\tDoubt\t0\t5\n", 1, "looks like a TC/joint file"),
        ("tc", "11\t0\t5\n", 1, "looks like an SI file"),
        ("tc", "11\tDoubt\t5\n", 1, "A column is missing"),
        ("tc", "11\t0\t5\tDoubt\n", 1, "the second column is a number"),
        ("si", "11 0 5\n", 1, "TAB characters"),
        ("si", "\n\n11\tten\t20\n", 3, "not an integer"),
        ("si", "11\t0\t5.5\n", 1, "not an integer"),
        ("si", "11\t+1\t5\n", 1, "not an integer"),
        ("si", "11\t0\t1_0\n", 1, "not an integer"),
        ("si", "11\t0\t\u0665\n", 1, "not an integer"),  # an Arabic-Indic 5
        ("tc", "11\tLoaded_language\t0\t5\n", 1, "unknown technique 'Loaded_language'"),
        ("joint", "11\tPropaganda\t0\t5\n", 1, "Valid techniques: Appeal_to_Authority"),
        ("si", "11\t5\t5\n", 1, "not before end"),
        ("si", "11\t9\t5\n", 1, "not before end"),
        ("si", "11\t-1\t5\n", 1, "negative"),
        ("si", "\t0\t5\n", 1, "article id"),
    ],
)
def test_bad_rows_name_file_and_line(
    tmp_path: Path, task: str, content: str, line: int, message: str
) -> None:
    path = write(tmp_path / "bad.labels", content)
    with pytest.raises(CorpusError) as info:
        read_labels(path, task=task)  # type: ignore[arg-type]
    text = str(info.value)
    assert f"bad.labels, line {line}:" in text
    assert message in text


def test_unknown_technique_suggests_close_name(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.labels", "11\tLoaded_language\t0\t5\n")
    with pytest.raises(CorpusError, match="Did you mean 'Loaded_Language'"):
        read_labels(path, task="tc")
    with pytest.raises(CorpusError) as info:
        read_labels(path, task="tc")
    assert all(name in str(info.value) for name in TECHNIQUES)


def test_labels_checked_against_articles(tmp_path: Path) -> None:
    articles = {"11": "\ufeffabc"}  # 4 code points: the BOM counts
    ok = write(tmp_path / "ok.labels", "11\t0\t4\n11\t1\t4\n")
    assert read_labels(ok, task="si", articles=articles)[1] == Label("11", 1, 4, None)
    past = write(tmp_path / "past.labels", "11\t0\t4\n11\t1\t5\n")
    with pytest.raises(CorpusError, match=r"past\.labels, line 2: end offset 5 is past the end"):
        read_labels(past, task="si", articles=articles)
    orphan = write(tmp_path / "orphan.labels", "99\tDoubt\t0\t1\n")
    with pytest.raises(CorpusError, match=r"orphan\.labels, line 1: no article with id '99'"):
        read_labels(orphan, task="tc", articles=articles)
    named = write(tmp_path / "named.labels", "article11\tDoubt\t0\t1\n")
    with pytest.raises(CorpusError, match=r"id 'article11'; the id is .* write '11'"):
        read_labels(named, task="tc", articles=articles)


def test_labels_offsets_follow_bom_article(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    write(folder / "article5.txt", "\ufeffWe must act NOW")
    text = read_articles(folder)["5"]
    start = text.index("NOW")
    assert start == 13
    labels_path = write(tmp_path / "l.labels", f"5\tSlogans\t{start}\t{start + 3}\n")
    (label,) = read_labels(labels_path, task="joint", articles={"5": text})
    assert text[label.start : label.end] == "NOW"


def test_read_labels_missing_path_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        read_labels(tmp_path / "missing.labels", task="si")
    with pytest.raises(CorpusError, match=r"no \.labels files"):
        read_labels(tmp_path, task="si")
    with pytest.raises(CorpusError, match="unknown task"):
        read_labels(tmp_path, task="flc")  # type: ignore[arg-type]


def test_write_labels_round_trip(tmp_path: Path) -> None:
    labels = [Label("11", 0, 5, "Doubt"), Label("11", 3, 9, None), Label("22", 1, 2, "Slogans")]
    out = tmp_path / "sub" / "pred.labels"
    with pytest.raises(InputError, match="does not exist; create it first"):
        write_labels(out, labels, "tc")  # no folder is made for a mistyped path
    out.parent.mkdir()
    write_labels(out, labels, "tc")
    assert out.read_text() == "11\tDoubt\t0\t5\n11\t?\t3\t9\n22\tSlogans\t1\t2\n"
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600
    out.chmod(0o640)
    write_labels(out, labels, "tc")
    assert out.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode
    assert read_labels(out, task="tc", allow_unknown_technique=True) == labels
    write_labels(out, labels, "si")  # overwrite in place
    assert read_labels(out, task="si") == [Label(x.article_id, x.start, x.end) for x in labels]
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.labels"]  # no temp files


# --------------------------------------------------------------------------- corpus layout


def make_corpus(root: Path) -> Path:
    write(root / "splits" / "train.txt", "11\n22\n\n")
    write(root / "splits" / "val.txt", "33\n")
    write(root / "train-task-si.labels", "11\t0\t4\n22\t1\t3\n33\t2\t5\n")
    write(
        root / "train-task-flc-tc.labels",
        "11\tDoubt\t0\t4\n22\tSlogans\t1\t3\n33\tRepetition\t2\t5\n",
    )
    return root


def test_load_split_and_gold_labels(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "ptc")
    assert load_split(corpus, "train") == ["11", "22"]
    assert load_split(corpus, "val") == ["33"]
    assert gold_labels(corpus, ["33"], "si") == [Label("33", 2, 5, None)]
    assert gold_labels(corpus, ["11", "22"], "tc") == [
        Label("11", 0, 4, "Doubt"),
        Label("22", 1, 3, "Slogans"),
    ]
    with pytest.raises(CorpusError, match="unknown split"):
        load_split(corpus, "test")
    with pytest.raises(CorpusError, match="split file not found"):
        load_split(tmp_path, "train")
    with pytest.raises(CorpusError, match="gold labels file not found"):
        gold_labels(tmp_path, ["11"], "si")


def test_default_corpus_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_corpus(tmp_path / "shared" / "data" / "ptc")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.delenv(ENV_CORPUS_DIR, raising=False)
    monkeypatch.chdir(work)
    assert default_corpus_dir() == corpus.resolve()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv(ENV_CORPUS_DIR, str(elsewhere))
    assert default_corpus_dir() == elsewhere.resolve()

    monkeypatch.setenv(ENV_CORPUS_DIR, str(tmp_path / "missing"))
    with pytest.raises(CorpusError, match=ENV_CORPUS_DIR):
        default_corpus_dir()


def test_labels_files_with_any_line_ends(tmp_path: Path) -> None:
    rows = ["1\t0\t5", "1\t6\t9", "2\t3\t8"]
    want = [Label("1", 0, 5), Label("1", 6, 9), Label("2", 3, 8)]
    for end in ("\n", "\r\n", "\r"):
        path = tmp_path / f"x{len(end)}{ord(end[0])}.labels"
        path.write_bytes((end.join(rows) + end).encode())
        assert read_labels(path, task="si") == want
    bad = tmp_path / "bad.labels"
    bad.write_bytes(b"1\t0\t5\r1\t6\r")
    with pytest.raises(CorpusError, match=r"bad.labels, line 2: expected 3"):
        read_labels(bad, task="si")


def test_a_trailing_tab_ends_the_row(tmp_path: Path) -> None:
    path = write(tmp_path / "pred.labels", "11\t0\t5\t\n11\t7\t12 \n")
    assert read_labels(path, task="si") == [Label("11", 0, 5), Label("11", 7, 12)]
    path = write(tmp_path / "pred.tc.labels", "11\tDoubt\t0\t5\t\t\n")
    assert read_labels(path, task="tc") == [Label("11", 0, 5, "Doubt")]


def test_an_article_name_that_is_not_utf8_is_refused_up_front(tmp_path: Path) -> None:
    write(tmp_path / "article1.txt", TEXT)
    try:
        (Path(os.fsdecode(bytes(tmp_path) + b"/article\xff2.txt"))).write_text("x", "utf-8")
    except (OSError, UnicodeError):  # a file system that only takes UTF-8 names
        pytest.skip("this file system refuses names that are not UTF-8")
    with pytest.raises(CorpusError, match=r"article\ufffd2.txt: the file name is not valid UTF-8"):
        read_articles(tmp_path)


def test_predict_never_writes_over_an_article_or_its_template(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from unspin.cli import app

    arts = tmp_path / "arts"
    article = write(arts / "article1.txt", TEXT)
    template = write(tmp_path / "template.labels", "1\t?\t0\t5\n")
    for task, out in [("si", article), ("tc", template)]:
        extra = ["--template", str(template)] if task == "tc" else []
        result = CliRunner().invoke(
            app, ["predict", str(arts), "--task", task, *extra, "-o", str(out)]
        )
        assert result.exit_code == 1, result.output
        assert f"-o {out} is the input" in result.output and "Traceback" not in result.output
    assert article.read_text("utf-8") == TEXT and template.read_text("utf-8") == "1\t?\t0\t5\n"
