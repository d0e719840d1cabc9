"""The span reader (unspin.reader): encoding, the opinion pool, errors, and train -> export ->
read end to end with a tiny random encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import gold_rows
from typer.testing import CliRunner

from unspin.cli import app
from unspin.errors import ModelError
from unspin.reader import SpanReader, encode_span
from unspin.techniques import TECHNIQUES

runner = CliRunner()


class WordTokenizer:
    """Whitespace words as ids 10, 11, ... in order of first sight."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> SimpleNamespace:
        ids = [self.vocab.setdefault(w, 10 + len(self.vocab)) for w in text.split()]
        return SimpleNamespace(ids=ids)


CONFIG = {
    "cls_id": 1,
    "sep_id": 2,
    "start_id": 3,
    "end_id": 4,
    "left_tokens": 2,
    "right_tokens": 3,
    "span_tokens": 4,
    "context_chars": 400,
}


def test_encode_span_marks_the_span_and_caps_each_part() -> None:
    tok = WordTokenizer()
    text = "a b c d SPAN1 SPAN2 e f g h"
    start = text.index("SPAN1")
    seq, marker, end = encode_span(tok, CONFIG, text, start, start + len("SPAN1 SPAN2"))
    ids = {w: tok.vocab[w] for w in tok.vocab}
    full = [
        1,
        ids["c"],
        ids["d"],
        3,
        ids["SPAN1"],
        ids["SPAN2"],
        4,
        ids["e"],
        ids["f"],
        ids["g"],
        2,
    ]
    assert seq == full
    assert (seq[marker], seq[end]) == (3, 4)
    long = "x " + " ".join(f"w{i}" for i in range(10)) + " y"
    seq, marker, end = encode_span(tok, CONFIG, long, 2, len(long) - 2)
    span = seq[marker + 1 : end]
    assert span == [tok.vocab[w] for w in ("w0", "w1", "w8", "w9")]  # first and last halves
    seq, marker, _ = encode_span(tok, {**CONFIG, "left_tokens": 0}, text, start, start + 5)
    assert seq[:2] == [1, 3] and marker == 1


class FakeReader:
    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.calls = 0

    def log_probs(self, text: str, spans: list[tuple[int, int]]) -> np.ndarray:
        self.calls += 1
        return np.log(np.stack([self.table for _ in spans]))


def test_tagger_pools_three_opinions_by_their_weights() -> None:
    from unspin.tagger import Tagger

    tagger = Tagger("fast", threads=1)
    text = "They call him a traitor. Our great nation will win."
    spans = [(16, 23), (25, 50)]
    out = tagger.outputs(text)
    table = np.full(len(TECHNIQUES), 0.01)
    table[TECHNIQUES.index("Flag-Waving")] = 1 - 0.01 * (len(TECHNIQUES) - 1)
    tagger.reader = FakeReader(table)  # type: ignore[assignment]
    head = tagger.classify_outputs(out, spans, 0.0)
    lex = np.exp(tagger.lexical.log_probs(text, spans))
    mixed = tagger.classify_outputs(out, spans, 1.0, 2.0)
    # weights 1, 1, 2 over 4 (the head's probabilities are floored at 1e-9 before the log)
    pooled = (np.maximum(head, 1e-9) * lex * table**2) ** 0.25
    assert mixed == pytest.approx(pooled / pooled.sum(axis=1, keepdims=True), abs=1e-4)
    assert tagger.classify_outputs(out, spans, 0.0, 0.0) == pytest.approx(head)
    assert tagger.classify_outputs(out, spans, 1.0, 2.0) == pytest.approx(mixed)
    assert tagger.reader.calls == 1  # cached per span
    tagger.config.update(tc_reader_weight=3.0, tc_calibration_temperature=1.0)
    tagger.config.update(tc_repetition_factor=1.0)
    tc = tagger.tc_probs(out, spans)
    assert tc == pytest.approx(
        tagger.classify_outputs(out, spans, tagger.config["tc_lexical_weight"], 3.0)
    )
    joint = tagger.predict(text, threshold=0.01)
    tagger.config["tc_reader_weight"] = 0.0
    assert tagger.predict(text, threshold=0.01) == joint  # joint labels never read it


