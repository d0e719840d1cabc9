"""The models shipped inside the package load offline and honour the span contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unspin.cli import app
from unspin.errors import ModelError
from unspin.lexical import LexicalClassifier
from unspin.registry import MODELS_DIR, model_infos, resolve_model
from unspin.tagger import Tagger
from unspin.techniques import TECHNIQUES

TEXT = (
    "Our Glorious Nation\n\nThe heroic soldiers crushed the takfiri terrorists, the mercenaries "
    "of the US.\nThe ministry said 40 people were evacuated on Tuesday.\n"
    "Every true patriot stands behind our army!\n"
)
INFOS = model_infos()


def test_exactly_one_default_model_within_size_budget() -> None:
    assert [i["name"] for i in INFOS if i.get("default")] == [resolve_model("default").name]
    from unspin.reader import READER_DIR

    files = [*MODELS_DIR.rglob("*"), *READER_DIR.rglob("*")]
    on_disk = sum(f.stat().st_size for f in files if f.is_file())
    assert on_disk / 2**20 <= 200


def test_default_is_the_most_accurate_model_that_meets_its_speed_target() -> None:
    fast_enough = [i for i in INFOS if i.get("speed", {}).get("articles_per_s", 0) >= 2.0]
    best = max(fast_enough, key=lambda i: i["val"]["si_f1"] + i["val"]["joint_f1"])
    assert best.get("default"), (best["name"], "recorded by benchmarks/speed.py --write-config")


@pytest.mark.parametrize("info", INFOS, ids=[i["name"] for i in INFOS])
def test_shipped_model_predicts_valid_spans(info: dict) -> None:
    assert set(info["val"]) >= {"si_f1", "tc_f1", "joint_f1"}
    tagger = Tagger(info["name"], threads=1)
    spans = tagger.predict(TEXT, threshold=0.0)
    assert spans, "with threshold 0 every decoded span is kept"
    for s in spans:
        assert 0 <= s.start < s.end <= len(TEXT)
        assert s.technique in TECHNIQUES and 0.0 <= s.score <= 1.0
        assert "\n\n" not in TEXT[s.start : s.end]
    assert tagger.predict(TEXT) == [s for s in spans if s.score >= tagger.config["joint_threshold"]]
    assert tagger.predict("") == [] and tagger.predict_si("   ") == []


def test_inference_does_not_import_torch() -> None:
    code = "import sys, unspin.tagger, unspin.predict; print('torch' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_models_command_lists_scores() -> None:
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for info in INFOS:
        assert info["name"] in result.output
        assert f"{info['val']['si_f1']:.3f}" in result.output
    # int8 speed depends on the CPU: the table says which one its articles/s come from
    cpus = {i["speed"]["cpu"] for i in INFOS if i.get("speed", {}).get("cpu")}
    assert cpus, "record speed with: python benchmarks/speed.py --model NAME --write-config"
    assert all(cpu in " ".join(result.output.split()) for cpu in cpus)


def test_the_span_reader_ships_and_every_model_weighs_it_into_tc() -> None:
    import numpy as np

    from unspin.reader import READER_DIR, SpanReader

    reader = SpanReader(READER_DIR, threads=1)
    log_probs = reader.log_probs(TEXT, [(4, 19), (25, 67), (4, 19)])
    assert log_probs.shape == (3, len(TECHNIQUES))
    assert np.exp(log_probs).sum(axis=1) == pytest.approx(np.ones(3), abs=1e-4)
    # each span is read alone: int8's dynamic scales would make it depend on its batch-mates
    assert (log_probs[0] == reader.log_probs(TEXT, [(4, 19)])[0]).all()
    assert (log_probs[0] == log_probs[2]).all()
    assert reader.config["val"]["tc_f1"] > 0.6
    assert all(i["tc_reader_weight"] > 0 for i in INFOS if not i.get("members"))
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "120"})
    assert (
        "span reader" in result.output and f"{reader.config['val']['tc_f1']:.3f}" in result.output
    )


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(ModelError, match="unspin models"):
        Tagger("no-such-model")


def test_configs_are_json_with_decoding_settings() -> None:
    for info in INFOS:
        config = json.loads((resolve_model(info["name"]) / "config.json").read_text())
        assert 0 < config["si_threshold"] < 1
        if config.get("members"):  # an ensemble of other shipped models
            members = [
                json.loads((MODELS_DIR / m / "config.json").read_text()) for m in config["members"]
            ]
            assert all(not m.get("members") for m in members)
        else:
            assert config["stride"] <= config["max_len"] - 2
            if config.get("tc_lexical_weight"):
                clf = LexicalClassifier.load(resolve_model(info["name"]) / "lexical.npz")
                assert len(clf.vocab) > 10_000 and clf.coef.shape[1] == len(TECHNIQUES)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tc_lexical_weight", -1.0),
        ("tc_lexical_weight", "high"),
        ("tc_repetition_factor", 0.0),
        ("tc_repetition_min_count", 1.5),
        ("tc_calibration_temperature", float("inf")),
        ("window_batch", "abc"),
        ("window_batch", 0),
        ("window_batch", 2.5),
        ("max_len", 0),
        ("stride", "abc"),
        ("stride", 10_000),  # past max_len - 2: gaps between windows
    ],
)
def test_hand_edited_tc_settings_are_checked(key: str, value: object, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("fast"), folder)
    config = json.loads((folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=f"{key} = .* must be"):
        Tagger(folder, threads=1)
    if key == "window_batch":  # a valid one is taken, and runs unpadded
        config[key] = 2
        (folder / "config.json").write_text(json.dumps(config))
        tagger = Tagger(folder, threads=1)
        assert (tagger.batch_size, tagger.pad_batches) == (2, False)


def test_configs_hold_no_paths_from_the_machine_that_built_them() -> None:
    for info in INFOS:
        text = (resolve_model(info["name"]) / "config.json").read_text()
        config = json.loads(text)
        assert config.get("encoder") in ("minilm", "mpnet"), (info["name"], config.get("encoder"))
        assert "/tmp/" not in text and "/home/" not in text and "/work/" not in text


def test_shipped_tokenizers_neither_pad_nor_cut() -> None:
    """The encoders' own tokenizer.json pads and cuts every text to 128 tokens; a model folder
    ships one that does neither, so its files used directly give one unpadded sequence (the
    rewritten model files read no padding mask)."""
    from tokenizers import Tokenizer

    from unspin.reader import READER_DIR

    folders = [resolve_model(info["name"]) for info in INFOS if not info.get("members")]
    for folder in [*folders, READER_DIR]:
        path = folder / "tokenizer.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        assert config["padding"] is None and config["truncation"] is None, path
        assert len(Tokenizer.from_file(str(path)).encode("Traitors!").ids) < 10


def _copy_fast(tmp_path: Path, **changes: object) -> Path:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("fast"), folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


LONG = "The brave soldiers crushed the cowardly terrorists again and again. " * 60


def test_whole_number_settings_written_as_floats_are_read_as_ints(tmp_path: Path) -> None:
    folder = _copy_fast(tmp_path, max_len=256.0, stride=100.0, window_batch=1.0)
    tagger = Tagger(folder, threads=1)
    assert type(tagger.config["stride"]) is int and tagger.batch_size == 1
    assert isinstance(tagger.predict(LONG), list)  # several windows: slicing takes the ints


def test_a_network_failure_is_one_model_error(tmp_path: Path) -> None:
    folder = _copy_fast(tmp_path, max_len=1024, stride=1000)  # past the 512 positions
    tagger = Tagger(folder, threads=1)
    with pytest.raises(ModelError, match="the network failed on 1 window.*max_len"):
        tagger.predict(LONG)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an npz file", "cannot read the span classifier"),
        (b"", "cannot read the span classifier"),
        (None, "not a span classifier"),  # an npz without the weights
    ],
)
def test_a_damaged_span_classifier_is_one_model_error(
    content: bytes | None, message: str, tmp_path: Path
) -> None:
    import numpy as np

    folder = _copy_fast(tmp_path)
    if content is None:
        np.savez(folder / "tc_head.npz", x=np.zeros(3))
    else:
        (folder / "tc_head.npz").write_bytes(content)
    with pytest.raises(ModelError, match=message):
        Tagger(folder, threads=1)


@pytest.mark.parametrize(
    ("members", "weights", "message"),
    [
        (".", None, "must be a list of model names"),
        ([], None, "incomplete model folder"),  # no members: read as a plain model folder
        (["fast", 3], None, "must be a list of model names"),
        (["."], None, "is the ensemble itself"),
        (["fast", "small"], [1, "x"], "member_weights = .* one number >= 0 per member"),
        (["fast", "small"], [1], "member_weights"),
        (["fast", "small"], [0, 0], "member_weights"),
        (["fast", "inner"], None, "member 'inner' is an ensemble itself"),
    ],
)
def test_ensemble_configs_are_checked(
    members: object, weights: object, message: str, tmp_path: Path
) -> None:
    folder = tmp_path / "ens"
    folder.mkdir()
    (folder / "inner").mkdir()
    (folder / "inner" / "config.json").write_text(json.dumps({"members": ["fast", "small"]}))
    config: dict[str, object] = {"name": "ens", "members": members, "si_threshold": 0.5}
    if weights is not None:
        config["member_weights"] = weights
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=message):
        Tagger(folder, threads=1)
