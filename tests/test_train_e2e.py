"""Train -> export -> predict end to end with a tiny random encoder (no real weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ARTICLES
from typer.testing import CliRunner

from unspin.cli import app
from unspin.errors import ModelError
from unspin.evaluate import LEXICAL_WEIGHTS
from unspin.tagger import Tagger, session_backend
from unspin.techniques import TECHNIQUES
from unspin.train.portable import is_portable

pytest.importorskip("torch")

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(
    tiny_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    cfg.write_text(
        f'name = "tiny"\nencoder = "{tiny_encoder}"\nmax_len = 24\nstride = 12\n'
        "train_stride = 12\nepochs = 2\nlr = 1e-3\nbatch_size = 4\nbf16 = false\nthreads = 1\n",
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("run")
    result = runner.invoke(
        app, ["train", str(cfg), "--corpus", str(tiny_corpus), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out / "onnx"


def test_export_writes_a_complete_model_folder(trained: Path) -> None:
    for name in ("model.onnx", "tc_head.npz", "tokenizer.json", "config.json", "lexical.npz"):
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["tc_lexical_weight"] in LEXICAL_WEIGHTS
    assert config["max_len"] == 24
    assert set(config["val"]) >= {"si_f1", "tc_f1", "joint_f1"}
    assert 0.0 <= config["si_threshold"] <= 1.0
    assert is_portable(trained / "model.onnx")  # 7-bit weights: no CPU saturates
    import onnx

    ops = [n.op_type for n in onnx.load(str(trained / "model.onnx")).graph.node]
    # unspin.train.graph's rewrites: the first layer's Attention stays fp32, the second's
    # Q/K/V projection is int8 before a MultiHeadAttention; no fused SkipLayerNorm is left
    assert ops.count("Attention") == 1 and ops.count("MultiHeadAttention") == 1
    assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") == 4
    # and neither attention reads a padding mask: the file says so, and is run unpadded
    meta = {p.key: p.value for p in onnx.load(str(trained / "model.onnx")).metadata_props}
    assert meta.get("unspin.unpadded") == "1"
    assert config["window_batch"] == 1 and Tagger(trained, threads=1).batch_size == 1
    # its tokenizer neither pads nor cuts: one text, its own tokens, for direct users too
    tok = json.loads((trained / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["padding"] is None and tok["truncation"] is None


def test_tagger_offsets_are_exact_across_windows(trained: Path) -> None:
    tagger = Tagger(trained, threads=1)
    text = ARTICLES["1002"]  # starts with a BOM; longer than one 24-token window
    out = tagger.outputs(text)
    assert len(out.windows) > 1
    assert out.si.shape == (len(out.enc.ids), 3)
    for (s, e), tid in zip(out.enc.offsets, out.enc.ids, strict=True):
        assert text[s:e].strip(), (s, e, tid)
    for span in tagger.predict(text, threshold=0.0):
        assert 0 <= span.start < span.end <= len(text)
        assert span.technique in TECHNIQUES
        assert 0.0 <= span.score <= 1.0
        assert text[span.start].strip() and text[span.end - 1].strip()


def test_classify_ranks_all_techniques(trained: Path) -> None:
    tagger = Tagger(trained, threads=1)
    text = ARTICLES["1001"]
    s = text.index("takfiri")
    ranked = tagger.classify(text, [(s, s + 18)])[0]
    assert sorted(t for t, _ in ranked) == sorted(TECHNIQUES)
    assert abs(sum(p for _, p in ranked) - 1.0) < 1e-4


@pytest.mark.parametrize("task", ["si", "joint"])
def test_predict_cli_writes_ptc_rows(
    task: str, trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / f"{task}.labels"
    args = ["predict", str(tiny_corpus / "train-articles"), "--task", task, "-o", str(out)]
    result = runner.invoke(app, [*args, "--model", str(trained), "--threshold", "0"])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows, "a threshold of 0 keeps every decoded span"
    for row in rows:
        assert len(row) == (3 if task == "si" else 4)
        assert row[0] in ARTICLES
        start, end = int(row[-2]), int(row[-1])
        assert 0 <= start < end <= len(ARTICLES[row[0]])
        if task == "joint":
            assert row[1] in TECHNIQUES


def test_predict_cli_checks_the_output_before_running(tiny_corpus: Path, tmp_path: Path) -> None:
    articles = str(tiny_corpus / "train-articles")
    for out, message in [
        (tmp_path / "missing" / "si.labels", "does not exist; create it first"),
        (tmp_path, "it is a folder"),
    ]:
        # no model named "no-such-model": the output check must fail before it is looked up
        result = runner.invoke(
            app, ["predict", articles, "--task", "si", "-o", str(out), "--model", "no-such-model"]
        )
        assert result.exit_code == 1 and message in result.output, result.output
        assert not (tmp_path / "missing").exists()


def test_predict_cli_writes_to_stdout_with_dash(
    trained: Path, tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = str(tiny_corpus / "train-articles")
    out = tmp_path / "si.labels"
    args = ["predict", articles, "--task", "si", "--model", str(trained)]
    assert runner.invoke(app, [*args, "-o", str(out)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", "-", "--threshold", "0"])
    assert result.exit_code == 0, result.output
    assert result.stdout and "to standard output" in result.stderr
    runner.invoke(app, [*args, "-o", str(out), "--threshold", "0"])
    assert result.stdout == out.read_text("utf-8")
    named = tmp_path / "-"  # a file called "-" is still reachable as ./-
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "-o", "./-", "--threshold", "0"])
    assert result.exit_code == 0 and result.stdout == ""
    assert named.read_text("utf-8") == out.read_text("utf-8")


def test_predict_tc_fills_the_template_in_order(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    template = tmp_path / "template.labels"
    gold = (tiny_corpus / "train-task-flc-tc.labels").read_text().splitlines()
    template.write_text(
        "".join(
            f"{r.split(chr(9))[0]}\t?\t{r.split(chr(9))[2]}\t{r.split(chr(9))[3]}\n" for r in gold
        )
    )
    gold_file = tiny_corpus / "train-task-flc-tc.labels"

    def predict_tc(rows: Path, out: Path) -> Any:
        args = ["predict", str(tiny_corpus / "train-articles"), "--task", "tc"]
        args += ["--template", str(rows), "-o", str(out), "--model", str(trained)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return result

    out = tmp_path / "tc.labels"
    result = predict_tc(template, out)
    got = [line.split("\t") for line in out.read_text().splitlines()]
    want = [line.split("\t") for line in template.read_text().splitlines()]
    assert [(r[0], r[2], r[3]) for r in got] == [(r[0], r[2], r[3]) for r in want]
    assert all(r[1] in TECHNIQUES for r in got)
    assert "note:" not in result.stderr
    # a gold file passed as the template: the same rows, labelled the same, with a note
    again = tmp_path / "tc-from-gold.labels"
    result = predict_tc(gold_file, again)
    assert f"note: {len(gold)} of {len(gold)} template rows already name a technique" in (
        " ".join(result.stderr.split())
    )
    assert again.read_text() == out.read_text()
    # identical spans listed twice get two different techniques (multiset matching)
    score = runner.invoke(app, ["score", "tc", str(gold_file), str(out), "--json"])
    assert score.exit_code == 0, score.output
    assert 0.0 <= json.loads(score.output)["f1"] <= 1.0


def test_predict_errors_are_one_clean_line(trained: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path),
            "--task",
            "joint",
            "-o",
            str(tmp_path / "x"),
            "--model",
            str(trained),
        ],
    )
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app, ["predict", str(tmp_path), "--task", "tc", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "--template" in result.output
    result = runner.invoke(app, ["predict", str(tmp_path), "--model", "nope", "-o", "x"])
    assert result.exit_code == 1
    result = runner.invoke(app, ["predict", str(tmp_path), "--threshold", "2", "-o", "x"])
    assert result.exit_code == 1 and "between 0 and 1" in result.output
    template = tmp_path / "template.labels"
    template.write_text("")
    tc = ["predict", str(tmp_path), "--task", "tc", "--template", str(template), "-o", "x"]
    result = runner.invoke(app, [*tc, "--threshold", "0.5"])
    assert result.exit_code == 1 and "does not apply to --task tc" in result.output
    (tmp_path / "article1.txt").write_text("They are thugs.", encoding="utf-8")
    result = runner.invoke(app, tc)
    assert result.exit_code == 1 and "no rows to label" in result.output


def test_ensemble_averages_its_members(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ens"
    folder.mkdir()
    config = json.loads((trained / "config.json").read_text())
    # the same network twice: the average must equal the single model
    ens_config = {**config, "name": "ens", "members": [str(trained), str(trained)]}
    (folder / "config.json").write_text(json.dumps(ens_config))
    single, ens = Tagger(trained, threads=1), Tagger(folder, threads=1)
    assert ens.name == "ens" and len(ens.members) == 2
    text = ARTICLES["1001"]
    a, b = single.outputs(text), ens.outputs(text)
    assert len(b.members) == 2
    assert abs(a.si - b.si).max() < 1e-6 and abs(a.tech - b.tech).max() < 1e-6
    spans = [(0, 6), (20, 40)]
    assert abs(single.classify_outputs(a, spans) - ens.classify_outputs(b, spans)).max() < 1e-6
    assert single.predict(text, threshold=0.0) == ens.predict(text, threshold=0.0)


def test_ensemble_built_by_train_config(trained: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "ens.toml"
    cfg.write_text(f'name = "ens"\nmembers = ["{trained}", "{trained}"]\nthreads = 1\n')
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(cfg), "--corpus", str(tiny_corpus), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "onnx" / "config.json").read_text())
    assert config["members"] == [str(trained), str(trained)]
    assert set(config["val"]) >= {"si_f1", "tc_f1", "joint_f1"}
    assert "si_threshold" in config and "joint_calibration" in config
    assert Tagger(out / "onnx", threads=1).predict(ARTICLES["1002"], threshold=0.0)


def test_quality_benchmark_runs_on_a_model_and_an_ensemble(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    ens = tmp_path / "ens"
    ens.mkdir()
    config = json.loads((trained / "config.json").read_text())
    (ens / "config.json").write_text(json.dumps({**config, "members": [str(trained)] * 2}))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
    for model in (trained, ens):
        args = [sys.executable, str(script), "--model", str(model), "--corpus", str(tiny_corpus)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "SI    P" in out.stdout and "joint P" in out.stdout and "ECE" in out.stdout


def test_device_key_picks_cpu_or_fails_clearly() -> None:
    import torch

    from unspin.errors import ModelError
    from unspin.train.loop import DEFAULTS, _device

    assert DEFAULTS["device"] == "cpu"
    assert _device({"device": "cpu"}).type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _device({"device": "auto"}).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match='device = "cuda"'):
            _device({"device": "cuda"})


def test_max_minutes_stops_after_the_first_epoch(
    tiny_corpus: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    from unspin.train.loop import train

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        f'name = "tiny"\nencoder = "{tiny_encoder}"\nmax_len = 24\nstride = 12\n'
        "train_stride = 12\nepochs = 5\nlr = 1e-3\nbatch_size = 4\nthreads = 1\n"
        "max_minutes = 0.0001\n",
        encoding="utf-8",
    )
    out = train(cfg, tiny_corpus, tmp_path / "run", finalize_run=False)
    report = json.loads((out / "train_report.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1]
    assert (out / "network.pt").is_file() and not (out / "onnx").exists()


@pytest.mark.parametrize(
    ("extra", "scored"),
    [("val_from_epoch = 3\n", [3, 4]), ("val_from_epoch = 9\n", [4]), ("", [1, 2, 3, 4])],
)
def test_val_from_epoch_skips_scoring_early_epochs(
    tiny_corpus: Path, tiny_encoder: Path, tmp_path: Path, extra: str, scored: list[int]
) -> None:
    """Epochs before val_from_epoch are not scored (nor kept); the last always is."""
    from unspin.train.loop import train

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        f'name = "tiny"\nencoder = "{tiny_encoder}"\nmax_len = 24\nstride = 12\n'
        "train_stride = 12\nepochs = 4\nlr = 1e-3\nbatch_size = 4\nthreads = 1\n"
        "max_train_articles = 2\n" + extra,
        encoding="utf-8",
    )
    out = train(cfg, tiny_corpus, tmp_path / "run", finalize_run=False)
    report = json.loads((out / "train_report.json").read_text())
    assert [h["epoch"] for h in report["history"]] == scored
    assert (out / "network.pt").is_file()


def test_init_starts_from_a_trained_network(
    trained: Path, tiny_corpus: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    import torch

    from unspin.errors import InputError, ModelError
    from unspin.train.loop import train

    start = trained.parent / "network.pt"
    base = (
        f'name = "tiny2"\nencoder = "{tiny_encoder}"\nmax_len = 24\nstride = 12\n'
        "train_stride = 12\nepochs = 1\nlr = 1e-9\nhead_lr = 1e-9\nbatch_size = 4\n"
        "threads = 1\n"
    )
    cfg = tmp_path / "more.toml"
    cfg.write_text(base + f'init = "{start}"\n', encoding="utf-8")
    out = train(cfg, tiny_corpus, tmp_path / "run", finalize_run=False)
    before, after = torch.load(start), torch.load(out / "network.pt")
    # a learning rate of 1e-9 leaves every weight (heads included) where init put it
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=1e-5) for k in before)
    cfg.write_text(base + 'init = "no/such/network.pt"\n', encoding="utf-8")
    with pytest.raises(InputError, match="no such file"):
        train(cfg, tiny_corpus, tmp_path / "run2", finalize_run=False)
    not_a_network = tmp_path / "notes.txt"
    not_a_network.write_text("not a checkpoint", encoding="utf-8")
    cfg.write_text(base + f'init = "{not_a_network}"\n', encoding="utf-8")
    with pytest.raises(ModelError, match="is not a network.pt"):
        train(cfg, tiny_corpus, tmp_path / "run4", finalize_run=False)
    # a shallower config keeps the deeper run's bottom layers (layer dropping)
    cfg.write_text(base + f'layers = 1\ninit = "{start}"\n', encoding="utf-8")
    out = train(cfg, tiny_corpus, tmp_path / "run3", finalize_run=False)
    cut = torch.load(out / "network.pt")
    assert any(".layer.1." in k for k in before) and not any(".layer.1." in k for k in cut)
    assert cut.keys() == {k for k in before if ".layer.1." not in k}
    assert all(torch.allclose(before[k], cut[k], atol=1e-5) for k in cut)
    # a shallower run cannot start a deeper network
    shallow = tmp_path / "shallow.pt"
    torch.save(cut, shallow)
    cfg.write_text(base + f'init = "{shallow}"\n', encoding="utf-8")
    with pytest.raises(ModelError, match="does not fit"):
        train(cfg, tiny_corpus, tmp_path / "run5", finalize_run=False)


def test_add_lexical_fits_the_classifier_into_a_model_folder(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    import shutil

    from unspin.train.export import add_lexical

    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    (folder / "lexical.npz").unlink()
    config = json.loads((folder / "config.json").read_text())
    config.update(tc_lexical_weight=1.0)  # a config that needs the file it lacks
    (folder / "config.json").write_text(json.dumps(config))
    tagger = Tagger(folder, threads=1)  # joint spans never need the file
    assert tagger.predict(ARTICLES["1001"], threshold=0.0) is not None
    with pytest.raises(ModelError, match="lexical.npz is missing"):
        tagger.classify(ARTICLES["1001"], [(0, 6)])
    config.update(tc_lexical_weight=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    assert Tagger(folder, threads=1).lexical is None
    scores = add_lexical(folder, tiny_corpus, c=1.0, threads=1)
    tagger = Tagger(folder, threads=1)
    assert tagger.lexical is not None and "w|traitors" in tagger.lexical.index
    assert json.loads((folder / "config.json").read_text())["val"] == scores


def _copy_with(trained: Path, folder: Path, **settings: Any) -> dict[str, Any]:
    """A copy of the trained model folder with some config settings changed; its config."""
    import shutil

    shutil.copytree(trained, folder)
    config = json.loads((folder / "config.json").read_text()) | settings
    (folder / "config.json").write_text(json.dumps(config))
    return config


def test_retune_rewrites_decoding_for_this_runtime(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    from unspin.train.export import retune

    folder = tmp_path / "model"
    _copy_with(trained, folder, si_threshold=0.99, val={})  # as if tuned on another runtime
    scores = retune(folder, tiny_corpus, threads=1)
    after = json.loads((folder / "config.json").read_text())
    assert after["si_threshold"] != 0.99
    assert after["val"] == scores and set(scores) >= {"si_f1", "tc_f1", "joint_f1"}
    report = json.loads((folder / "export_report.json").read_text())
    assert report["retuned"]["onnxruntime"] and "val" in report["retuned"]


def test_retune_honours_the_si_cut_joint_tuner(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    from unspin.train.export import retune

    folder = tmp_path / "model"
    config = _copy_with(
        trained,
        folder,
        joint_tuner="si_cut",
        joint_si_threshold=0.99,
        joint_head_threshold=0.5,
        tc_lexical_weight=0.7,  # not a grid value: tune_tc must replace it
    )
    retune(folder, tiny_corpus, threads=1)
    after = json.loads((folder / "config.json").read_text())
    assert after["joint_tuner"] == "si_cut"
    assert after["joint_si_threshold"] == after["si_threshold"]  # 0.99 was replaced
    assert after["joint_max_gap"] == after["max_gap"]
    assert after["joint_head_threshold"] is None
    assert after["tc_lexical_weight"] in LEXICAL_WEIGHTS
    config["joint_tuner"] = "si-cut"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="joint_tuner = 'si-cut'.*own_cut, si_cut"):
        retune(folder, tiny_corpus, threads=1)


def test_encoder_names_resolve_through_unspin_encoders(
    tiny_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from unspin.train.encoders import resolve_encoder

    shutil.copytree(tiny_encoder, tmp_path / "minilm")
    monkeypatch.setenv("UNSPIN_ENCODERS", str(tmp_path))
    assert resolve_encoder("minilm") == tmp_path / "minilm"
    from unspin.errors import ModelError

    with pytest.raises(ModelError, match="no mpnet/config.json"):
        resolve_encoder("mpnet")


def test_ship_refuses_a_config_that_names_its_encoder_by_path(
    trained: Path, tmp_path: Path
) -> None:
    import shutil

    from unspin.errors import ModelError
    from unspin.train.export import ship

    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "encoder": "/tmp/w/minilm"}))
    with pytest.raises(ModelError, match="UNSPIN_ENCODERS"):
        ship(folder, "should-not-exist")
    from unspin.registry import MODELS_DIR

    assert not (MODELS_DIR / "should-not-exist").exists()


def test_a_run_configured_for_cuda_finalizes_on_cpu(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    import shutil

    from unspin.train.loop import finalize

    run = tmp_path / "run"
    shutil.copytree(trained.parent, run)
    report = json.loads((run / "train_report.json").read_text())
    report["config"]["device"] = "cuda"  # as written by a run on a GPU machine
    (run / "train_report.json").write_text(json.dumps(report))
    shutil.rmtree(run / "onnx")
    finalize(run, tiny_corpus)
    assert (run / "onnx" / "model.onnx").is_file()


def test_ensemble_member_weights_shift_the_average(trained: Path, tmp_path: Path) -> None:
    import numpy as np

    single = Tagger(trained, threads=1)
    config = dict(single.config)
    text = ARTICLES["1002"]
    fake = Tagger.from_parts(
        dict(config),
        single.tokenizer,
        lambda ids, mask: tuple(np.zeros_like(a) for a in single.backend(ids, mask)),
        single.head,
    )
    even = Tagger.ensemble({**config, "members": ["a", "b"]}, [single, fake])
    tilted = Tagger.ensemble(
        {**config, "members": ["a", "b"], "member_weights": [3, 1]}, [single, fake]
    )
    real, a, b = single.outputs(text).si, even.outputs(text).si, tilted.outputs(text).si
    zero = fake.outputs(text).si
    assert np.allclose(a, (real + zero) / 2) and np.allclose(b, 0.75 * real + 0.25 * zero)
    from unspin.errors import ModelError

    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0]):
        with pytest.raises(ModelError, match="member_weights"):
            Tagger.ensemble(
                {**config, "members": ["a", "b"], "member_weights": bad}, [single, fake]
            )


def test_joint_spans_use_their_own_si_threshold(trained: Path) -> None:
    import numpy as np

    single = Tagger(trained, threads=1)

    def flat(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        si, tech, hidden = single.backend(ids, mask)
        return np.zeros_like(si), tech, hidden  # P(B) + P(I) = 2/3 on every token

    config = {**single.config, "si_threshold": 0.7, "joint_threshold": 0.0}
    config.pop("joint_si_threshold", None)
    config.pop("joint_max_gap", None)
    tagger = Tagger.from_parts(dict(config), single.tokenizer, flat, single.head)
    text = ARTICLES["1002"]
    assert tagger.predict_si(text) == [] and tagger.predict(text) == []
    tagger.config["joint_si_threshold"] = 0.5  # the joint task may cut lower than SI
    assert tagger.predict_si(text) == []
    spans = tagger.predict(text)
    assert spans and all(s.technique in TECHNIQUES for s in spans)
    tagger.config.update(si_threshold=0.5, joint_si_threshold=0.7)
    assert tagger.predict_si(text) and tagger.predict(text) == []


def test_joint_spans_of_function_words_alone_are_dropped(trained: Path) -> None:
    import numpy as np

    single = Tagger(trained, threads=1)

    def flat(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        si, tech, hidden = single.backend(ids, mask)
        return np.zeros_like(si), tech, hidden  # every token in a span

    config = {**single.config, "joint_threshold": 0.0, "split_sentences": True}
    config.update(si_threshold=0.5, joint_si_threshold=0.5, max_gap=0, joint_max_gap=0)
    tagger = Tagger.from_parts(dict(config), single.tokenizer, flat, single.head)
    text = "They will be there. Thugs burn the villages."
    si = {text[s.start : s.end] for s in tagger.predict_si(text)}
    joint = {text[s.start : s.end] for s in tagger.predict(text)}
    assert si == {"They will be there", "Thugs burn the villages"}  # end marks stay out
    assert joint == {"Thugs burn the villages"}
    tagger.config["drop_function_words"] = False
    assert {text[s.start : s.end] for s in tagger.predict(text)} == si


def test_tagger_refuses_bad_arguments_with_unspin_errors(trained: Path) -> None:
    from unspin.errors import InputError

    tagger = Tagger(trained, threads=1)
    for call in (tagger.predict, tagger.predict_si):
        with pytest.raises(InputError, match="between 0 and 1"):
            call("They are thugs.", threshold=2)
        with pytest.raises(InputError, match="must be a str"):
            call(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="between 0 and 1"):
        next(tagger.predict_many(["They are thugs."], threshold=-0.5))


def test_workers_tag_side_by_side_with_the_same_results(trained: Path) -> None:
    texts = [ARTICLES[a] for a in sorted(ARTICLES)] * 3
    one = Tagger(trained, threads=2)
    two = Tagger(trained, threads=2, workers=2)
    assert two.workers == 2
    for task in ("joint", "si"):
        expect = [one.predict(t) if task == "joint" else one.predict_si(t) for t in texts]
        assert list(two.predict_many(texts, task=task)) == expect
        assert list(one.predict_many(texts, task=task)) == expect
    from unspin.errors import InputError

    with pytest.raises(InputError, match="workers"):
        Tagger(trained, workers=0)
    with pytest.raises(InputError, match="task"):
        next(one.predict_many(texts, task="tc"))


@pytest.mark.parametrize("task", ["joint", "tc"])
def test_predict_cli_workers_do_not_change_the_output(
    task: str, trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"{task}-{workers}.labels"
        args = ["predict", str(tiny_corpus / "train-articles"), "--task", task, "-o", str(out)]
        if task == "tc":
            args += ["--template", str(tiny_corpus / "train-task-flc-tc.labels")]
        result = runner.invoke(app, [*args, "--model", str(trained), "--workers", workers])
        assert result.exit_code == 0, result.output
        outs.append(out.read_text())
    assert outs[0] == outs[1] and outs[0]
    bad = runner.invoke(app, ["predict", str(tiny_corpus / "train-articles"), "--workers", "0"])
    assert bad.exit_code == 1 and "--workers" in bad.output


def test_ln_fp32_keeps_the_layernorm_fed_matmuls_fp32(trained: Path, tmp_path: Path) -> None:
    import onnx

    from unspin.train.export import _quantize

    fp32 = trained / "model.fp32.onnx"
    assert fp32.is_file()
    float_matmuls = {}
    for mode in ("all", "ln_fp32"):
        out = tmp_path / f"{mode}.onnx"
        _quantize(fp32, out, {"quantize": mode}, 2, 32)  # the tiny encoder: 2 heads, 32 wide
        graph = onnx.load(str(out)).graph
        float_matmuls[mode] = sum(1 for n in graph.node if n.op_type == "MatMul")
    # 2 feed-forward input projections and the 2 output heads read a LayerNorm
    assert float_matmuls["ln_fp32"] - float_matmuls["all"] == 4


def test_graph_rewrites_keep_the_exported_networks_outputs(trained: Path, tmp_path: Path) -> None:
    """The shipped export (rewritten) against the same quantized network without the rewrites:
    padded batches (the rewritten file, which reads no padding mask, row by row through
    session_backend), probabilities within int8 rounding and the tanh GELU of each other."""
    import onnxruntime as ort

    from unspin.train.export import _quantize

    plain = tmp_path / "plain.onnx"
    _quantize(trained / "model.fp32.onnx", plain, {"quantize": "all"}, 2, 32, rewrite=False)
    config = json.loads((trained / "config.json").read_text())
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 40, size=(3, 20))
    ids[:, 0] = config["cls_id"]
    mask = np.ones_like(ids)
    mask[1, 12:] = 0  # padded rows, as other callers may pass them
    mask[2, 7:] = 0
    ids[mask == 0] = config["pad_id"]
    outs = []
    for path in (trained / "model.onnx", plain):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs.append(session_backend(sess)(ids, mask))  # the rewritten file: row by row
    probs = [np.exp(o[0]) / np.exp(o[0]).sum(-1, keepdims=True) for o in outs]
    diff = np.abs(probs[0] - probs[1])[mask == 1]
    assert 0 < diff.max() < 0.02  # close, and not the same file


def test_finalize_tunes_with_the_lexical_classifier_and_drops_a_stale_one(
    trained: Path, tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import unspin.evaluate
    from unspin.train.loop import finalize

    seen: list[bool] = []
    real = unspin.evaluate.tune_tc

    def spy(tagger: Tagger, outputs: dict, gold: dict) -> dict:
        seen.append(tagger.lexical is not None)
        return real(tagger, outputs, gold)

    monkeypatch.setattr(unspin.evaluate, "tune_tc", spy)
    run = tmp_path / "run"
    shutil.copytree(trained.parent, run)
    finalize(run, tiny_corpus)
    assert seen == [True, True]  # the torch model's tuning, then the int8 model's
    assert (run / "onnx" / "lexical.npz").is_file()
    report = json.loads((run / "train_report.json").read_text())
    report["config"]["lexical_c"] = 0.0  # no lexical classifier this time
    (run / "train_report.json").write_text(json.dumps(report))
    seen.clear()
    finalize(run, tiny_corpus)
    assert seen == [False, False]
    assert not (run / "onnx" / "lexical.npz").exists()  # not the previous export's file
    config = json.loads((run / "onnx" / "config.json").read_text())
    assert config["tc_lexical_weight"] == 0.0
    assert Tagger(run / "onnx", threads=1).lexical is None


def test_predict_tc_names_a_missing_lexical_file_before_any_progress(
    trained: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    (folder / "lexical.npz").unlink()
    config = json.loads((folder / "config.json").read_text())
    config["tc_lexical_weight"] = 1.0
    (folder / "config.json").write_text(json.dumps(config))
    arts = tmp_path / "arts"
    arts.mkdir()
    (arts / "article1.txt").write_text("They are thugs.", encoding="utf-8")
    template = tmp_path / "template.labels"
    template.write_text("1\t?\t9\t14\n", encoding="utf-8")
    args = ["predict", str(arts), "--task", "tc", "--template", str(template)]
    result = runner.invoke(app, [*args, "--model", str(folder), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "lexical.npz is missing" in result.output
    assert "classifying" not in result.output  # no progress bar left above the error


def test_windows_run_one_at_a_time_unless_a_batch_is_asked_for(trained: Path) -> None:
    """The int8 file scales its activations per run, so a window runs alone: its output does
    not depend on its neighbours. A larger batch never pads (only equal lengths together)."""
    single = Tagger(trained, threads=1)
    shapes: list[tuple[int, ...]] = []

    def spy(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        shapes.append(ids.shape)
        assert mask.all()
        return single.backend(ids, mask)

    tagger = Tagger.from_parts(dict(single.config), single.tokenizer, spy, single.head)
    text = ARTICLES["1002"] + " " + ARTICLES["1001"]
    windows = tagger.outputs(text).windows
    assert len(windows) >= 3 and len(windows[-1].ids) < len(windows[0].ids)
    assert shapes == [(1, len(w.ids)) for w in windows]
    shapes.clear()
    tagger.batch_size = 8
    tagger.outputs(text)
    assert shapes == [(len(windows) - 1, len(windows[0].ids)), (1, len(windows[-1].ids))]
    # files from before round 14: fixed batches, the short last window padded in
    shapes.clear()
    tagger.pad_batches = True
    with pytest.raises(AssertionError):  # the spy refuses padding: it does reach the backend
        tagger.outputs(text)
    assert shapes == [(len(windows), len(windows[0].ids))]


def test_mistakes_found_at_training_start_leave_no_run_folder(
    tiny_corpus: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    import shutil

    from unspin.errors import CorpusError, InputError
    from unspin.train.loop import train

    cfg = tmp_path / "tiny.toml"
    base = (
        f'name = "tiny"\nencoder = "{tiny_encoder}"\nmax_len = 24\nstride = 12\n'
        "train_stride = 12\nepochs = 1\nbatch_size = 4\nthreads = 1\n"
    )
    have = json.loads((tiny_encoder / "config.json").read_text())["num_hidden_layers"]
    cfg.write_text(base + f"layers = {have + 1}\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"has {have} layers; set layers from 1 to {have}"):
        train(cfg, tiny_corpus, tmp_path / "run1", finalize_run=False)
    assert not (tmp_path / "run1").exists()
    corpus = tmp_path / "ptc"
    shutil.copytree(tiny_corpus, corpus)
    first = (corpus / "splits" / "train.txt").read_text().split()[0]
    with (corpus / "splits" / "val.txt").open("a") as fh:
        fh.write(f"{first}\n")  # an article in both splits
    cfg.write_text(base, encoding="utf-8")
    with pytest.raises(CorpusError, match=f"{first} in both splits/train.txt and splits/val"):
        train(cfg, corpus, tmp_path / "run2", finalize_run=False)
    assert not (tmp_path / "run2").exists()