def test_tune_tc_weighs_in_a_reader_that_is_right_where_the_others_are_wrong() -> None:
    from unspin.evaluate import READER_WEIGHTS, tc_f1, tune_tc
    from unspin.tagger import Tagger

    tagger = Tagger("fast", threads=1)
    text = "They call him a traitor. Our great nation will win. The sky is blue today."
    gold = {"1": [(16, 23, "Doubt"), (25, 50, "Doubt"), (52, 72, "Doubt")]}
    outs = {"1": tagger.outputs(text)}
    tagger.reader = None
    assert tune_tc(tagger, outs, gold)["tc_reader_weight"] == 0.0
    without = tc_f1(tagger, outs, gold)
    assert without < 1.0  # the head and the lexical classifier do not say Doubt everywhere
    table = np.full(len(TECHNIQUES), 1e-6)
    table[TECHNIQUES.index("Doubt")] = 1.0
    tagger.reader = FakeReader(table / table.sum())  # type: ignore[assignment]
    setting = tune_tc(tagger, outs, gold)
    assert setting["tc_reader_weight"] in READER_WEIGHTS[1:]
    assert tc_f1(tagger, outs, gold) > without


def test_an_ensemble_reads_each_span_once_for_all_its_members() -> None:
    from unspin.tagger import Tagger

    members = [Tagger("fast", threads=1), Tagger("fast", threads=1)]
    ensemble = Tagger.ensemble(dict(members[0].config), members)
    table = np.full(len(TECHNIQUES), 1 / len(TECHNIQUES))
    ensemble.reader = reader = FakeReader(table)  # type: ignore[assignment]
    text = "They call him a traitor. Our great nation will win."
    out = ensemble.outputs(text)
    probs = ensemble.classify_outputs(out, [(16, 23), (25, 50)], 1.0, 2.0)
    assert probs.shape == (2, len(TECHNIQUES)) and reader.calls == 1
    assert all(m.reader is reader for m in members)
    ensemble.reader = None  # e.g. tuning_cv.py --no-reader: the members follow
    ensemble.classify_outputs(out, [(0, 4)], 1.0, 2.0)
    assert all(m.reader is None for m in members) and reader.calls == 1


def test_a_missing_reader_is_an_error_only_when_weighed_in(tmp_path: Path) -> None:
    from unspin.tagger import Tagger

    tagger = Tagger("fast", threads=1)
    tagger._reader = tmp_path / "none"
    tagger.config["tc_reader_weight"] = 0.0
    assert tagger.reader is None
    tagger._reader = tmp_path / "none"
    tagger.config["tc_reader_weight"] = 1.5
    with pytest.raises(ModelError, match="tc_reader_weight to 0"):
        _ = tagger.reader


def test_a_broken_reader_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing model.onnx, tokenizer.json, config.json"):
        SpanReader(tmp_path)
    for name in ("model.onnx", "tokenizer.json"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "config.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read it"):
        SpanReader(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"left_tokens": 1}), encoding="utf-8")
    with pytest.raises(ModelError, match="not a span reader's config"):
        SpanReader(tmp_path)
    from unspin.reader import READER_DIR

    good = json.loads((READER_DIR / "config.json").read_text(encoding="utf-8"))
    for key, value in (("left_tokens", "x"), ("span_tokens", 0), ("cls_id", -1), ("end_id", True)):
        (tmp_path / "config.json").write_text(json.dumps({**good, key: value}), encoding="utf-8")
        with pytest.raises(ModelError, match=f"{key} = .* must be a whole number"):
            SpanReader(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(good), encoding="utf-8")
    (tmp_path / "tokenizer.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read the tokenizer"):
        SpanReader(tmp_path)


