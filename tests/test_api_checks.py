"""Public API misuse: every mistake is an UnspinError that says what to do, never a TypeError
deep inside, nor a confident answer to an impossible question."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from unspin import Analyzer
from unspin.checks import check_spans, check_threshold
from unspin.errors import InputError, ModelError
from unspin.phrases import PhraseTagger
from unspin.registry import MODELS_DIR, resolve_model
from unspin.tagger import MAP_AHEAD, Tagger


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([(5, 2)], "not inside the text"),
        ([(0, 99)], "not inside the text"),
        ([(2, 2)], "not inside the text"),
        ([(-5, -1)], "not inside the text"),
        ([(0.5, 2)], "pair of ints"),
        ((0, 3), "pair of ints"),
        ("0-3", "spans must be a list"),
    ],
)
def test_impossible_spans_are_refused(spans: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_spans("abc def", spans)


def test_valid_spans_pass() -> None:
    import numpy as np

    assert check_spans("abc def", [(0, 3), [4, 7]]) == [(0, 3), (4, 7)]
    assert check_spans("abc def", [(np.int64(0), np.int32(3))]) == [(0, 3)]
    check_threshold(np.float32(0.5))  # numpy scalars are numbers too
    check_threshold(1)


@pytest.mark.parametrize("threshold", ["0.5", True, 1.5, -0.1])
def test_bad_thresholds(threshold: object) -> None:
    with pytest.raises(InputError, match="threshold"):
        check_threshold(threshold)


def test_analyzer_checks_its_arguments() -> None:
    analyzer = Analyzer(PhraseTagger({"thugs": "Name_Calling,Labeling"}), entities=None)
    with pytest.raises(InputError, match="must be a str"):
        analyzer.analyze(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="threshold"):
        analyzer.analyze("They are thugs.", threshold="0.5")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="entities must be"):
        Analyzer(entities="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": "2"}, "workers must be"),
        ({"workers": 0}, "workers must be"),
        ({"workers": True}, "workers must be"),
        ({"threads": -1}, "threads must be"),
        ({"threads": 1.5}, "threads must be"),
    ],
)
def test_tagger_checks_workers_and_threads(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):  # the same class as predict's --workers
        Tagger("fast", **kwargs)


@pytest.mark.parametrize("value", ["abc", "2.5", "0", "-1", "\u00b2"])
def test_a_bad_unspin_threads_is_one_clean_error(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from unspin.cli import app
    from unspin.reader import READER_DIR, SpanReader

    monkeypatch.setenv("UNSPIN_THREADS", value)
    with pytest.raises(InputError, match="UNSPIN_THREADS must be a whole number"):
        Tagger("fast")
    with pytest.raises(InputError, match="UNSPIN_THREADS"):
        SpanReader(READER_DIR)
    assert Tagger("fast", threads=1).threads == 1  # given threads: the variable is not read
    article = tmp_path / "a.txt"
    article.write_text("The brave soldiers crushed the terrorists.", encoding="utf-8")
    result = CliRunner().invoke(app, ["analyze", str(article)])
    assert result.exit_code == 1 and "UNSPIN_THREADS" in result.output
    assert "Traceback" not in result.output


def test_unspin_threads_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSPIN_THREADS", " 3 ")
    assert Tagger("fast").threads == 3


@pytest.mark.parametrize("text", ["   \n\n\t ", "\ufeff  ", "\u200b\u200b\u200b"])
def test_blank_text_still_gets_a_technique_for_each_span(text: str) -> None:
    tagger = Tagger("fast")
    ranked = tagger.classify(text, [(0, 2), (1, 3)])
    assert len(ranked) == 2 and all(len(r) == 14 for r in ranked)
    # nothing to read: the training labels' shares, the most frequent technique first
    assert ranked[0][0] == ("Loaded_Language", pytest.approx(0.3438, abs=1e-3))
    assert abs(sum(p for _, p in ranked[0]) - 1) < 1e-3
    assert tagger.predict(text) == []


def test_tagger_takes_numpy_counts() -> None:
    tagger = Tagger("fast", threads=np.int64(1), workers=np.int64(1))  # type: ignore[arg-type]
    assert tagger.workers == 1 and type(tagger.workers) is int


def test_incomplete_model_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(tmp_path)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(MODELS_DIR / "fast" / "config.json", partial)
    with pytest.raises(ModelError, match="missing model.onnx, tc_head.npz, tokenizer.json"):
        Tagger(partial)
    (partial / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="config key 'max_len'"):
        Tagger(partial)
    (partial / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read the model config"):
        Tagger(partial)
    with pytest.raises(ModelError, match="Unknown model 'nope'"):
        resolve_model("nope")
    # names are read as --task and --format are: case and surrounding blanks do not matter
    assert resolve_model("FAST") == resolve_model("fast") == resolve_model(" Fast ")
    assert resolve_model("Default") == resolve_model("default")


def test_tagger_classify_and_predict_many_refuse_misuse() -> None:
    tagger = Tagger("fast", threads=1)
    with pytest.raises(InputError, match="not inside the text"):
        tagger.classify("abc", [(0, 99)])
    with pytest.raises(InputError, match="not one str"):
        tagger.predict_many("abc")  # checked at the call, not at the first next()
    with pytest.raises(InputError, match="not one bytes"):
        tagger.predict_many(b"abc")
    with pytest.raises(InputError, match=r"texts.values\(\)"):
        tagger.predict_many({"article1": "They are thugs."})
    with pytest.raises(InputError, match=r"iterable\) of texts, got NoneType"):
        tagger.predict_many(None)  # type: ignore[arg-type]
    ranked = tagger.classify("They are thugs.", [(9, 14)])[0]
    assert len(ranked) == 14 and ranked[0][1] >= ranked[-1][1]
    stream = tagger.predict_many(["They are thugs.", 42, "More."])  # type: ignore[list-item]
    assert next(stream) == tagger.predict("They are thugs.")
    with pytest.raises(InputError, match=r"^text 1 \(counting from 0\): .*got int"):
        next(stream)


def test_tc_repetition_rule_lifts_repetition_only_for_recurring_text() -> None:
    tagger = Tagger("fast", threads=1)
    text = "Crooked Hillary lies. Crooked Hillary cheats. Crooked Hillary steals. She is weak."
    once, thrice = (text.index("weak"), text.index("weak") + 4), (0, 15)
    tagger.config["tc_repetition_factor"] = 1.0
    plain = dict(tagger.classify(text, [thrice, once])[0]), dict(tagger.classify(text, [once])[0])
    tagger.config.update(tc_repetition_factor=100.0, tc_repetition_min_count=3)
    ruled = dict(tagger.classify(text, [thrice])[0]), dict(tagger.classify(text, [once])[0])
    assert ruled[0]["Repetition"] > plain[0]["Repetition"]
    assert abs(sum(ruled[0].values()) - 1.0) < 1e-5
    assert ruled[1] == pytest.approx(plain[1], abs=1e-6)  # "weak" occurs once: unchanged
    tagger.config["tc_repetition_min_count"] = 4  # three occurrences are not enough now
    assert dict(tagger.classify(text, [thrice])[0]) == pytest.approx(plain[0], abs=1e-6)


def test_joint_head_spans_add_techniques_the_si_cut_missed() -> None:
    tagger = Tagger("fast", threads=1)
    text = (
        "The corrupt elites will destroy our great nation. Patriots must rise up now, before "
        "the traitors and their puppets silence every decent citizen. Make our country proud!"
    )
    tagger.config["joint_head_threshold"] = None
    before = {(s.start, s.end, s.technique): s.score for s in tagger.predict(text, threshold=0.01)}
    tagger.config["joint_head_threshold"] = 0.05
    after = {(s.start, s.end, s.technique): s.score for s in tagger.predict(text, threshold=0.01)}
    assert before.items() <= after.items()  # the SI cut's spans stay as they were
    extra = set(after) - set(before)
    assert extra
    for s, e, t in extra:  # only where that technique was not found already
        assert not any(t == bt and s < be and bs < e for bs, be, bt in before)
        assert 0 < after[(s, e, t)] < 1 and text[s:e].strip() == text[s:e]
    # one technique per stretch (at 0.05 many heads pass on the same words)
    assert len({(s, e) for s, e, _ in extra}) == len(extra)


def test_model_and_title_mistakes_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        Tagger(str(tmp_path / "no_such_model"))
    with pytest.raises(ModelError, match="got int 3"):
        Tagger(3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="names two models"):
        Analyzer("fast", model="small")
    analyzer = Analyzer(PhraseTagger({"traitors": "Name_Calling,Labeling"}), entities=None)
    with pytest.raises(InputError, match="title must be a str"):
        analyzer.analyze("Traitors everywhere!", title=5)  # type: ignore[arg-type]


def test_map_with_workers_reads_a_stream_only_a_little_ahead() -> None:
    tagger = Tagger("fast", threads=2, workers=2)
    read: list[int] = []

    def stream(n: int, pause: float = 0.0) -> Iterator[int]:
        for i in range(n):
            time.sleep(pause)
            read.append(i)
            yield i

    results = tagger.map(lambda n: n * n, stream(10_000))
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    assert len(read) <= 3 + MAP_AHEAD * tagger.workers  # not the whole stream
    results.close()
    # a slow stream: the first result comes as soon as it is ready, not after MAP_AHEAD items
    read.clear()
    slow = tagger.map(lambda n: n, stream(10 * MAP_AHEAD, pause=0.01))
    assert next(slow) == 0 and len(read) < MAP_AHEAD
    slow.close()

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("the corpus reader broke")

    with pytest.raises(RuntimeError, match="corpus reader broke"):
        list(tagger.map(lambda n: n, failing()))


def test_lone_surrogates_are_read_as_replacement_characters() -> None:
    tagger = Tagger("fast", threads=1)
    broken = "They are thugs \ud800 and traitors. The traitors will destroy our nation."
    fixed = broken.replace("\ud800", "\ufffd")
    assert tagger.predict(broken) == tagger.predict(fixed)  # same length: offsets hold
    assert tagger.classify(broken, [(9, 14)]) == tagger.classify(fixed, [(9, 14)])
    analysis = Analyzer(tagger, entities=None).analyze(broken, title="a \udcff title")
    assert analysis.text == fixed and analysis.title == "a \ufffd title"
    from unspin.report import render

    assert render([analysis], "json").encode("utf-8")  # writable as UTF-8


def test_empty_model_name_is_refused() -> None:
    with pytest.raises(ModelError, match="empty"):
        Tagger("")


def test_a_flat_joint_calibration_keeps_the_tuned_cut() -> None:
    """When Platt scaling comes out flat (every span one confidence), the joint cut tuned on
    raw scores must still apply: a cut in calibrated units would keep all spans or none."""
    from unspin.spans import Span
    from unspin.train.loop import calibrate_on

    tagger = Tagger("fast", threads=1)
    text = (
        "The corrupt elites will destroy our great nation. Patriots must rise up now, before "
        "the traitors and their puppets silence every decent citizen. Make our country proud! "
        "The minister said on Tuesday that the talks would resume next week in Geneva."
    )
    tagger.config.update(joint_calibration=None, joint_threshold=0.0)
    raw = tagger.predict(text)
    cut = float(np.median([s.score for s in raw]))
    tagger.config["joint_threshold"] = cut
    tuned = [(s.start, s.end, s.technique) for s in tagger.predict(text)]
    assert 0 < len(tuned) < len(raw)
    tagger.config.update(joint_calibration=[0.0, 0.3], joint_threshold=0.0, joint_raw_threshold=cut)
    flat = tagger.predict(text)
    assert [(s.start, s.end, s.technique) for s in flat] == tuned
    assert {round(s.score, 9) for s in flat} == {round(1 / (1 + np.exp(-0.3)), 9)}
    # an explicit threshold is in calibrated units, as always: 0.5 keeps every span here
    assert len(tagger.predict(text, threshold=0.5)) == len(raw)

    class Stub:  # calibrate_on's side: raw scores that rank spans backwards on "val"
        config: dict = {"joint_threshold": 0.2}

        def _si_spans(self, out: float, thr: object) -> list[Span]:
            return [Span(0, 10, None, out)]

        def _joint_spans(self, out: float, thr: object) -> list[Span]:
            return [Span(0, 10, "Doubt", out)]

    raws = np.linspace(0.05, 0.6, 20)
    gold = {f"a{i}": [(0, 10, "Doubt")] if r < 0.3 else [] for i, r in enumerate(raws)}
    stub = Stub()
    calibrate_on(stub, {f"a{i}": float(r) for i, r in enumerate(raws)}, gold)  # type: ignore[arg-type]
    assert stub.config["joint_calibration"][0] == 0.0
    assert stub.config["joint_raw_threshold"] == 0.2 and stub.config["joint_threshold"] == 0.0


def test_repetition_only_labels_text_that_recurs() -> None:
    """Repetition means the phrase recurs in the article: a joint span whose text occurs once
    gets another technique (or none), never Repetition."""
    from unspin.decode import occurrences

    tagger = Tagger("fast", threads=1)
    texts = [
        "The corrupt elites want you to fear. Make America great again!",
        "Title\n\nThe corrupt traitors lie.\nOur great nation wins.\n",
        "Never again. Never again will the traitors win. Never again will they lie to us, "
        "because the traitors always lie and our great nation will never forget.",
    ]
    seen = 0
    for text in texts:
        for sp in tagger.predict(text, threshold=0.0):
            if sp.technique == "Repetition":
                assert occurrences(text, sp.start, sp.end) >= 2, text[sp.start : sp.end]
                seen += 1
    assert seen  # the rule leaves Repetition where the text does recur


def test_head_spans_keep_the_surest_technique_of_a_stretch() -> None:
    from unspin.techniques import TECHNIQUES

    tagger = Tagger("fast", threads=1)
    text = "Officials met on Tuesday. The corrupt traitors lied again. The talks went on."
    out = tagger.outputs(text)
    out.tech = np.zeros_like(out.tech)
    a = text.index("traitors")
    word = [i for i, (s, e) in enumerate(out.enc.offsets) if a <= s and e <= a + 8]
    assert word
    flag, doubt = TECHNIQUES.index("Flag-Waving"), TECHNIQUES.index("Doubt")
    out.tech[word, doubt] = 0.7
    out.tech[word, flag] = 0.9  # both pass 0.5 on the same word: the surer one stays
    tagger.config["joint_head_threshold"] = 0.5
    spans = tagger._head_spans(out, [])
    assert [(text[sp.start : sp.end], sp.technique) for sp in spans] == [
        ("traitors", "Flag-Waving")
    ]
    out.tech[word, doubt] = 0.95
    assert [sp.technique for sp in tagger._head_spans(out, [])] == ["Doubt"]


def test_an_ensemble_joint_call_leaves_its_members_span_reader() -> None:
    """The joint task reads no span reader; it must not unset the members' (a TC call on
    another thread may be using it)."""
    members = [Tagger("fast", threads=1), Tagger("fast", threads=1)]
    ens = Tagger.ensemble(
        {**members[0].config, "name": "ens", "members": ["fast", "fast"]}, members
    )
    before = [m._reader for m in members]
    assert all(r is not None for r in before)
    ens.predict("The corrupt traitors lied again. Our great nation will win.")
    assert [m._reader for m in members] == before


def test_calibration_report_has_no_cross_fit_when_one_half_is_empty() -> None:
    import zlib

    from unspin.spans import Span
    from unspin.train.loop import calibrate_on

    class Stub:
        config: dict = {"joint_threshold": 0.0}

        def _si_spans(self, out: float, thr: object) -> list[Span]:
            return [Span(0, 10, None, out)]

        def _joint_spans(self, out: float, thr: object) -> list[Span]:
            return [Span(0, 10, "Doubt", out)]

    ids = [f"a{i}" for i in range(60) if zlib.crc32(f"a{i}".encode()) % 2 == 0][:12]
    raws = np.linspace(0.1, 0.9, len(ids))
    gold = {a: [(0, 10, "Doubt")] if r > 0.5 else [] for a, r in zip(ids, raws, strict=True)}
    report = calibrate_on(Stub(), dict(zip(ids, raws, strict=True)), gold)  # type: ignore[arg-type]
    assert report["joint"]["ece_calibrated_crossfit"] is None and report["joint"]["table"] == []
    assert report["joint"]["platt"][0] > 0  # the fit itself still runs on all spans
