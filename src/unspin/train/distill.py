"""Distillation / self-training: a teacher model's token probabilities on unlabeled news as soft
training targets for a smaller student.

The teacher may use another tokenizer (MPNet teaching MiniLM), so its per-token outputs are
first spread over characters, then averaged over each student token's characters.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unspin.errors import CorpusError, ModelError
from unspin.registry import shipped_models
from unspin.segment import encode_article, load_tokenizer, make_windows
from unspin.tagger import Tagger
from unspin.train.data import IGNORE, Example

__all__ = [
    "CharTargets",
    "build_soft_examples",
    "cached_teacher_targets",
    "ensemble_targets",
    "nan_mean",
    "char_targets",
    "load_unlabeled",
    "teacher_cache_dir",
    "teacher_targets",
]

# per article: (n_chars, 3) P(O/B/I) and (n_chars, 14) P(technique); NaN where no token covers
CharTargets = tuple[np.ndarray, np.ndarray]


def load_unlabeled(folder: str | Path, limit: int = 0) -> dict[str, str]:
    """``*.txt`` articles of a folder (sorted by name; the first ``limit`` when limit > 0)."""
    files = sorted(Path(folder).glob("*.txt"))
    if not files:
        raise CorpusError(
            f"no unlabeled articles (*.txt) in {folder}: set `unlabeled` in the training config "
            "to a folder of plain-text news articles"
        )
    if limit:
        files = files[:limit]
    return {f.stem: f.read_text(encoding="utf-8") for f in files}


def _teacher_folder(teacher: str | Path) -> Path:
    """A teacher is a model folder (``runs/base6/onnx``) or a shipped model's name (``small``)."""
    shipped = shipped_models()
    return shipped[str(teacher)] if str(teacher) in shipped else Path(teacher)


def teacher_cache_dir(teacher: str | Path) -> Path:
    """Where a teacher's soft targets are cached: its own folder, or for a shipped model (whose
    folder is inside the package) ``$UNSPIN_CACHE/teachers/NAME`` (default ~/.cache/unspin)."""
    if str(teacher) in shipped_models():
        root = Path(os.environ.get("UNSPIN_CACHE", Path.home() / ".cache" / "unspin"))
        return root / "teachers" / str(teacher)
    return Path(teacher)


