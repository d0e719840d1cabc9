"""Training configs: a broken one fails at once with one line that names the key and the fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unspin.cli import app
from unspin.errors import InputError
from unspin.registry import shipped_models
from unspin.train.config import DEFAULTS, load_config

ROOT = Path(__file__).resolve().parents[1]


CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.toml"))


def test_every_shipped_model_has_its_config() -> None:
    shipped = {"small", "fast", "fast-more", "base-6ep", "reader-mpnet", "reader-distilled"}
    shipped |= {"accurate", "medium"}  # medium: a student of accurate's bottom 6 layers
    assert shipped <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_load(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "configs" / f"{name}.toml"
    monkeypatch.chdir(tmp_path)  # paths in a config are relative to where `unspin train` runs
    init = tomllib.loads(path.read_text(encoding="utf-8")).get("init")
    if init:  # a later stage: refused until the stage it starts from has been trained
        with pytest.raises(InputError, match="train that run first"):
            load_config(path)
        Path(init).parent.mkdir(parents=True)
        Path(init).write_bytes(b"")
    teacher = tomllib.loads(path.read_text(encoding="utf-8")).get("teacher")
    if teacher and teacher not in shipped_models():  # refused until its teacher is trained
        with pytest.raises(InputError, match="train the teacher first"):
            load_config(path)
        Path(teacher).mkdir(parents=True, exist_ok=True)
        (Path(teacher) / "config.json").write_text("{}")
    soft = tomllib.loads(path.read_text(encoding="utf-8")).get("soft_targets")
    if soft:  # a distilled reader: refused until its teacher's labels are written
        with pytest.raises(InputError, match="label_spans"):
            load_config(path)
        Path(soft).parent.mkdir(parents=True, exist_ok=True)
        Path(soft).write_bytes(b"")
    cfg = load_config(path)
    assert cfg["name"] and set(cfg) >= set(DEFAULTS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'name = "x\n', "not valid TOML"),
        (b'name = "x"\nepochs = "two"\n', "epochs = 'two' should be a whole number"),
        (b'name = "x"\nbf16 = 1\n', "should be true/false"),
        (b'name = "x"\nlr = true\n', "should be a number"),
        (b'name = "x"\n\xff\n', "not UTF-8"),
        (b'name = "x"\nlrr = 3\n', "unknown key 'lrr' (did you mean 'lr'?)"),
        (b"", 'set at least name = "..."'),
        (b'name = "x"\ndevice = "gpu"\n', "use one of cpu, cuda, auto"),
        (b'name = "x"\njoint_tuner = "own"\n', "use one of own_cut, si_cut"),
        (b'name = "x"\ntask = "reader"\njoint_tuner = "si_cut"\n', "joint_tuner"),
        (b'name = "x"\nbatch_size = 0\n', "must be above 0"),
        (b'name = "x"\nteacher = []\n', "a list of teachers needs one or more"),
        (b'name = "x"\nteacher = ["runs/a", 3]\n', "a list of teachers needs one or more"),
        (b'name = "x"\nteacher = ["runs/a", ""]\n', "a list of teachers needs one or more"),
        (b'name = "x"\nstop_after_epochs = 1.5\n', "should be a whole number"),
        (b'name = "x"\nlexical_c = -1.0\n', "lexical_c = -1.0 must be a number >= 0"),
        (b'name = "x"\nlexical_c = inf\n', "lexical_c = inf must be a number >= 0"),
        (b'name = "x"\ntask = "tc"\n', "use one of tagger, reader"),
        (b'name = "x"\nspan_tokens = 32\n', "span_tokens only applies to a span reader"),
        (b'name = "x"\ntask = "reader"\nlayers = 2\n', "layers does nothing for a span"),
        (b'name = "x"\nsoft_targets = "s.npz"\n', "soft_targets only applies to a span reader"),
        (b'name = "x"\ntask = "reader"\nsoft_targets = "nope.npz"\n', "soft_targets = 'nope.npz'"),
        (b'name = "x"\ntask = "reader"\nunlabeled = "news"\n', "unlabeled only applies to a"),
        (b'name = "x"\ntask = "reader"\ndevice = "gpu"\n', "use one of cpu, cuda, auto"),
        (b'name = "x"\ntask = "reader"\nmembers = ["small"]\n', "members does nothing for a"),
        (b'name = "x"\ntask = "reader"\nspan_tokens = 1\n', "span_tokens must be at least 2"),
        (b'name = "x"\ntask = "reader"\nleft_tokens = -1\n', "left_tokens = -1 must be 0 or"),
        (
            b'name = "x"\ntask = "reader"\nleft_tokens = 300\nright_tokens = 200\n',
            "= 568 tokens, more than the encoder's 512 positions",
        ),
        # windows hold max_len - 2 tokens: a longer stride skips tokens
        (b'name = "x"\nmax_len = 128\n', "stride = 128 (its default) must be at most max_len - 2"),
        (b'name = "x"\nmax_len = 128\nstride = 64\n', "train_stride = 192 (its default) must"),
        (b'name = "x"\nmax_len = 600\n', "max_len = 600 must be from 3 to 512"),
        # training windows may be shorter than the ones the model reads articles in
        (b'name = "x"\ntrain_max_len = 513\n', "train_max_len = 513 must be from 3 to 512"),
        (
            b'name = "x"\nmax_len = 512\nstride = 384\ntrain_max_len = 128\n',
            "train_stride = 192 (its default) must be at most train_max_len - 2 = 126",
        ),
        (b'name = "x"\nmax_train_articles = -1\n', "max_train_articles = -1 must be 0 or more"),
        (b'name = "x"\nlayers = -2\n', "layers = -2 must be 0 or more"),
        # keys that would be silently ignored
        (b'name = "x"\nmembers = ["small"]\nepochs = 9\n', "epochs does nothing for an ens"),
        (b'name = "x"\nunlabeled_limit = 50\n', "unlabeled_limit only applies with a teacher"),
        (b'name = "x"\nunlabeled = "ptc:train"\n', "unlabeled only applies with a teacher"),
    ],
)
def test_broken_configs_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(InputError, match="config .*bad.toml") as err:
        load_config(path)
    assert message in str(err.value)
    result = CliRunner().invoke(app, ["train", str(path), "--corpus", str(tmp_path)])
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_teacher_keys_left_at_their_defaults_are_fine(tmp_path: Path) -> None:
    # configs/small.toml without its teacher (tools/gpu/students.py's PTC-only run)
    path = tmp_path / "ok.toml"
    path.write_text('name = "x"\nteacher = ""\nunlabeled_limit = 0\nunlabeled = ""\n')
    assert load_config(path)["unlabeled_limit"] == 0


def test_numbers_may_be_written_as_whole_numbers(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('name = "x"\nlr = 1\nmax_minutes = 5\n', encoding="utf-8")
    assert load_config(path)["lr"] == 1


def test_a_folder_or_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        load_config(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_a_teacher_ensemble_is_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ens.toml"
    path.write_text('name = "x"\nteacher = ["runs/a/onnx", "small"]\n', encoding="utf-8")
    with pytest.raises(InputError, match="'runs/a/onnx' is neither a shipped model"):
        load_config(path)  # checked before the corpus loads
    Path("runs/a/onnx").mkdir(parents=True)
    Path("runs/a/onnx/config.json").write_text("{}")
    assert load_config(path)["teacher"] == ["runs/a/onnx", "small"]


def test_training_windows_may_be_shorter_than_the_reading_ones(tmp_path: Path) -> None:
    """``train_max_len`` cuts the training windows; the model folder keeps ``max_len``, the
    windows it reads articles in."""
    from unspin.train.loop import _window_args

    path = tmp_path / "c.toml"
    path.write_bytes(
        b'name = "x"\nmax_len = 512\nstride = 384\ntrain_max_len = 256\ntrain_stride = 254\n'
    )
    cfg = load_config(path)
    ids = {"cls_id": 1, "sep_id": 2}
    assert _window_args(cfg, ids) == {"cls_id": 1, "sep_id": 2, "max_len": 256, "stride": 254}
    path.write_bytes(b'name = "x"\nmax_len = 512\nstride = 384\n')
    assert _window_args(load_config(path), ids)["max_len"] == 512


@pytest.mark.parametrize("name", ["small", "fast", "medium"])
def test_shipped_models_read_articles_in_the_windows_their_config_names(name: str) -> None:
    """``unspin train configs/NAME.toml`` writes the windows a model reads articles in
    (``max_len``, ``stride``) into its folder: the shipped folder must hold the same ones (a
    re-tuned stride goes into the config too)."""
    import json

    from unspin.registry import resolve_model

    toml = "fast-more" if name == "fast" else name
    cfg = tomllib.loads((ROOT / "configs" / f"{toml}.toml").read_text(encoding="utf-8"))
    shipped = json.loads((resolve_model(name) / "config.json").read_text(encoding="utf-8"))
    assert (shipped["max_len"], shipped["stride"]) == (cfg["max_len"], cfg["stride"])
