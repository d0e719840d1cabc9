"""Distillation / self-training: teacher targets moved onto the student's tokens, the soft loss,
and a student trained end to end from a tiny teacher on unlabeled texts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTICLES
from typer.testing import CliRunner

from unspin.cli import app
from unspin.errors import CorpusError, ModelError
from unspin.segment import load_tokenizer
from unspin.train.data import IGNORE

torch = pytest.importorskip("torch")

from unspin.train.distill import (  # noqa: E402
    build_soft_examples,
    load_unlabeled,
    teacher_targets,
)
from unspin.train.loop import _collate, _si_loss  # noqa: E402

runner = CliRunner()


def _char_targets(text: str, phrase: str) -> tuple[np.ndarray, np.ndarray]:
    """A teacher that is sure ``phrase`` is a Loaded_Language span and nothing else is."""
    si = np.full((len(text), 3), np.nan, dtype=np.float32)
    tech = np.full((len(text), 14), np.nan, dtype=np.float32)
    for i, ch in enumerate(text):
        if ch.strip():
            si[i], tech[i] = (1.0, 0.0, 0.0), 0.0
    s = text.index(phrase)
    si[s : s + len(phrase)] = (0.0, 0.0, 1.0)
    tech[s : s + len(phrase), 8] = 1.0
    return si, tech


def test_soft_targets_follow_the_teacher_onto_student_tokens(tiny_encoder: Path) -> None:
    tok = load_tokenizer(tiny_encoder / "tokenizer.json")
    text = ARTICLES["1003"]
    phrase = "disgraceful waste of money"
    examples = build_soft_examples(
        {"a": text},
        {"a": _char_targets(text, phrase)},
        tok,
        cls_id=2,
        sep_id=3,
        max_len=64,
        stride=62,
    )
    assert len(examples) == 1
    ex = examples[0]
    assert ex.si_soft is not None and not ex.spans
    assert (ex.si == IGNORE).all()  # no gold labels: only the soft loss applies
    assert ex.si_soft[0].sum() == 0 and ex.si_soft[-1].sum() == 0  # CLS / SEP carry no loss
    inside = ex.si_soft[1:-1, 2] > 0.5
    words = tok.decode([int(i) for i, keep in zip(ex.ids[1:-1], inside, strict=True) if keep])
    assert words == phrase
    assert (ex.tech[1:-1][inside, 8] == 1.0).all() and ex.tech[1:-1][~inside].sum() == 0


def test_soft_loss_is_cross_entropy_against_the_teacher(tiny_encoder: Path) -> None:
    tok = load_tokenizer(tiny_encoder / "tokenizer.json")
    text = ARTICLES["1004"]
    [ex] = build_soft_examples(
        {"a": text},
        {"a": _char_targets(text, "corrupt elites")},
        tok,
        cls_id=2,
        sep_id=3,
        max_len=64,
        stride=62,
    )
    batch = _collate([ex], pad_id=0)
    logits = torch.zeros(1, len(ex.ids), 3)
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    assert _si_loss(ce, logits, batch).item() == pytest.approx(np.log(3), abs=1e-5)
    confident = torch.log(torch.from_numpy(ex.si_soft).clamp(min=1e-6))[None]
    assert _si_loss(ce, confident, batch).item() < 1e-4


def test_student_trains_from_a_teacher_on_unlabeled_texts(
    tiny_corpus: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    def train(name: str, extra: str, epochs: int = 1) -> Path:
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(
            f'name = "{name}"\nencoder = "{tiny_encoder}"\nmax_len = 24\nstride = 12\n'
            f"train_stride = 12\nepochs = {epochs}\nlr = 1e-3\nbatch_size = 4\nthreads = 1\n"
            + extra,
            encoding="utf-8",
        )
        out = tmp_path / name
        args = ["train", str(cfg), "--corpus", str(tiny_corpus), "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return out

    teacher = train("teacher", "") / "onnx"
    unlabeled = tiny_corpus / "train-articles"
    assert len(load_unlabeled(unlabeled, limit=2)) == 2
    student = train("student", f'teacher = "{teacher}"\nunlabeled = "{unlabeled}"\n')
    (cache,) = teacher.glob("targets-train-articles-4-*.npz")  # cached for the next student
    with np.load(cache) as npz:
        si = npz["article1001/si"]
    assert si.shape == (len(ARTICLES["1001"]), 3)
    config = json.loads((student / "onnx" / "config.json").read_text())
    assert set(config["val"]) >= {"si_f1", "joint_f1"}
    # the training articles themselves as the teacher's texts (soft targets beside the gold)
    train("student2", f'teacher = "{teacher}"\nunlabeled = "ptc:train"\n')
    n_train = len((tiny_corpus / "splits" / "train.txt").read_text().split())
    (ptc_cache,) = teacher.glob(f"targets-ptc-train-{n_train}-*.npz")
    with np.load(ptc_cache) as npz:
        ids = {k.split("/")[0] for k in npz.files}
    assert ids == set((tiny_corpus / "splits" / "train.txt").read_text().split())
    # a teacher ensemble (here the same teacher twice: its cache serves both), and a run
    # stopped after 1 of its 2 planned epochs
    both = f'teacher = ["{teacher}", "{teacher}"]\nunlabeled = "{unlabeled}"\n'
    student3 = train("student3", both + "stop_after_epochs = 1\n", epochs=2)
    report = json.loads((student3 / "train_report.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1]
    assert report["config"]["teacher"] == [str(teacher), str(teacher)]


def test_a_teacher_ensemble_averages_its_teachers(tmp_path: Path) -> None:
    import unspin.train.distill as distill

    texts = {"1": "They are thugs.", "2": "Plain."}
    level = {"a": 0.2, "b": 0.6}

    def fake(folder: object, texts: dict[str, str], **_: object) -> dict:
        v = level[Path(str(folder)).name]
        out = {}
        for a, t in texts.items():
            si = np.full((len(t), 3), v, np.float32)
            tech = np.full((len(t), 14), v, np.float32)
            if Path(str(folder)).name == "b":
                si[0] = tech[0] = np.nan  # no token of teacher b covers the first character
            out[a] = (si, tech)
        return out

    teachers = []
    for name in level:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}", encoding="utf-8")
        teachers.append(str(tmp_path / name))
    real, distill.teacher_targets = distill.teacher_targets, fake  # type: ignore[assignment]
    try:
        out = distill.ensemble_targets(teachers, texts, "src", log=lambda _: None)
        one = distill.ensemble_targets(teachers[0], texts, "src", log=lambda _: None)
    finally:
        distill.teacher_targets = real  # type: ignore[assignment]
    si, tech = out["1"]
    assert si.shape == (len(texts["1"]), 3) and tech.shape == (len(texts["1"]), 14)
    assert np.allclose(si[1:], 0.4) and np.allclose(tech[1:], 0.4)  # the mean of 0.2 and 0.6
    assert np.allclose(si[0], 0.2) and np.allclose(tech[0], 0.2)  # only teacher a covers it
    assert np.allclose(one["2"][0], 0.2)  # a single teacher: its own targets


def test_teacher_cache_is_keyed_by_the_texts(tiny_encoder: Path, tmp_path: Path) -> None:
    from unspin.train.distill import cached_teacher_targets

    teacher = tmp_path / "teacher"  # a stand-in: only its config and network file are hashed
    teacher.mkdir()
    (teacher / "config.json").write_text("{}", encoding="utf-8")
    (teacher / "model.onnx").write_bytes(b"net")
    calls: list[dict[str, str]] = []

    def fake(folder: object, texts: dict[str, str], **_: object) -> dict:
        calls.append(texts)
        return {
            a: (np.zeros((len(t), 3), np.float32), np.zeros((len(t), 14))) for a, t in texts.items()
        }

    import unspin.train.distill as distill

    real, distill.teacher_targets = distill.teacher_targets, fake  # type: ignore[assignment]
    try:
        first = {"1": "They are thugs.", "2": "Plain news."}
        cached_teacher_targets(teacher, first, "src", log=lambda _: None)
        cached_teacher_targets(teacher, first, "src", log=lambda _: None)
        assert len(calls) == 1  # the second call read the cache
        edited = {"1": "They are thugs and worse.", "2": "Plain news."}
        out = cached_teacher_targets(teacher, edited, "src", log=lambda _: None)
        assert len(calls) == 2 and out["1"][0].shape[0] == len(edited["1"])
        other = {"7": "Other ids.", "8": "Same count."}
        cached_teacher_targets(teacher, other, "src", log=lambda _: None)  # no KeyError
        assert len(calls) == 3
        (teacher / "model.onnx").write_bytes(b"retrained")  # a new teacher: new targets
        cached_teacher_targets(teacher, first, "src", log=lambda _: None)
        assert len(calls) == 4
        # an unreadable cache (a write cut short) is made again, not a crash
        for p in teacher.glob("targets-src-2-*.npz"):
            p.write_bytes(b"PK\x03\x04 cut short")
        cached_teacher_targets(teacher, first, "src", log=lambda _: None)
        assert len(calls) == 5
        # an old-style cache (no digest in its name) is used when it is newer than the teacher
        # and holds every article, and renamed to the digest name; else ignored
        for p in teacher.glob("targets-*.npz"):
            p.unlink()
        legacy = teacher / "targets-src-2.npz"
        arrays = {f"{a}/si": np.zeros((len(t), 3)) for a, t in first.items()}
        arrays.update({f"{a}/tech": np.zeros((len(t), 14)) for a, t in first.items()})
        np.savez_compressed(legacy, **arrays)
        cached_teacher_targets(teacher, first, "src", log=lambda _: None)
        assert len(calls) == 5 and not legacy.exists()
        assert len(list(teacher.glob("targets-src-2-*.npz"))) == 1
        for p in teacher.glob("targets-*.npz"):
            p.unlink()
        np.savez_compressed(legacy, **arrays)
        os.utime(legacy, (1, 1))  # older than the teacher's files: maybe another teacher's
        cached_teacher_targets(teacher, first, "src", log=lambda _: None)
        assert len(calls) == 6
    finally:
        distill.teacher_targets = real  # type: ignore[assignment]


def test_a_shipped_teacher_caches_outside_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unspin.registry import MODELS_DIR
    from unspin.train.distill import _teacher_folder, teacher_cache_dir

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path))
    assert _teacher_folder("small") == MODELS_DIR / "small"
    assert teacher_cache_dir("small") == tmp_path / "teachers" / "small"
    assert teacher_cache_dir("runs/base6/onnx") == Path("runs/base6/onnx")


def test_missing_teacher_or_unlabeled_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="train the teacher first"):
        teacher_targets(tmp_path / "nope", {"a": "text"})
    with pytest.raises(CorpusError, match="no unlabeled articles"):
        load_unlabeled(tmp_path)