def _teacher(folder: Path, threads: int) -> Tagger:
    """A model folder as teacher; prefers its unquantized ``model.fp32.onnx`` when present."""
    folder = _teacher_folder(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(
            f"teacher model folder {folder} not found: train the teacher first "
            "(e.g. `unspin train configs/base-6ep.toml --out runs/base6`, then teacher = "
            '"runs/base6/onnx"), or remove `teacher` from the config'
        )
    fp32 = folder / "model.fp32.onnx"
    if not fp32.is_file():
        return Tagger(folder, threads=threads)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(fp32), opts, providers=["CPUExecutionProvider"])

    def backend(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(sess.run(None, {"input_ids": ids, "attention_mask": mask}))

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    with np.load(folder / "tc_head.npz") as npz:
        head = {k: npz[k].astype(np.float32) for k in npz.files}
    return Tagger.from_parts(config, load_tokenizer(folder / "tokenizer.json"), backend, head)


def teacher_targets(
    folder: str | Path, texts: dict[str, str], *, threads: int = 2, log: Any = print
) -> dict[str, CharTargets]:
    """Run the teacher over every text; token probabilities spread over their characters."""
    return char_targets(_teacher(Path(folder), threads), texts, log=log)


_TEACHER_FILES = ("config.json", "model.fp32.onnx", "model.onnx")


def _digest(teacher: str | Path, texts: dict[str, str]) -> str:
    """A key for the teacher's outputs on these texts: its config and network file, and every
    article id and text (a retrained teacher or an edited corpus gets new targets)."""
    folder = _teacher_folder(teacher)
    h = hashlib.sha1()
    for name in _TEACHER_FILES:
        if (folder / name).is_file():
            h.update(name.encode() + (folder / name).read_bytes())
            if name == "model.fp32.onnx":
                break  # the teacher runs this file when it exists (see _teacher)
    for aid, text in texts.items():
        h.update(f"\0{aid}\0{text}".encode())
    return h.hexdigest()[:12]


def _legacy_cache(
    cache_dir: Path, source: str, texts: dict[str, str], teacher: str | Path
) -> Path | None:
    """A cache from before the digest was part of its name (``targets-SOURCE-N.npz``), when it
    holds both arrays of every article at its current length and is newer than the teacher's
    files (an older one may come from a teacher since retrained)."""
    folder = _teacher_folder(teacher)
    teacher_time = max(
        ((folder / n).stat().st_mtime for n in _TEACHER_FILES if (folder / n).is_file()),
        default=0.0,
    )
    for path in sorted(cache_dir.glob(f"targets-{source}-*.npz")):
        if not path.stem.rsplit("-", 1)[1].isdigit() or path.stat().st_mtime < teacher_time:
            continue
        try:
            with np.load(path) as npz:
                names = set(npz.files)
                if all(
                    f"{aid}/si" in names
                    and f"{aid}/tech" in names
                    and npz[f"{aid}/si"].shape[0] == len(text)
                    for aid, text in texts.items()
                ):
                    return path
        except (OSError, ValueError, zipfile.BadZipFile):
            continue
    return None


def _read_cache(path: Path, texts: dict[str, str]) -> dict[str, CharTargets] | None:
    """The cached targets of ``texts``, or None when the file is unreadable or incomplete."""
    try:
        with np.load(path) as npz:
            return {aid: (npz[f"{aid}/si"], npz[f"{aid}/tech"]) for aid in texts}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def cached_teacher_targets(
    teacher: str | Path,
    texts: dict[str, str],
    source: str,
    *,
    threads: int = 2,
    log: Any = print,
) -> dict[str, CharTargets]:
    """``teacher_targets``, cached in ``teacher_cache_dir(teacher)`` under a name that holds a
    digest of the teacher and the texts: the teacher's outputs do not change between students.
    An unreadable cache is made again; an old-style one is renamed to the digest name."""
    cache_dir = teacher_cache_dir(teacher)
    cache = cache_dir / f"targets-{source}-{len(texts)}-{_digest(teacher, texts)}.npz"
    if not cache.is_file():
        legacy = _legacy_cache(cache_dir, source, texts, teacher)
        if legacy is not None:
            log(f"teacher targets: {legacy.name} renamed to {cache.name}")
            legacy.rename(cache)
    if cache.is_file():
        targets = _read_cache(cache, texts)
        if targets is not None:
            log(f"teacher targets from {cache}")
            return targets
        log(f"teacher targets: {cache} is unreadable; labelling again")
    targets = teacher_targets(teacher, texts, threads=threads, log=log)
    arrays = {f"{aid}/si": si for aid, (si, _) in targets.items()}
    arrays.update({f"{aid}/tech": tech for aid, (_, tech) in targets.items()})
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.tmp.npz")  # written whole, then renamed
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds
    os.replace(tmp, cache)
    return targets


def ensemble_targets(
    teachers: str | Path | list[str],
    texts: dict[str, str],
    source: str,
    *,
    threads: int = 2,
    log: Any = print,
) -> dict[str, CharTargets]:
    """``cached_teacher_targets`` of one teacher, or the mean of several teachers' (an ensemble:
    its probabilities averaged character by character; a character no token of a teacher
    covers takes the others' mean)."""
    if not isinstance(teachers, list):
        return cached_teacher_targets(teachers, texts, source, threads=threads, log=log)
    each = [cached_teacher_targets(t, texts, source, threads=threads, log=log) for t in teachers]
    out = {
        aid: (nan_mean([e[aid][0] for e in each]), nan_mean([e[aid][1] for e in each]))
        for aid in texts
    }
    log(f"teacher targets averaged over {len(teachers)} teachers")
    return out


def nan_mean(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The element-wise mean of several teachers' probabilities (float32), NaN (a character no
    token covers) left out; NaN only where every teacher has NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: the mean stays NaN
        return np.nanmean(np.stack(arrays), axis=0).astype(np.float32)


def char_targets(
    tagger: Tagger, texts: dict[str, str], *, log: Any = print
) -> dict[str, CharTargets]:
    """A tagger's token probabilities (SI and technique) spread over each text's characters."""
    out: dict[str, CharTargets] = {}
    t0 = time.time()
    for i, (aid, text) in enumerate(texts.items()):
        o = tagger.outputs(text)
        si = np.full((len(text), 3), np.nan, dtype=np.float32)
        tech = np.full((len(text), o.tech.shape[1]), np.nan, dtype=np.float32)
        for k, (s, e) in enumerate(o.enc.offsets):
            si[s:e] = o.si[k]
            tech[s:e] = o.tech[k]
        out[aid] = (si, tech)
        if (i + 1) % 50 == 0:
            log(f"teacher: {i + 1}/{len(texts)} articles ({time.time() - t0:.0f} s)")
    return out


def _token_targets(enc: Any, char_si: np.ndarray, char_tech: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(enc.ids)
    si = np.zeros((n, 3), dtype=np.float32)
    si[:, 0] = 1.0
    tech = np.zeros((n, char_tech.shape[1]), dtype=np.float32)
    for k, (s, e) in enumerate(enc.offsets):
        block = char_si[s:e]
        ok = ~np.isnan(block[:, 0])
        if ok.any():
            si[k] = block[ok].mean(axis=0)
            tech[k] = char_tech[s:e][ok].mean(axis=0)
    return si, tech


def build_soft_examples(
    texts: dict[str, str],
    targets: dict[str, CharTargets],
    tok: Any,
    *,
    cls_id: int,
    sep_id: int,
    max_len: int,
    stride: int,
) -> list[Example]:
    """Windows of unlabeled articles with the teacher's soft SI and technique targets (no spans
    for the span classifier, which only learns from gold labels)."""
    examples: list[Example] = []
    for aid, text in texts.items():
        enc = encode_article(tok, text)
        if len(enc.ids) == 0 or aid not in targets:
            continue
        si, tech = _token_targets(enc, *targets[aid])
        for w in make_windows(enc, cls_id, sep_id, max_len, stride):
            soft = np.zeros((w.n + 2, 3), dtype=np.float32)
            soft[1:-1] = si[w.first : w.first + w.n]
            tl = np.zeros((w.n + 2, tech.shape[1]), dtype=np.float32)
            tl[1:-1] = tech[w.first : w.first + w.n]
            hard = np.full(w.n + 2, IGNORE, dtype=np.int64)
            examples.append(Example(ids=w.ids, si=hard, tech=tl, si_soft=soft))
    return examples
