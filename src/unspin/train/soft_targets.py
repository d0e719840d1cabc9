"""A teacher's soft targets for the span reader (round 10's distillation): ``label_spans`` writes
them (the spans a tagger finds in unlabeled articles, each with a stronger reader's technique
probabilities), ``load_soft_targets`` reads and checks them, ``soft_rows`` turns them into
training rows for ``unspin.train.reader`` (config key ``soft_targets``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unspin.decode import occurrences
from unspin.reader import SpanReader, encode_span

__all__ = ["label_spans", "load_soft_targets", "soft_rows"]

Row = dict[str, Any]


def soft_rows(
    tok: Any, config: dict[str, Any], texts: dict[str, str], soft: dict[str, tuple[Any, Any]]
) -> list[Row]:
    """Rows for spans with soft targets from a teacher (``soft[aid] = (spans (n, 2), probs (n,
    14))``), such as the spans a tagger finds in unlabeled news, read by a larger reader."""
    rows = []
    cap = int(config["max_recurrence"])
    for aid, (spans, probs) in sorted(soft.items()):
        for (s, e), p in zip(spans, probs, strict=True):
            s, e = int(s), int(e)
            seq, a, b = encode_span(tok, config, texts[aid], s, e)
            y = np.asarray(p, np.float32)
            rows.append(
                {
                    "aid": aid,
                    "span": (s, e),
                    "seq": seq,
                    "a": a,
                    "b": b,
                    "y": y / y.sum(),
                    "rec": min(occurrences(texts[aid], s, e), cap),
                }
            )
    return rows


def label_spans(tagger: Any, reader: SpanReader, texts: dict[str, str]) -> dict[str, np.ndarray]:
    """Soft targets for ``soft_targets``: the spans ``tagger`` finds in each text (SI), each with
    the probabilities ``reader`` (a stronger span reader: the teacher) gives its 14 techniques;
    save the result with ``np.savez_compressed``."""
    arrays: dict[str, np.ndarray] = {}
    for aid, text in sorted(texts.items()):
        spans = sorted({(s.start, s.end) for s in tagger.predict_si(text)})
        if spans:
            arrays[f"{aid}/spans"] = np.asarray(spans, np.int32)
            arrays[f"{aid}/p"] = np.exp(reader.log_probs(text, spans)).astype(np.float16)
    return arrays


def load_soft_targets(
    path: str | Path, folder: str | Path
) -> tuple[dict[str, str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``label_spans``'s file and the articles it is about (``folder``/<id>.txt)."""
    from unspin.errors import CorpusError
    from unspin.train.distill import load_unlabeled

    texts = load_unlabeled(folder)
    fix = "write it again with tools/label_spans.py"
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as err:
        raise CorpusError(f"soft_targets {path}: not a .npz file ({err}); {fix}") from None
    aids = sorted({k.rsplit("/", 1)[0] for k in arrays})
    missing = [a for a in aids if a not in texts]
    if missing:
        raise CorpusError(
            f"{path} has spans for {len(missing)} articles not in {folder} (e.g. "
            f"{missing[0]}): set `unlabeled` to the folder it was labelled from"
        )
    soft = {}
    for a in aids:
        spans, p = arrays.get(f"{a}/spans"), arrays.get(f"{a}/p")
        if spans is None or p is None:
            raise CorpusError(f"soft_targets {path}: {a} needs both {a}/spans and {a}/p; {fix}")
        p = p.astype(np.float32)
        n = len(texts[a])
        ok = spans.ndim == 2 and spans.shape[1:] == (2,) and p.shape == (len(spans), 14)
        ok = ok and bool(np.isfinite(p).all() and (p >= 0).all() and (p.sum(1) > 0).all())
        ok = ok and bool(((spans[:, 0] >= 0) & (spans[:, 0] < spans[:, 1])).all())
        if not ok or (len(spans) and int(spans[:, 1].max()) > n):
            raise CorpusError(
                f"soft_targets {path}: {a}'s rows are not (n, 2) spans inside its {n} "
                f"characters with (n, 14) non-negative probabilities; {fix}"
            )
        soft[a] = (spans, p)
    return {a: texts[a] for a in aids}, soft
