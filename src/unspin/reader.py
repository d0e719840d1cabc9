"""A span reader: the TC task's third opinion, a network that reads one marked span at a time.

The tagger's span head labels spans from the hidden states of a window the network read once
for the whole article (and for span identification first). The span reader is the SemEval
TC recipe instead: all-MiniLM-L6-v2 fine-tuned on PTC train's gold spans (and, as shipped,
distilled from an MPNet reader on spans found in unlabeled news), each read on its own
as ``[CLS] left context [unused0] span [unused1] right context [SEP]``, and classified from
the [CLS] state, the mean of the span's tokens, the start marker's state and how often the
span's text recurs in the article. ``Tagger.tc_probs`` pools its log probabilities with the
span head's and the lexical classifier's (``tc_reader_weight``; docs/experiments.md, rounds 9
and 10). onnxruntime + tokenizers + numpy; trained by ``unspin.train.reader``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unspin.checks import default_threads
from unspin.decode import occurrences
from unspin.errors import ModelError
from unspin.segment import tokenizable
from unspin.techniques import TECHNIQUES

__all__ = ["READER_DIR", "SpanReader", "encode_span"]

READER_DIR = Path(__file__).parent / "readers" / "tc"
FILES = ("model.onnx", "tokenizer.json", "config.json")
# what config.json must hold (written by unspin.train.reader), besides the token ids
KEYS = ("left_tokens", "right_tokens", "span_tokens", "context_chars", "max_recurrence")


def encode_span(
    tokenizer: Any, config: dict[str, Any], text: str, start: int, end: int
) -> tuple[list[int], int, int]:
    """Token ids ``[CLS] left [unused0] span [unused1] right [SEP]`` for a span of ``text``, the
    start marker's position and the end marker's; a span longer than ``span_tokens`` keeps its
    first and last halves (the first one token longer for an odd cap)."""
    chars = int(config["context_chars"])

    def ids(piece: str) -> list[int]:
        return list(tokenizer.encode(tokenizable(piece), add_special_tokens=False).ids)

    span = ids(text[start:end])
    cap = int(config["span_tokens"])
    if len(span) > cap:  # the first (cap + 1) // 2 tokens and the last cap // 2
        span = span[: (cap + 1) // 2] + span[len(span) - cap // 2 :]
    left = ids(text[max(0, start - chars) : start])
    left = left[len(left) - int(config["left_tokens"]) :] if config["left_tokens"] else []
    right = ids(text[end : end + chars])[: int(config["right_tokens"])]
    seq = [int(config["cls_id"]), *left, int(config["start_id"]), *span]
    seq += [int(config["end_id"]), *right, int(config["sep_id"])]
    marker = 1 + len(left)
    return seq, marker, marker + len(span) + 1


class SpanReader:
    """``log_probs(text, spans)`` -> (len(spans), 14) technique log probabilities."""

    def __init__(self, folder: str | Path = READER_DIR, *, threads: int | None = None) -> None:
        folder = Path(folder)
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise ModelError(
                f"{folder} is not a span reader folder: missing {', '.join(missing)} (reinstall "
                "unspin, or set tc_reader_weight to 0 in the model's config.json)"
            )
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelError(f"{folder / 'config.json'}: cannot read it ({err})") from None
        need = (*KEYS, "cls_id", "sep_id", "pad_id", "start_id", "end_id")
        absent = [k for k in need if k not in config] if isinstance(config, dict) else list(need)
        if absent or config.get("techniques") != list(TECHNIQUES):
            what = f"it lacks {', '.join(absent)}" if absent else "not the 14 techniques"
            raise ModelError(
                f"{folder / 'config.json'} is not a span reader's config ({what}): copy the "
                "folder again from the training run (RUN/reader) or reinstall unspin"
            )
        least = {"span_tokens": 1, "context_chars": 1, "max_recurrence": 1}
        for key in need:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least.get(key, 0):
                raise ModelError(
                    f"{folder / 'config.json'}: {key} = {value!r} must be a whole number >= "
                    f"{least.get(key, 0)}; copy the folder again from the training run or "
                    "reinstall unspin"
                )
        import onnxruntime as ort

        from unspin.segment import load_tokenizer

        self.tokenizer = load_tokenizer(folder / "tokenizer.json")  # a damaged one fails first
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise ModelError(f"Cannot load {folder / 'model.onnx'}: {err}") from err
        self.folder = folder
        self.config = config

    def log_probs(self, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Technique log probabilities for spans of ``text``, in the order given. Each span is
        read on its own: int8 dynamic quantization scales each MatMul's input over the whole
        batch, so in a batch a span's answer would depend on the spans beside it (by up to 0.8
        in log probability on val), and on 2 CPU cores one at a time is no slower (14.6 against
        15.7 ms a span in batches of 16, docs/experiments.md round 9)."""
        out = np.zeros((len(spans), len(TECHNIQUES)), np.float32)
        cap = int(self.config["max_recurrence"])
        for i, (start, end) in enumerate(spans):
            seq, marker, stop = encode_span(self.tokenizer, self.config, text, start, end)
            ids = np.asarray([seq], np.int64)
            span_mask = np.zeros_like(ids)
            span_mask[0, marker + 1 : stop] = 1
            logits = self.session.run(
                None,
                {
                    "input_ids": ids,
                    "attention_mask": np.ones_like(ids),
                    "span_mask": span_mask,
                    "marker": np.asarray([marker], np.int64),
                    "recurrence": np.asarray([min(occurrences(text, start, end), cap)], np.int64),
                },
            )[0][0].astype(np.float64)
            logits -= logits.max()
            out[i] = logits - np.log(np.exp(logits).sum())
        return out
