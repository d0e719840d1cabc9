"""`unspin analyze`: formats, -o, stdin, several inputs, golden outputs and clean errors.

The model and spaCy are replaced by fakes (a phrase tagger and a fixed entity list), so these
tests are fast, offline and deterministic. UNSPIN_UPDATE_GOLDEN=1 rewrites the golden files.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import unspin.analysis
import unspin.tagger
from unspin.analysis import Analyzer, Entity, PhraseEntities, PhraseTagger
from unspin.cli import app
from unspin.report import render
from unspin.spans import Span

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
FAKES = json.loads((GOLDEN / "example_fakes.json").read_text("utf-8"))
UPDATE = os.environ.get("UNSPIN_UPDATE_GOLDEN") == "1"
ENV = {"COLUMNS": "80", "LINES": "40", "NO_COLOR": "1", "TERM": "dumb"}


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed; rerun with UNSPIN_UPDATE_GOLDEN=1 if intended"


class FakeTagger:
    """Stands in for unspin.tagger.Tagger: same constructor, phrase rules inside."""

    models: list[str] = []

    def __init__(self, model: str = "default", **_: object) -> None:
        FakeTagger.models.append(model)
        phrases = {k: (v[0], v[1]) for k, v in FAKES["hostile_phrases"].items()}
        phrases.update({k: (v[0], v[1]) for k, v in FAKES["phrases"].items()})
        self._inner = PhraseTagger(phrases)

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]:
        return self._inner.predict(text, threshold=threshold)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(unspin.tagger, "Tagger", FakeTagger)
    finder = PhraseEntities(FAKES["entities"])

    def entities(text: str, ranges: Sequence[tuple[int, int]]) -> list[Entity]:
        return finder(text, ranges)

    monkeypatch.setattr(unspin.analysis, "spacy_entities", entities)
    FakeTagger.models.clear()


def run(args: list[str], stdin: str | bytes | None = None):  # noqa: ANN201 - click Result
    return CliRunner().invoke(app, args, input=stdin, env=ENV)


def test_help_golden() -> None:
    result = run(["analyze", "--help"])
    assert result.exit_code == 0
    text = "\n".join(line.rstrip() for line in result.output.splitlines()) + "\n"
    check_golden("analyze_help.txt", text)


def test_help_text_survives_rich_markup() -> None:
    # Rich reads "[word]" as a style tag and drops it: "needs the [train] extra" printed as
    # "needs the  extra". No help text may hold an unescaped tag-like bracket.
    tag = re.compile(r"(?<!\\)\[[a-z#/@][^\[]*?\]")
    cli = typer.main.get_command(app)
    assert isinstance(cli, typer.main.TyperGroup)
    for name, command in cli.commands.items():
        texts = [command.help, command.short_help]
        texts += [getattr(p, "help", None) for p in command.params]
        for text in texts:
            assert not (text and tag.search(text)), (name, text)
    for args in (["--help"], ["train", "--help"]):
        result = run(args)
        assert result.exit_code == 0
        flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
        assert "needs the train extra" in flat, flat


def test_json_golden_and_piped_default(fake_model: None) -> None:
    result = run(["analyze", "examples/article.txt", "--format", "json"])
    assert result.exit_code == 0, result.output
    check_golden("article.json", result.stdout)
    piped = run(["analyze", "examples/article.txt"])  # stdout is not a TTY here: JSON
    assert piped.stdout == result.stdout
    assert FakeTagger.models == ["default", "default"]


def test_model_and_threshold_passed(fake_model: None) -> None:
    result = run(["analyze", "examples/article.txt", "--model", "small", "--threshold", "0.85"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert FakeTagger.models == ["small"]
    assert data["model"] == "small" and data["threshold"] == 0.85
    assert data["spans"] and all(s["score"] >= 0.85 for s in data["spans"])


def test_output_file_format_from_extension(fake_model: None, tmp_path: Path) -> None:
    for name, marker in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.json", '"schema_version": "1.1"'),
        ("r.labels", "article\tName_Calling,Labeling\t"),
        ("r.txt", "[takfiri terrorists]NC"),
    ]:
        out = tmp_path / name
        result = run(["analyze", "examples/article.txt", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert marker in out.read_text("utf-8")
        assert "\x1b[" not in out.read_text("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "r.labels", "r.txt"]


def test_output_dash_is_stdout_and_links_are_written_through(
    fake_model: None, tmp_path: Path
) -> None:
    piped = run(["analyze", "examples/article.txt"])
    dash = run(["analyze", "examples/article.txt", "-o", "-"])
    assert dash.exit_code == 0 and dash.stdout == piped.stdout
    assert not Path("-").exists()
    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    result = run(["analyze", "examples/article.txt", "-o", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text("utf-8") == piped.stdout
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop.name)
    (tmp_path / "plain.txt").write_text("x", encoding="utf-8")
    (tmp_path / "through-file.json").symlink_to("plain.txt/out.json")  # not a loop
    (tmp_path / "folder").mkdir()
    (tmp_path / "to-folder.json").symlink_to("folder")
    for out, message in [
        (loop, f"cannot write {loop}: it is a symbolic link loop"),
        (
            tmp_path / "to-folder.json",
            f"cannot write {tmp_path / 'to-folder.json'}: it is a folder",
        ),
        (Path("."), "cannot write .: it is a folder"),
        (tmp_path / "through-file.json", f"cannot write {tmp_path / 'through-file.json'}: "),
    ]:
        result = run(["analyze", "examples/article.txt", "-o", str(out)])
        assert result.exit_code == 1 and result.stderr.startswith(f"Error: {message}"), (
            result.stderr
        )
        assert out == loop or "loop" not in result.stderr
    assert loop.is_symlink()


def test_output_file_unknown_extension_refused(fake_model: None, tmp_path: Path) -> None:
    for name, shown in [("report.pdf", "'.pdf'"), ("report", "'report' (no extension)")]:
        out = tmp_path / name
        result = run(["analyze", "examples/article.txt", "-o", str(out)])
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == (
            f"Error: cannot tell the format from {shown}; pass --format terminal|json|html|semeval"
        )
        assert not out.exists()
    # --format decides whatever the extension.
    out = tmp_path / "report.pdf"
    result = run(["analyze", "examples/article.txt", "-o", str(out), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")


def test_several_inputs_and_stdin(fake_model: None) -> None:
    article = (ROOT / "examples" / "article.txt").read_text("utf-8")
    result = run(["analyze", "examples/article.txt", "-", "--format", "json"], stdin=article)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 2
    assert data[1]["source"] == "<stdin>"
    assert data[0]["spans"] == data[1]["spans"]
    labels = run(["analyze", "examples/article.txt", "examples/hostile.html", "-f", "semeval"])
    ids = {line.split("\t")[0] for line in labels.stdout.splitlines()}
    assert ids == {"article", "hostile"}


def test_terminal_format_plain(fake_model: None) -> None:
    result = run(["analyze", "examples/article.txt", "--format", "terminal", "--no-color"])
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout
    assert re.search(r"\[mercenaries\s+of\s+the\s+US\]NC", result.stdout)
    assert "Who is attacked / who is glorified" in result.stdout


def test_targets_table_leaves_out_mere_mentions() -> None:
    # Loaded language of unclear polarity only "mentions" its entity: a row of 0 attacked,
    # 0 glorified in the "who is attacked / who is glorified" table says nothing.
    text = "The heroic Syrian Arab Army advanced.\nThe sprawling Takfiri Terrorists camp emptied.\n"
    ents = PhraseEntities({"Syrian Arab Army": "ORG", "Takfiri Terrorists": "ORG"})
    tagger = PhraseTagger({"heroic": "Flag-Waving", "sprawling": "Loaded_Language"})
    a = Analyzer(tagger, entities=ents).analyze(text)
    mention = next(s.target for s in a.spans if s.text == "sprawling")
    assert mention is not None
    assert (mention.text, mention.stance) == ("Takfiri Terrorists", "mentioned")  # kept on the span
    rows = [(r.entity, r.attacked, r.glorified) for r in a.summary.targets]
    assert rows == [("Syrian Arab Army", 0, 1)]
    terminal = render([a], "terminal").split("Who is attacked / who is glorified")[1]
    assert "Syrian Arab Army" in terminal and "Takfiri" not in terminal
    html = render([a], "html").split("<h2>Who is attacked / who is glorified</h2>")[1]
    html = html.split("</section>")[0]
    assert "Syrian Arab Army" in html and "Takfiri" not in html
    # Only mentions: the table is empty, as when no entity is found.
    only = Analyzer(PhraseTagger({"sprawling": "Loaded_Language"}), entities=ents).analyze(text)
    assert only.summary.targets == [] and only.summary.targets_status == "ok"
    assert "none found" in render([only], "terminal").split("who is glorified")[1]


def _bad_inputs(tmp_path: Path) -> list[tuple[list[str], bytes | None, str]]:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02\x03PK\x00")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Les élections".encode("latin-1"))
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as fh:
        fh.truncate(10 * 1024 * 1024)
    nohtml = tmp_path / "nav.html"
    nohtml.write_text("<html><body><nav>Home</nav></body></html>", encoding="utf-8")
    return [
        ([str(empty)], None, "the input is empty"),
        ([str(binary)], None, "looks like a binary file"),
        ([str(latin)], None, "not valid UTF-8 at byte offset 4"),
        ([str(huge)], None, "larger than the 2 MiB limit"),
        (["http://127.0.0.1:9/news"], None, "cannot fetch"),
        ([str(nohtml)], None, "no article text found"),
        ([str(tmp_path / "missing.txt")], None, "no such file"),
        (["-"], b"", "the input is empty"),
        (["examples/article.txt", "--threshold", "2"], None, "threshold must be between 0"),
        (["examples/article.txt", "--format", "pdf"], None, "unknown format 'pdf'"),
    ]


def test_bad_inputs_fail_cleanly(fake_model: None, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    for args, stdin, message in _bad_inputs(tmp_path):
        # A good article first: nothing may be written when a later input is bad.
        result = run(["analyze", "examples/article.txt", *args, "-o", str(out)], stdin=stdin)
        assert result.exit_code == 1, (args, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert message in lines[0], (message, lines[0])
        assert not out.exists()


def test_model_error_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run(["analyze", "examples/article.txt", "--model", "no-such-model-anywhere"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_version_flag_prints_the_package_version() -> None:
    from typer.testing import CliRunner

    from unspin import __version__
    from unspin.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"unspin {__version__}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "joint", "gold.labels"], "Missing argument 'PRED'"),
        (["analyze", "x.txt", "--threshold", "abc"], "Invalid value for '--threshold'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["analyze", "--frob", "x.txt"], "No such option: --frob"),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_1(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from unspin.cli import main

    monkeypatch.setattr(sys, "argv", ["unspin", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.count("\n") == 1 and err.startswith("Error: ") and message in err, err
    assert "--help)" in err


def test_short_help_option(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from unspin.cli import main

    monkeypatch.setattr(sys, "argv", ["unspin", "predict", "-h"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0 and "--workers N" in capsys.readouterr().out


def test_output_that_is_one_of_the_articles_is_refused(fake_model: None, tmp_path: Path) -> None:
    article = tmp_path / "victim.txt"
    original = (ROOT / "examples" / "article.txt").read_text("utf-8")
    article.write_text(original, encoding="utf-8")
    for args in (
        [str(article), "-o", str(article)],
        ["examples/article.txt", str(article), "-o", str(tmp_path / "." / "victim.txt")],
    ):
        result = run(["analyze", *args])
        assert result.exit_code == 1
        assert "writing it would replace the input; choose another output file" in result.stderr
        assert article.read_text("utf-8") == original


def test_semeval_ids_that_collide_are_refused(fake_model: None, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "op.txt").write_text("The takfiri terrorists struck.\n", "utf-8")
    result = run(
        ["analyze", str(tmp_path / "a/op.txt"), str(tmp_path / "b/op.txt"), "-f", "semeval"]
    )
    assert result.exit_code == 1
    assert "both get the article id 'op'" in result.stderr and result.stdout == ""
    same = run(["analyze", str(tmp_path / "a/op.txt"), "-f", "semeval"])  # one input: fine
    assert same.exit_code == 0 and same.stdout.startswith("op\t")


def test_a_bom_does_not_show_the_title_twice(fake_model: None, tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffCouncil Approves Budget\n\nThe council voted on Monday.\n".encode())
    terminal = run(["analyze", str(path), "-f", "terminal", "--no-color"])
    assert terminal.exit_code == 0 and terminal.stdout.count("Council Approves Budget") == 1
    html = run(["analyze", str(path), "-f", "html"])
    plain = tmp_path / "plain.txt"
    plain.write_bytes(path.read_bytes()[3:])
    html_plain = run(["analyze", str(plain), "-f", "html"])
    assert html.stdout.count("Council Approves Budget") == html_plain.stdout.count(
        "Council Approves Budget"
    )


def test_a_full_standard_output_is_one_error_line() -> None:
    import subprocess
    import sys

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-c", "from unspin.cli import main; main()", "models"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr == "Error: cannot write standard output: No space left on device\n"