def test_registry_checks_the_reader_weight(tmp_path: Path) -> None:
    from unspin.registry import MODELS_DIR, check_model_folder

    folder = tmp_path / "m"
    shutil.copytree(MODELS_DIR / "fast", folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["tc_reader_weight"] = -1
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelError, match="tc_reader_weight = -1 must be a number >= 0"):
        check_model_folder(folder)


@pytest.fixture(scope="module")
def trained_reader(
    tiny_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    pytest.importorskip("torch")
    # a teacher's soft targets for two spans of one unlabeled article, trained on beside gold
    news = tmp_path_factory.mktemp("news")
    (news / "n1.txt").write_text("Our great nation will never bow to the traitors.", "utf-8")
    probs = np.full((2, len(TECHNIQUES)), 0.01, np.float16)
    probs[0, TECHNIQUES.index("Flag-Waving")] = probs[
        1, TECHNIQUES.index("Name_Calling,Labeling")
    ] = 1
    soft = news.parent / "soft.npz"
    np.savez(soft, **{"n1/spans": np.array([[0, 16], [39, 47]], np.int32), "n1/p": probs})
    cfg = tmp_path_factory.mktemp("cfg") / "reader.toml"
    cfg.write_text(
        f'name = "tiny-reader"\ntask = "reader"\nencoder = "{tiny_encoder}"\nepochs = 2\n'
        "lr = 1e-3\nbatch_size = 4\nthreads = 1\nleft_tokens = 8\nright_tokens = 8\n"
        f'span_tokens = 8\ncontext_chars = 60\nsoft_targets = "{soft}"\nunlabeled = "{news}"\n',
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("run")
    result = runner.invoke(
        app, ["train", str(cfg), "--corpus", str(tiny_corpus), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "span reader: 2 soft-labelled spans" in result.output
    gold = {
        (aid, s, e) for aid, _, s, e in gold_rows() if aid in ("1001", "1003")
    }  # the train split
    assert f"span reader: {len(gold) + 2} train spans" in result.output  # both reach training
    assert f"span reader exported to {out / 'reader'}" in result.output
    return out


def test_reader_train_export_read_end_to_end(trained_reader: Path) -> None:
    import torch

    from unspin.train.reader import ReaderNet, _batch, _rows

    folder = trained_reader / "reader"
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["kind"] == "span_reader" and config["techniques"] == list(TECHNIQUES)
    assert set(config["val"]) == {"tc_f1", "tc_f1_torch"} and len(config["history"]) == 2
    from unspin.train.portable import is_portable

    assert is_portable(folder / "model.onnx")  # 7-bit weights: no CPU saturates
    text = "They call him a traitor. Our great nation will win, and the traitor will lose."
    spans = [(16, 23), (25, 50), (0, 4), (16, 23)]
    fp32 = folder.parent / "fp32"
    fp32.mkdir()
    for name in ("tokenizer.json", "config.json"):
        shutil.copy(folder / name, fp32 / name)
    shutil.copy(folder / "model.fp32.onnx", fp32 / "model.onnx")
    onnx = SpanReader(fp32, threads=1).log_probs(text, spans)
    assert onnx.shape == (4, len(TECHNIQUES))
    assert np.exp(onnx).sum(axis=1) == pytest.approx(np.ones(4), abs=1e-5)
    # the exported graph computes what the trained torch module computes
    from unspin.segment import load_tokenizer

    tok = load_tokenizer(folder / "tokenizer.json")
    net = ReaderNet(Path(config["encoder"]), config["max_recurrence"])
    net.load_state_dict(torch.load(trained_reader / "reader.pt"))
    net.eval()
    rows = _rows(tok, config, {"a": text}, {"a": [(s, e, "Doubt") for s, e in spans[:3]]})
    ids, mask, span_mask, marker, rec, _ = _batch(rows, config["pad_id"])
    with torch.no_grad():
        want = torch.log_softmax(net(ids, mask, span_mask, marker, rec), -1).numpy()
    order = {r["span"]: i for i, r in enumerate(rows)}
    got = np.stack([onnx[spans.index(sp)] for sp in sorted(order, key=order.get)])
    assert got == pytest.approx(want, abs=1e-4)
    int8 = SpanReader(folder, threads=1).log_probs(text, spans)
    assert np.isfinite(int8).all() and int8.shape == (4, len(TECHNIQUES))


def test_ship_reader_copies_only_the_reader_files(
    trained_reader: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unspin.reader
    from unspin.train.export import ship_reader

    target = tmp_path / "readers" / "tc"
    monkeypatch.setattr(unspin.reader, "READER_DIR", target)
    target.mkdir(parents=True)
    (target / "model.fp32.onnx").write_bytes(b"stale")
    assert ship_reader(trained_reader / "reader") == target
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "model.onnx",
        "tokenizer.json",
    ]
    with pytest.raises(ModelError, match="missing model.onnx"):
        ship_reader(tmp_path / "empty")


def test_the_joint_task_never_loads_the_reader() -> None:
    from unspin.tagger import Tagger

    tagger = Tagger("small", threads=1)
    assert tagger.config["tc_reader_weight"] > 0
    tagger.predict("They call him a traitor. Our great nation will win!", threshold=0.0)
    tagger.predict_si("They call him a traitor.")
    assert isinstance(tagger._reader, Path)  # still only where to find it


def test_predict_tc_reports_a_missing_reader_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unspin.tagger

    monkeypatch.setattr(unspin.tagger, "READER_DIR", tmp_path / "no-reader")
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "article1.txt").write_text("They call him a traitor.", encoding="utf-8")
    template = tmp_path / "template.txt"
    template.write_text("1\t?\t16\t23\n", encoding="utf-8")
    result = runner.invoke(
        app,
        ["predict", str(articles), "--task", "tc", "--template", str(template)]
        + ["-o", str(tmp_path / "out.txt"), "--model", "fast"],
    )
    assert result.exit_code == 1, result.output
    assert "span reader" in result.output and "Traceback" not in result.output
    assert "classifying" not in result.output  # no progress bar was started
    assert not (tmp_path / "out.txt").exists()


def test_models_lists_the_reader_only_when_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unspin.reader

    monkeypatch.setattr(unspin.reader, "READER_DIR", tmp_path)
    result = runner.invoke(app, ["models"], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and "span reader" not in result.output
    (tmp_path / "model.onnx").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{broken", encoding="utf-8")
    result = runner.invoke(app, ["models"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "span reader" in result.output and "alone" not in result.output


def test_a_lone_article_gets_every_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unspin.predict
    from unspin.tagger import Tagger

    asked: list[int] = []

    def spy(model: str, *, workers: int = 1) -> Tagger:
        asked.append(workers)
        return Tagger(model, threads=1)

    monkeypatch.setattr(unspin.predict, "Tagger", spy)
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "article1.txt").write_text("They call him a traitor.", encoding="utf-8")
    template = tmp_path / "template.txt"
    template.write_text("1\t?\t16\t23\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    for task in ("tc", "joint"):
        unspin.predict.predict_folder(
            articles,
            task,
            out,
            model="fast",
            workers=2,
            template=template if task == "tc" else None,
        )
    assert asked == [1, 1]  # two workers for one article would leave one thread idle each


def test_special_tokens_written_in_an_article_are_read_as_text() -> None:
    from unspin.reader import READER_DIR
    from unspin.segment import load_tokenizer

    tok = load_tokenizer(READER_DIR / "tokenizer.json")
    ids = tok.encode("a [SEP] b [unused0]", add_special_tokens=False).ids
    assert 102 not in ids and 1 not in ids  # [SEP] and [unused0] are the control tokens


def test_soft_rows_read_a_teachers_spans_with_normalised_targets() -> None:
    from unspin.train.soft_targets import soft_rows

    text = "They call him a traitor and a coward today"
    config = {**CONFIG, "max_recurrence": 5}
    probs = np.full((2, len(TECHNIQUES)), 0.5, np.float16)  # sums to 7, not 1
    probs[1, 3] = 7.0
    rows = soft_rows(
        WordTokenizer(), config, {"a": text}, {"a": (np.array([[16, 23], [0, 4]]), probs)}
    )
    assert [r["span"] for r in rows] == [(16, 23), (0, 4)]
    assert [r["y"].sum() for r in rows] == pytest.approx([1.0, 1.0])
    assert int(np.argmax(rows[1]["y"])) == 3 and rows[0]["y"][0] == pytest.approx(1 / 14)
    seq, a, b = encode_span(WordTokenizer(), config, text, 16, 23)
    assert (rows[0]["a"], rows[0]["b"], len(rows[0]["seq"])) == (a, b, len(seq))
    assert rows[0]["seq"][a] == CONFIG["start_id"] and rows[0]["seq"][b] == CONFIG["end_id"]


def test_label_spans_pairs_each_found_span_with_the_teachers_probabilities() -> None:
    from unspin.train.soft_targets import label_spans

    class Finder:
        def predict_si(self, text: str) -> list[SimpleNamespace]:
            return [SimpleNamespace(start=4, end=9), SimpleNamespace(start=0, end=3)] * (
                "quiet" not in text
            )

    class Teacher:
        def log_probs(self, text: str, spans: list[tuple[int, int]]) -> np.ndarray:
            out = np.full((len(spans), len(TECHNIQUES)), np.log(0.5 / 13))
            for i, (s, _) in enumerate(spans):
                out[i, s % len(TECHNIQUES)] = np.log(0.5)
            return out

    arrays = label_spans(Finder(), Teacher(), {"b": "The enemy.", "a": "A quiet day."})
    assert sorted(arrays) == ["b/p", "b/spans"]  # no spans, no rows
    assert arrays["b/spans"].tolist() == [[0, 3], [4, 9]]
    assert arrays["b/p"].dtype == np.float16 and arrays["b/p"][1, 4] == pytest.approx(0.5, abs=1e-3)
    assert arrays["b/p"].astype(np.float32).sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-2)


def test_soft_targets_for_articles_that_are_not_there_name_the_fix(tmp_path: Path) -> None:
    from unspin.errors import CorpusError
    from unspin.train.soft_targets import load_soft_targets

    (tmp_path / "x.txt").write_text("Some news.", encoding="utf-8")
    probs = np.ones((1, len(TECHNIQUES)), np.float16)
    np.savez(tmp_path / "s.npz", **{"y/spans": np.array([[0, 4]], np.int32), "y/p": probs})
    with pytest.raises(CorpusError, match="set `unlabeled` to the folder it was labelled from"):
        load_soft_targets(tmp_path / "s.npz", tmp_path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y/spans": np.array([[0, 4]], np.int32)}, "y needs both y/spans and y/p"),
        ({"y/spans": np.array([[0, 4]]), "y/p": np.ones((1, 13))}, "rows are not"),
        ({"y/spans": np.array([[0, 4]]), "y/p": np.zeros((1, 14))}, "rows are not"),
        ({"y/spans": np.array([[0, 40]]), "y/p": np.ones((1, 14))}, "inside its 10 characters"),
        ({"y/spans": np.array([[4, 4]]), "y/p": np.ones((1, 14))}, "rows are not"),
    ],
)
def test_malformed_soft_targets_are_a_corpus_error(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    from unspin.errors import CorpusError
    from unspin.train.soft_targets import load_soft_targets

    (tmp_path / "y.txt").write_text("Some news.", encoding="utf-8")
    np.savez(tmp_path / "s.npz", **arrays)
    with pytest.raises(CorpusError, match=message):
        load_soft_targets(tmp_path / "s.npz", tmp_path)
    (tmp_path / "s.npz").write_bytes(b"")
    with pytest.raises(CorpusError, match="not a .npz file"):
        load_soft_targets(tmp_path / "s.npz", tmp_path)


def test_a_reader_on_cuda_without_a_gpu_is_a_model_error(
    tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from unspin.train.config import DEFAULTS
    from unspin.train.reader import fit_reader

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match='device = "cuda" but torch sees no GPU'):
        fit_reader({**DEFAULTS, "task": "reader", "device": "cuda"}, tiny_corpus)
