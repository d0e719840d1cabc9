"""A lexical span classifier: the TC task's second opinion beside the network's span head.

A multinomial logistic regression over what a span *says* and what surrounds it: its word
1-2-grams and character 2-5-grams, the words just before and after it, its length and how
often its text recurs in the article. It reads no network output, so its errors differ from
the span head's (which fits the training spans almost perfectly and so never learned how far to
trust itself); ``Tagger.classify_outputs`` adds ``tc_lexical_weight`` times its log
probabilities to the head's (docs/experiments.md, round 8). numpy only: the weights are fitted
by ``unspin.train.lexical`` and shipped as ``lexical.npz`` beside the network.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unspin.decode import occurrences
from unspin.errors import ModelError
from unspin.techniques import TECHNIQUES

__all__ = ["GROUPS", "LexicalClassifier", "dense_features", "grams"]

FORMAT = 1
CONTEXT = 80  # characters of context read on each side of a span
# feature groups: name -> weight of its l2-normalised tf-idf block
GROUPS = {"w": 1.0, "c": 1.0, "l": 0.5, "r": 0.5}
N_DENSE = 6
_WORD = re.compile(r"\b\w\w+\b")
_SPACE = re.compile(r"\s+")
_QUOTES = '"“”«»„'


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _chars(text: str) -> list[str]:
    out = []
    for word in _SPACE.sub(" ", text.lower()).split():
        w = f" {word} "
        for n in range(2, 6):
            out += [w[i : i + n] for i in range(len(w) - n + 1)]
    return out


def grams(text: str, start: int, end: int) -> dict[str, list[str]]:
    """The span's terms per feature group: ``w`` its word 1-2-grams, ``c`` its character
    2-5-grams (within words, padded by a space), ``l``/``r`` the words of the CONTEXT characters
    before and after it."""
    words = _words(text[start:end])
    return {
        "w": words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)],
        "c": _chars(text[start:end]),
        "l": _words(text[max(0, start - CONTEXT) : start]),
        "r": _words(text[end : end + CONTEXT]),
    }


def dense_features(text: str, start: int, end: int) -> np.ndarray:
    """Length and recurrence: log characters, log words, recurs >= 2 / >= 3 times, log count,
    a quotation mark (not an apostrophe: " “ ” « » „) in the span or within 2 characters of it."""
    span = text[start:end]
    n = occurrences(text, start, end)
    near = text[max(0, start - 2) : end + 2]
    return np.array(
        [
            np.log1p(len(span)),
            np.log1p(len(span.split())),
            float(n >= 2),
            float(n >= 3),
            np.log1p(n),
            float(any(q in near for q in _QUOTES)),
        ],
        np.float32,
    )


@dataclass
class LexicalClassifier:
    """``vocab``: feature names ``"<group>|<term>"``; ``idf`` per name; ``coef`` (len(vocab) +
    N_DENSE, 14); ``bias`` (14,)."""

    vocab: list[str]
    idf: np.ndarray
    coef: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        self.index = {name: i for i, name in enumerate(self.vocab)}

    def rows(
        self, text: str, spans: Sequence[tuple[int, int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Sparse feature rows (column indices, values) for spans of ``text``."""
        out = []
        for start, end in spans:
            cols: list[int] = []
            vals: list[float] = []
            for group, terms in grams(text, start, end).items():
                counts = Counter(
                    j for j in (self.index.get(f"{group}|{t}") for t in terms) if j is not None
                )
                if not counts:
                    continue
                idx = np.fromiter(counts, np.int64, len(counts))
                tf = 1.0 + np.log(np.fromiter(counts.values(), np.float64, len(counts)))
                x = tf * self.idf[idx]
                x *= GROUPS[group] / np.sqrt((x * x).sum())
                cols += idx.tolist()
                vals += x.tolist()
            base = len(self.vocab)
            cols += range(base, base + N_DENSE)
            vals += dense_features(text, start, end).tolist()
            out.append((np.asarray(cols, np.int64), np.asarray(vals, np.float32)))
        return out

    def log_probs(self, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Log technique probabilities (len(spans), 14)."""
        if not spans:
            return np.zeros((0, len(self.bias)), np.float32)
        logits = np.stack(
            [vals @ self.coef[cols] + self.bias for cols, vals in self.rows(text, spans)]
        )
        logits = logits - logits.max(axis=-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))

    def save(self, path: str | Path) -> None:
        """Write ``path`` (an .npz; the weights in fp16, which must hold them)."""
        if np.abs(self.coef).max(initial=0.0) > 6e4:
            raise ValueError("lexical weights too large for fp16: fit with a smaller C")
        np.savez_compressed(
            path,
            format=np.array(FORMAT),
            vocab=np.frombuffer("\n".join(self.vocab).encode("utf-8"), np.uint8),
            idf=self.idf.astype(np.float32),
            coef=self.coef.astype(np.float16),
            bias=self.bias.astype(np.float32),
        )

    @classmethod
    def load(cls, path: str | Path) -> LexicalClassifier:
        fix = (
            "copy lexical.npz again from the run's onnx folder (or reinstall unspin for a "
            "shipped model), re-fit it with unspin.train.export.add_lexical, or set "
            "tc_lexical_weight to 0 in the model's config.json"
        )
        try:
            with np.load(path, allow_pickle=False) as npz:
                version = int(npz["format"])
                if version != FORMAT:
                    raise ModelError(
                        f"{path} is a lexical classifier of format {version}; this unspin reads "
                        f"format {FORMAT}: upgrade unspin, or {fix}"
                    )
                raw = npz["vocab"].tobytes().decode("utf-8")
                vocab = raw.split("\n") if raw else []
                clf = cls(
                    vocab,
                    npz["idf"].astype(np.float64),
                    npz["coef"].astype(np.float32),
                    npz["bias"].astype(np.float32),
                )
        except ModelError:
            raise
        except (
            OSError,
            KeyError,
            ValueError,
            TypeError,
            EOFError,
            zipfile.BadZipFile,
            zlib.error,
        ) as err:
            what = type(err).__name__
            raise ModelError(f"Cannot read the lexical classifier {path} ({what}): {fix}") from None
        k = clf.bias.shape
        if (
            clf.idf.shape != (len(vocab),)
            or clf.coef.shape != (len(vocab) + N_DENSE, *k)
            or k != (len(TECHNIQUES),)
            or not all(np.isfinite(a).all() for a in (clf.idf, clf.coef, clf.bias))
        ):
            raise ModelError(
                f"The lexical classifier {path} is inconsistent (vocabulary {len(vocab)}, idf "
                f"{clf.idf.shape}, weights {clf.coef.shape}, bias {k}, or values not finite): {fix}"
            )
        return clf
