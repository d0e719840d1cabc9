"""The SemEval-2020 Task 11 measures: reference cases, hand-made cases, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from unspin.cli import app
from unspin.corpus import Label
from unspin.errors import CorpusError, InputError, UnspinError
from unspin.scorer import Score, merge_spans, score, score_files

FIXTURES = Path(__file__).parent / "fixtures" / "scorer"
EXPECTED: dict[str, dict] = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_cases(name: str) -> None:
    case = EXPECTED[name]
    result = score_files(case["task"], FIXTURES / case["gold"], FIXTURES / case["pred"])
    assert result.precision == pytest.approx(case["p"], abs=1e-6)
    assert result.recall == pytest.approx(case["r"], abs=1e-6)
    assert result.f1 == pytest.approx(case["f1"], abs=1e-6)


def test_reference_cases_cover_every_task() -> None:
    assert {case["task"] for case in EXPECTED.values()} == {"si", "tc", "joint"}


# --------------------------------------------------------------------------- merging


def test_merge_joins_overlapping_and_duplicates_only() -> None:
    assert merge_spans([(5, 10), (0, 6), (0, 6)]) == [(0, 10)]
    assert merge_spans([(0, 5), (5, 9)]) == [(0, 5), (5, 9)]  # touching: kept apart
    assert merge_spans([(20, 30), (0, 50), (60, 61)]) == [(0, 50), (60, 61)]
    assert merge_spans([]) == []


# --------------------------------------------------------------------------- si


def si(article: str, start: int, end: int) -> Label:
    return Label(article, start, end, None)


def test_si_partial_overlap() -> None:
    gold = [si("1", 0, 10)]
    pred = [si("1", 5, 15)]
    result = score("si", gold, pred)
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.5)
    assert result.f1 == pytest.approx(0.5)
    assert result.per_technique is None
    assert (result.n_gold, result.n_pred) == (1, 1)


def test_si_predictions_are_merged_before_scoring() -> None:
    gold = [si("1", 0, 10)]
    pred = [si("1", 0, 10), si("1", 0, 10), si("1", 2, 8)]
    result = score("si", gold, pred)
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)
    assert result.n_pred == 1


def test_si_touching_predictions_count_separately() -> None:
    gold = [si("1", 0, 10)]
    pred = [si("1", 0, 5), si("1", 5, 10)]
    result = score("si", gold, pred)
    assert result.precision == pytest.approx(1.0)
    assert result.recall == pytest.approx(1.0)  # 5/10 + 5/10 over one gold span
    assert result.n_pred == 2


def test_si_spans_only_match_in_the_same_article() -> None:
    result = score("si", [si("1", 0, 10)], [si("2", 0, 10)])
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)


def test_si_empty_predictions_give_zero() -> None:
    result = score("si", [si("1", 0, 10)], [])
    assert (result.precision, result.recall, result.f1, result.n_pred) == (0.0, 0.0, 0.0, 0)


def test_si_one_prediction_over_two_gold_spans() -> None:
    gold = [si("1", 0, 10), si("1", 20, 30)]
    pred = [si("1", 0, 30)]
    result = score("si", gold, pred)
    assert result.precision == pytest.approx(20 / 30)
    assert result.recall == pytest.approx(1.0)


# --------------------------------------------------------------------------- joint


def test_joint_needs_matching_technique() -> None:
    gold = [
        Label("1", 0, 10, "Loaded_Language"),
        Label("1", 20, 30, "Doubt"),
    ]
    pred = [
        Label("1", 0, 10, "Loaded_Language"),
        Label("1", 20, 30, "Slogans"),
    ]
    result = score("joint", gold, pred)
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.5)
    assert result.per_technique is not None
    assert result.per_technique["Loaded_Language"] == pytest.approx((1.0, 1.0, 1.0))
    assert result.per_technique["Doubt"] == (0.0, 0.0, 0.0)
    assert result.per_technique["Slogans"] == (0.0, 0.0, 0.0)
    assert result.per_technique_support == {
        "Doubt": (1, 0),
        "Loaded_Language": (1, 1),
        "Slogans": (0, 1),
    }
    assert list(result.per_technique) == ["Doubt", "Loaded_Language", "Slogans"]


def test_joint_merges_per_technique_not_across() -> None:
    gold = [Label("1", 0, 10, "Doubt")]
    pred = [Label("1", 0, 6, "Doubt"), Label("1", 4, 10, "Doubt"), Label("1", 0, 10, "Slogans")]
    result = score("joint", gold, pred)
    assert result.n_pred == 2  # the two Doubt spans merge, Slogans stays apart
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(1.0)


def test_joint_rejects_label_without_technique() -> None:
    with pytest.raises(CorpusError, match="technique"):
        score("joint", [Label("1", 0, 1, None)], [])


# --------------------------------------------------------------------------- tc


def test_tc_matches_techniques_as_multisets() -> None:
    gold = [
        Label("1", 10, 20, "Loaded_Language"),
        Label("1", 10, 20, "Repetition"),
        Label("1", 30, 40, "Doubt"),
    ]
    pred = [
        Label("1", 10, 20, "Repetition"),
        Label("1", 10, 20, "Loaded_Language"),
        Label("1", 30, 40, "Slogans"),
    ]
    result = score("tc", gold, pred)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 / 3)
    assert result.per_technique is not None
    assert result.per_technique["Repetition"] == pytest.approx((1.0, 1.0, 1.0))
    assert result.per_technique["Doubt"] == (0.0, 0.0, 0.0)
    assert result.per_technique_support is not None
    assert result.per_technique_support["Slogans"] == (0, 1)


def test_tc_missing_predictions_lower_recall_only() -> None:
    gold = [Label("1", 0, 5, "Doubt"), Label("1", 5, 9, "Slogans")]
    result = score("tc", gold, [Label("1", 0, 5, "Doubt")])
    assert result.precision == pytest.approx(1.0)
    assert result.recall == pytest.approx(0.5)


def test_tc_prediction_outside_template_is_an_error() -> None:
    gold = [Label("1", 0, 5, "Doubt")]
    with pytest.raises(InputError, match="not a span of the gold"):
        score("tc", gold, [Label("1", 0, 6, "Doubt")])
    with pytest.raises(InputError, match="2 predicted rows but only 1"):
        score("tc", gold, [Label("1", 0, 5, "Doubt"), Label("1", 0, 5, "Slogans")])


def test_unknown_task() -> None:
    with pytest.raises(InputError, match="si, tc, joint"):
        score("flc", [], [])
    with pytest.raises(UnspinError):
        score_files("nope", FIXTURES / "gold.si.labels", FIXTURES / "pred1.si.labels")


def test_score_to_dict_is_json_ready() -> None:
    result = score("tc", [Label("1", 0, 5, "Doubt")], [Label("1", 0, 5, "Doubt")])
    assert isinstance(result, Score)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["f1"] == 1.0
    assert data["per_technique"]["Doubt"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "n_gold": 1,
        "n_pred": 1,
    }


def test_folder_of_label_files_scores_like_one_file(tmp_path: Path) -> None:
    gold_rows = (FIXTURES / "gold.si.labels").read_text().splitlines(keepends=True)
    folder = tmp_path / "gold"
    folder.mkdir()
    by_article: dict[str, list[str]] = {}
    for row in gold_rows:
        by_article.setdefault(row.split("\t")[0], []).append(row)
    for article_id, rows in by_article.items():
        (folder / f"article{article_id}.task-si.labels").write_text("".join(rows))
    pred = FIXTURES / "pred2.si.labels"
    from_folder = score_files("si", folder, pred)
    from_file = score_files("si", FIXTURES / "gold.si.labels", pred)
    assert from_folder.f1 == pytest.approx(from_file.f1, abs=1e-12)


# --------------------------------------------------------------------------- CLI


def _score_args(*args: str) -> list[str]:
    """``app`` runs ``score`` directly while it is the only command, else as a subcommand."""
    command = typer.main.get_command(app)
    return ["score", *args] if hasattr(command, "list_commands") else list(args)


def test_cli_json_reproduces_reference_case() -> None:
    case = EXPECTED["joint-pred4"]
    runner = CliRunner()
    result = runner.invoke(
        app,
        _score_args(
            case["task"], str(FIXTURES / case["gold"]), str(FIXTURES / case["pred"]), "--json"
        ),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["precision"] == pytest.approx(case["p"], abs=1e-6)
    assert data["recall"] == pytest.approx(case["r"], abs=1e-6)
    assert data["f1"] == pytest.approx(case["f1"], abs=1e-6)
    assert "Loaded_Language" in data["per_technique"]


def test_cli_table_output() -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        _score_args("tc", str(FIXTURES / "gold.tc.labels"), str(FIXTURES / "tcpred1.tc.labels")),
    )
    assert result.exit_code == 0, result.output
    assert "overall" in result.stdout
    assert "0.7967" in result.stdout
    assert "precision" in result.stdout  # piped: wide enough for the longest technique name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("flc", "gold.tc.labels", "pred1.tc.labels"), "unknown task"),
        (("si", "gold.tc.labels", "pred1.si.labels"), "line 1"),
        (("si", "gold.si.labels", "missing.labels"), "not found"),
        (("si", "empty.labels", "gold.si.labels"), "no gold labels"),
    ],
)
def test_cli_errors_are_one_line(args: tuple[str, str, str], message: str) -> None:
    task, gold, pred = args
    runner = CliRunner()
    result = runner.invoke(app, _score_args(task, str(FIXTURES / gold), str(FIXTURES / pred)))
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_score_cli_warns_about_mismatched_ids_and_unlabelled_template_rows(
    tmp_path: Path,
) -> None:
    (tmp_path / "gold.tc").write_text("1\tDoubt\t0\t5\n1\tSlogans\t6\t10\n2\tDoubt\t3\t8\n")
    (tmp_path / "short.tc").write_text("1\tDoubt\t0\t5\n1\tSlogans\t6\t10\n")
    (tmp_path / "off.tc").write_text("1\tDoubt\t0\t5\n1\tSlogans\t6\t11\n")
    (tmp_path / "gold.si").write_text("1\t0\t5\n2\t3\t8\n")
    (tmp_path / "ids.si").write_text("article1\t0\t5\n")
    (tmp_path / "half.si").write_text("1\t0\t5\n")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(app, ["score", *args, "--json"])
        return res.exit_code, res.stdout, res.stderr

    code, out, err = run("tc", str(tmp_path / "gold.tc"), str(tmp_path / "short.tc"))
    assert code == 0 and json.loads(out)["recall"] == pytest.approx(2 / 3)
    assert "label 2 of the 3 template rows" in err and "gold.tc, line 3" in err
    code, _, err = run("tc", str(tmp_path / "gold.tc"), str(tmp_path / "off.tc"))
    assert code == 1 and f"{tmp_path / 'off.tc'}, line 2: TC prediction" in err
    code, _, err = run("si", str(tmp_path / "gold.si"), str(tmp_path / "ids.si"))
    assert code == 0 and "not in the gold ('article1')" in err and "cover 0 of the 2" in err
    code, _, err = run("si", str(tmp_path / "gold.si"), str(tmp_path / "half.si"))
    assert code == 0 and err == ""  # one of two articles predicted: nothing strange
    (tmp_path / "empty.si").write_text("")
    code, out, err = run("si", str(tmp_path / "gold.si"), str(tmp_path / "empty.si"))
    assert code == 0 and json.loads(out)["recall"] == 0
    assert "the predictions hold no rows" in err
    folder = tmp_path / "gold"
    folder.mkdir()
    (folder / "article1.task-si.labels").write_text("1\t0\t5\n")
    (folder / "article2.task-si.labels").write_text("")  # an article without gold spans
    (tmp_path / "both.si").write_text("1\t0\t5\n2\t1\t4\n")
    code, _, err = run("si", str(folder), str(tmp_path / "both.si"))
    assert code == 0 and err == ""
    many = "".join(f"{i}\t0\t5\n" for i in range(1, 11))  # 9 of 10 ids unknown: strange
    (tmp_path / "many.si").write_text(many)
    code, _, err = run("si", str(tmp_path / "gold.si"), str(tmp_path / "many.si"))
    assert "8 predicted article id(s) are not in the gold" in err
    (tmp_path / "one_off.si").write_text("1\t0\t5\n2\t3\t8\n3\t0\t4\n4\t0\t4\n5\t0\t4\n")
    (tmp_path / "gold5.si").write_text("1\t0\t5\n2\t3\t8\n3\t0\t4\n4\t0\t4\n")
    code, _, err = run("si", str(tmp_path / "gold5.si"), str(tmp_path / "one_off.si"))
    assert err == ""  # 1 of 5: an article without gold spans, as PTC has


def test_platt_scaling_never_ranks_spans_backwards() -> None:
    import numpy as np

    from unspin.evaluate import fit_platt

    raw = np.array([0.2, 0.3, 0.4, 0.6, 0.7, 0.8] * 10)
    rising = (raw > 0.5).astype(float)
    a, b = fit_platt(raw, rising)
    assert a > 1  # the score ranks spans: kept
    falling = 1.0 - rising
    falling[:6] = [1, 1, 1, 1, 0, 0]  # 31 of 60 right, mostly the low scores
    a, b = fit_platt(raw, falling)
    assert a == 0.0 and abs(1 / (1 + np.exp(-b)) - 31 / 60) < 1e-9
