"""Segment stage: tokenize an article once and cut it into overlapping encoder windows.

Offsets stay exact: every token keeps its (start, end) code-point span in the article, so
window predictions can be stitched back to character offsets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

__all__ = [
    "Encoded",
    "Window",
    "load_tokenizer",
    "encode_article",
    "tokenizable",
    "make_windows",
    "pad_batch",
    "uniform_batches",
    "run_unpadded",
    "save_plain_tokenizer",
    "locate",
    "UNPADDED_KEY",
]

# ONNX metadata: "1" when the model reads no padding mask, so padded rows would attend to the
# padding (unspin.train.graph.drop_length_masks); ``run_unpadded`` then runs it row by row
UNPADDED_KEY = "unspin.unpadded"


@dataclass(frozen=True, slots=True)
class Encoded:
    """An article as tokens: ids and code-point offsets, no special tokens."""

    ids: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (n, 2) int64, code points into the text


@dataclass(frozen=True, slots=True)
class Window:
    """``ids[1:-1]`` are article tokens ``first .. first + n - 1`` wrapped in CLS/SEP."""

    ids: np.ndarray  # (n + 2,) int64
    first: int
    n: int


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A model's tokenizer, without truncation or padding, reading "[SEP]" or "[CLS]" written in
    an article as text, not as control tokens; a damaged file raises ModelError."""
    from unspin.errors import ModelError

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises its own exception types
        raise ModelError(
            f"{path}: cannot read the tokenizer ({err}); copy it again from the training run "
            "or reinstall unspin"
        ) from None
    tok.no_truncation()
    tok.no_padding()
    try:
        tok.encode_special_tokens = True
    except AttributeError:  # tokenizers before 0.16: special tokens in text stay special
        pass
    return tok


_SURROGATE = re.compile("[\ud800-\udfff]")


def tokenizable(text: str) -> str:
    """``text`` with lone surrogates (from ``errors="surrogateescape"`` decoding; the
    tokenizer refuses them) replaced by U+FFFD: one code point for one, so offsets stay."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def save_plain_tokenizer(src: str | Path, dst: str | Path) -> None:
    """Copy a tokenizer.json without its padding and truncation settings (the encoders' own
    files pad and cut every text to 128 tokens): what a model folder ships, so that a program
    using the folder's files directly gets one unpadded sequence, as unspin's own
    ``load_tokenizer`` does."""
    tok = Tokenizer.from_file(str(src))
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(dst), pretty=False)


def encode_article(tok: Tokenizer, text: str) -> Encoded:
    enc = tok.encode(tokenizable(text), add_special_tokens=False)
    ids = np.asarray(enc.ids, dtype=np.int64)
    offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
    # Drop zero-width tokens (can appear for stray control characters).
    keep = offsets[:, 1] > offsets[:, 0]
    return Encoded(ids=ids[keep], offsets=offsets[keep])


def make_windows(enc: Encoded, cls_id: int, sep_id: int, max_len: int, stride: int) -> list[Window]:
    """Windows of at most ``max_len`` ids (CLS/SEP included), starting every ``stride`` tokens."""
    width = max_len - 2
    n = len(enc.ids)
    starts = [0]
    while starts[-1] + width < n:
        starts.append(starts[-1] + stride)
    windows = []
    for s in starts:
        e = min(n, s + width)
        ids = np.concatenate([[cls_id], enc.ids[s:e], [sep_id]]).astype(np.int64)
        windows.append(Window(ids=ids, first=s, n=e - s))
    return windows


def pad_batch(windows: list[Window], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask), both (batch, longest) int64."""
    longest = max(len(w.ids) for w in windows)
    ids = np.full((len(windows), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), longest), dtype=np.int64)
    for i, w in enumerate(windows):
        ids[i, : len(w.ids)] = w.ids
        mask[i, : len(w.ids)] = 1
    return ids, mask


def uniform_batches(windows: list[Window], size: int) -> list[list[Window]]:
    """``windows`` in order, in batches of at most ``size`` windows of one length: nothing is
    padded. Only an article's last window is shorter, so this costs at most one more run per
    article than batches of ``size``, and saves computing padding (5% of the tokens over
    unlabeled-news in batches of 8); with int8 activations quantized per batch, padding also
    moved the real tokens' outputs."""
    batches: list[list[Window]] = []
    for w in windows:
        if batches and len(batches[-1]) < size and len(batches[-1][0].ids) == len(w.ids):
            batches[-1].append(w)
        else:
            batches.append([w])
    return batches


def run_unpadded(
    run: Callable[[np.ndarray, np.ndarray], Sequence[np.ndarray]],
    ids: np.ndarray,
    mask: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """``run(ids, mask)`` for a model that reads no padding mask: a batch without padding in
    one run, a padded one row by row on each row's own tokens (mask a run of 1s, then 0s),
    outputs padded with zeros back to the batch's length. Every output must be per token,
    (batch, length, ...), as a tagger's are."""
    lengths = mask.sum(axis=1)
    if bool(mask.all()):
        return tuple(run(ids, mask))
    if any(not mask[i, :n].all() for i, n in enumerate(lengths)):
        raise ValueError("run_unpadded: a mask must be 1s then 0s (padding on the right)")
    rows = [run(ids[i : i + 1, :n], mask[i : i + 1, :n]) for i, n in enumerate(lengths)]
    outs = []
    for k, first in enumerate(rows[0]):
        full = np.zeros((len(ids), ids.shape[1], *first.shape[2:]), dtype=first.dtype)
        for i, n in enumerate(lengths):
            full[i, :n] = rows[i][k][0]
        outs.append(full)
    return tuple(outs)


def locate(windows: list[Window], a: int, b: int) -> tuple[int, int, int]:
    """The window that holds most of article tokens [a, b) (nearest its centre on ties), and
    the span's positions [la, lb) inside that window's ids (CLS = 0), clipped to the window.

    Training and inference both use this, so the span classifier sees spans the same way."""
    best, best_key = 0, (-1, 0.0)
    for i, w in enumerate(windows):
        inside = max(0, min(b, w.first + w.n) - max(a, w.first))
        key = (inside, -abs((w.first + w.n / 2) - (a + b) / 2))
        if key > best_key:
            best, best_key = i, key
    w = windows[best]
    la = max(a, w.first) - w.first + 1
    lb = max(min(b, w.first + w.n) - w.first + 1, la + 1)
    return best, la, lb
