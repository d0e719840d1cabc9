"""Tag stage: run a model over an article and return technique spans.

Inference uses onnxruntime + HF tokenizers + numpy only (never torch). The network gives, per
token, P(O/B/I) of "inside any propaganda span", P(inside technique k) for the 14 techniques,
and hidden states; a small span classifier (numpy) labels a span from the hidden states of its
tokens in context plus article-level features (length, recurrence).
"""

from __future__ import annotations

import functools
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from unspin.checks import check_count, check_spans, check_text, check_threshold, default_threads
from unspin.decode import (
    occurrences,
    only_function_words,
    repetition_features,
    runs_to_spans,
    span_token_range,
    stitch,
)
from unspin.errors import InputError, ModelError
from unspin.lexical import LexicalClassifier
from unspin.reader import READER_DIR, SpanReader
from unspin.registry import (
    check_model_folder,
    member_folder,
    resolve_model,
)
from unspin.segment import (
    UNPADDED_KEY,
    Encoded,
    Window,
    encode_article,
    load_tokenizer,
    locate,
    make_windows,
    pad_batch,
    run_unpadded,
    uniform_batches,
)
from unspin.spans import Span
from unspin.techniques import TECHNIQUES

__all__ = ["Tagger", "TaggerLike", "ArticleOutputs", "session_backend", "window_batching"]

T = TypeVar("T")
R = TypeVar("R")

# backend: (input_ids, attention_mask) -> (si_logits (b,l,3), tech_logits (b,l,14), hidden (b,l,h))
Backend = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]


def window_batching(config: Mapping[str, Any], session: Any) -> tuple[int, bool]:
    """(windows per run, padded?) for a model file: the config's ``window_batch``, unpadded;
    without one, a window at a time for a file that reads no padding mask (exported since
    round 14), else padded batches of 8, as older files ran when their decoding was tuned (an
    int8 file scales its activations per run, so the batching moves their outputs). A window
    at a time, its output does not depend on its neighbours, it runs about as fast per window
    on one thread as in any batch, and needs half the memory of 8 (round 14,
    benchmarks/batch_size.py)."""
    if "window_batch" in config:
        return int(config["window_batch"]), False
    return (1, False) if _unpadded(session) else (8, True)


def _unpadded(session: Any) -> bool:
    return session.get_modelmeta().custom_metadata_map.get(UNPADDED_KEY) == "1"


def session_backend(session: Any) -> Backend:
    """The backend that runs an onnxruntime session of a tagger file; a file that reads no
    padding mask (``UNPADDED_KEY``) runs a padded batch row by row."""

    def run(ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        try:
            return session.run(None, {"input_ids": ids, "attention_mask": mask})
        except Exception as err:  # onnxruntime raises its own exception types
            raise ModelError(
                f"the network failed on {ids.shape[0]} window(s) of {ids.shape[1]} tokens "
                f"({type(err).__name__}: {str(err)[:300]}); if max_len or stride in the "
                "model's config.json were edited, check them (max_len is at most the encoder's "
                "positions, 512 for the shipped encoders); else reinstall unspin"
            ) from None

    if _unpadded(session):
        return lambda ids, mask: run_unpadded(run, ids, mask)
    return lambda ids, mask: tuple(run(ids, mask))


class TaggerLike(Protocol):
    """Anything that turns a text into technique spans (the real Tagger, or a fake in tests)."""

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]: ...


@dataclass
class ArticleOutputs:
    text: str
    enc: Encoded
    windows: list[Window]
    si: np.ndarray  # (n, 3) probabilities O/B/I per article token
    tech: np.ndarray  # (n, 14) sigmoid probabilities per article token
    hidden: list[np.ndarray]  # per window (len(ids), h)
    tech_win: list[np.ndarray]  # per window (len(ids), 14) sigmoid probabilities
    span_cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    lexical_cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    reader_cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    members: list[ArticleOutputs] = field(default_factory=list)  # ensembles: one per member


_WORDISH = re.compile(r"[^\W_]")  # a letter or digit
MAP_AHEAD = 16  # items read ahead per worker by Tagger.map


def _load_reader(folder: Path, threads: int | None) -> SpanReader:
    """One span reader per folder, file version and thread count: an ensemble's members share
    it."""
    return _cached_reader(folder, (folder / "model.onnx").stat().st_mtime_ns, threads)


@functools.lru_cache(maxsize=4)
def _cached_reader(folder: Path, version: int, threads: int | None) -> SpanReader:
    return SpanReader(folder, threads=threads)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def calibrate(raw: np.ndarray | float, ab: Sequence[float] | None) -> np.ndarray:
    """Platt scaling on the logit of a raw score; identity when ``ab`` is None."""
    p = np.clip(np.asarray(raw, dtype=np.float64), 1e-6, 1 - 1e-6)
    if ab is None:
        return p
    return _sigmoid(ab[0] * np.log(p / (1 - p)) + ab[1])


def load_head(path: Path) -> dict[str, np.ndarray]:
    """The span classifier's weights (``w1``, ``b1``, ``w2``, ``b2``) from ``tc_head.npz``; a
    damaged file raises ModelError."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            head = {k: npz[k].astype(np.float32) for k in npz.files}
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:
        raise ModelError(
            f"{path}: cannot read the span classifier ({type(err).__name__}: {err}); copy "
            "tc_head.npz again from the training run's onnx folder, or reinstall unspin"
        ) from None
    missing = [k for k in ("w1", "b1", "w2", "b2") if k not in head]
    if missing or not (
        head["w1"].ndim == 2
        and head["b1"].shape == (head["w1"].shape[0],)
        and head["w2"].shape == (len(TECHNIQUES), head["w1"].shape[0])
        and head["b2"].shape == (len(TECHNIQUES),)
    ):
        raise ModelError(
            f"{path}: not a span classifier (missing or misshapen {', '.join(missing) or 'w1/w2'}"
            "); copy tc_head.npz again from the training run's onnx folder, or reinstall unspin"
        )
    return head


def span_vector(out: ArticleOutputs, start: int, end: int) -> np.ndarray:
    """Span-in-context features: [mean, first, last, CLS] hidden + mean technique probs + article
    features, from the window that holds most of the span (nearest its centre on ties)."""
    a, b = span_token_range(out.enc, start, end)
    best, la, lb = locate(out.windows, a, b)
    h = out.hidden[best]
    parts = [
        h[la:lb].mean(axis=0),
        h[la],
        h[lb - 1],
        h[0],
        out.tech_win[best][la:lb].mean(axis=0),
        repetition_features(out.text, start, end),
    ]
    return np.concatenate(parts).astype(np.float32)


class Tagger:
    """Load a shipped model (``"default"``, a name from ``unspin models``, or a folder) and tag.

    ``predict(text)`` returns possibly overlapping :class:`Span` objects with a technique and a
    calibrated score, offsets in code points into ``text``, sorted by (start, end, technique).
    ``threshold`` (0..1) overrides the model's tuned decision threshold on span scores.
    """

    def __init__(
        self, model: str | Path = "default", *, threads: int | None = None, workers: int = 1
    ) -> None:
        """``model``: ``"default"``, a shipped model's name (``unspin models``) or a model
        folder (what ``unspin train`` writes to ``RUN/onnx``). ``threads``: onnxruntime
        threads in all (default ``$UNSPIN_THREADS``, else the CPU count). ``workers``: articles
        that ``predict_many`` and ``map`` tag side by side, each on its share of the threads."""
        workers = check_count("workers", workers)
        if threads is not None:
            threads = check_count("threads", threads)
        folder = resolve_model(model)
        config = check_model_folder(folder)
        self.name = config.get("name", folder.name)
        self.folder = folder
        if config.get("members"):  # an ensemble of shipped models (no network of its own)
            names = config["members"]
            members = [
                Tagger(member_folder(folder, m), threads=threads, workers=workers) for m in names
            ]
            self._setup_ensemble(config, members)
            self.workers = workers
            return
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - core dependency
            raise ModelError("onnxruntime is missing: pip install onnxruntime") from err
        opts = ort.SessionOptions()
        n = threads or default_threads()
        # with workers, articles run side by side, each on its share of the threads (never
        # more workers than threads)
        workers = min(workers, n)
        opts.intra_op_num_threads = max(1, round(n / workers))
        opts.inter_op_num_threads = 1
        # no busy-waiting between runs: the Python work between windows and articles needs the
        # cores; +9% articles/s for `fast` on 2 cores (benchmarks/spinning.py, 3 pairs)
        spin = os.environ.get(
            "UNSPIN_ORT_SPINNING", "0"
        )  # "1" restores it (benchmarks/spinning.py)
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise ModelError(f"Cannot load {folder / 'model.onnx'}: {err}") from err

        backend = session_backend(session)
        batching = window_batching(config, session)
        head = load_head(folder / "tc_head.npz")
        # read when the TC task first needs it (a missing file is an error only then)
        lexical = folder / "lexical.npz"
        self._setup(
            config, load_tokenizer(folder / "tokenizer.json"), backend, head, lexical, READER_DIR
        )
        self.batch_size, self.pad_batches = batching
        self.workers = workers
        # the span reader runs inside a worker, like the network: on that worker's threads
        self.threads: int | None = max(1, round(n / workers))

    @classmethod
    def ensemble(cls, config: dict[str, Any], members: Sequence[Tagger]) -> Tagger:
        """Average the token probabilities and span-classifier outputs of ``members`` (models
        sharing one tokenizer); decoding settings and calibration come from ``config``."""
        self = cls.__new__(cls)
        self._setup_ensemble(config, list(members))
        self.name = config.get("name", "ensemble")
        return self

    def _setup_ensemble(self, config: dict[str, Any], members: list[Tagger]) -> None:
        vocab = {m.tokenizer.to_str() for m in members}
        if len(vocab) != 1:
            raise ModelError("The members of an ensemble must share one tokenizer")
        weights = config.get("member_weights")
        if weights is not None and (
            len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0
        ):
            raise ModelError(
                f"member_weights {weights} must give one weight >= 0 per member "
                f"({len(members)}) with a positive sum"
            )
        self._setup(
            config, members[0].tokenizer, members[0].backend, members[0].head, None, READER_DIR
        )
        self.threads = members[0].threads
        self.members[:] = members

    @classmethod
    def from_parts(
        cls,
        config: dict[str, Any],
        tokenizer: Any,
        backend: Backend,
        head: dict[str, np.ndarray],
        lexical: LexicalClassifier | None = None,
        reader: SpanReader | Path | None = None,
    ) -> Tagger:
        """Build a tagger around any backend (used by training to evaluate the torch model).
        ``reader``: the span reader for the TC task, or a folder to load it from when first
        needed (``unspin.reader.READER_DIR``: the installed one); none by default."""
        self = cls.__new__(cls)
        self._setup(config, tokenizer, backend, head, lexical, reader)
        self.name = config.get("name", "custom")
        return self

    def _setup(
        self,
        config: dict[str, Any],
        tokenizer: Any,
        backend: Backend,
        head: dict[str, np.ndarray],
        lexical: LexicalClassifier | Path | None = None,
        reader: SpanReader | Path | None = None,
    ) -> None:
        self.config = config
        self._lexical = lexical
        self.tokenizer = tokenizer
        self.backend = backend
        self.head = head
        # (in, out) C-contiguous copies of the span classifier's weights, made once
        self._mlp = (
            tuple(np.ascontiguousarray(head[k].T, dtype=np.float32) for k in ("w1", "w2"))
            if head and "w1" in head
            else None
        )
        # windows per network run (a model file's own: ``window_batch``); 8 for other backends
        # (torch fp32 runs fastest, or tied, in 8s end to end: BENCHMARKS.md, round 14)
        self.batch_size = int(config.get("window_batch", 8))
        # fixed batches of batch_size with the short last window padded (model files from
        # before round 14, as their decoding was tuned); else only equal lengths share a run
        self.pad_batches = False
        self.members: list[Tagger] = []
        self.workers = 1
        self.threads = None
        self._reader = reader

    @property
    def lexical(self) -> LexicalClassifier | None:
        """The lexical span classifier (``unspin.lexical``), or None when the model has none;
        read from the model folder when first used (the joint task never needs it); a model
        whose config weighs it in but lacks the file raises ModelError then."""
        path = self._lexical
        if isinstance(path, Path):
            if path.is_file():
                self._lexical = LexicalClassifier.load(path)
            elif self.config.get("tc_lexical_weight"):
                raise ModelError(
                    f"{path.parent / 'config.json'} weighs in a lexical classifier, but {path} "
                    "is missing: copy it again from the run's onnx folder (or reinstall unspin "
                    "for a shipped model), re-fit it with unspin.train.export.add_lexical, or "
                    "set tc_lexical_weight to 0 in config.json"
                )
            else:
                self._lexical = None
        lexical = self._lexical
        assert not isinstance(lexical, Path)
        return lexical

    @lexical.setter
    def lexical(self, value: LexicalClassifier | None) -> None:
        self._lexical = value

    @property
    def reader(self) -> SpanReader | None:
        """The span reader (``unspin.reader``, shared by every model: it reads text, not this
        model's outputs), or None when the install has none; loaded when first used (the
        joint task never needs it); a config that weighs it in without one raises
        ModelError."""
        path = self._reader
        if isinstance(path, Path):
            if (path / "model.onnx").is_file():
                self._reader = _load_reader(path, self.threads)
            elif self.config.get("tc_reader_weight"):
                raise ModelError(
                    f"the model's config.json weighs in the span reader, but {path} has no "
                    "model.onnx: reinstall unspin, or set tc_reader_weight to 0 in config.json"
                )
            else:
                self._reader = None
        reader = self._reader
        assert not isinstance(reader, Path)
        return reader

    @reader.setter
    def reader(self, value: SpanReader | None) -> None:
        self._reader = value

    def _average(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Members' outputs averaged with the config's ``member_weights`` (equal if absent)."""
        w = self.config.get("member_weights")
        if not w:
            return np.mean(arrays, axis=0)
        weights = np.asarray(w, dtype=np.float64) / float(np.sum(w))
        return np.tensordot(weights, np.stack(arrays), axes=1).astype(arrays[0].dtype)

    # -- network ---------------------------------------------------------------------------
    def outputs(self, text: str) -> ArticleOutputs:
        """Everything the network says about ``text``: per-token P(O/B/I) and technique
        probabilities (windows averaged), and each window's hidden states; what ``predict``,
        ``predict_si`` and ``classify`` decode (an ensemble averages its members')."""
        if self.members:
            outs = [m.outputs(text) for m in self.members]
            first = outs[0]
            return ArticleOutputs(
                text=text,
                enc=first.enc,
                windows=first.windows,
                si=self._average([o.si for o in outs]),
                tech=self._average([o.tech for o in outs]),
                hidden=first.hidden,
                tech_win=first.tech_win,
                members=outs,
            )
        check_text(text)
        c = self.config
        enc = encode_article(self.tokenizer, text)
        if len(enc.ids) == 0:
            empty = np.zeros((0, 3), np.float32)
            return ArticleOutputs(text, enc, [], empty, np.zeros((0, 14), np.float32), [], [])
        windows = make_windows(enc, c["cls_id"], c["sep_id"], c["max_len"], c["stride"])
        si_w, tech_w, hid_w = [], [], []
        size = self.batch_size
        batches = (
            [windows[i : i + size] for i in range(0, len(windows), size)]
            if self.pad_batches
            else uniform_batches(windows, size)
        )
        for chunk in batches:
            ids, mask = pad_batch(chunk, c["pad_id"])
            si, tech, hidden = self.backend(ids, mask)
            for j, w in enumerate(chunk):
                L = len(w.ids)
                si_w.append(_softmax(si[j, :L].astype(np.float32)))
                tech_w.append(_sigmoid(tech[j, :L].astype(np.float32)))
                hid_w.append(hidden[j, :L].astype(np.float32))
        n = len(enc.ids)
        return ArticleOutputs(
            text=text,
            enc=enc,
            windows=windows,
            si=stitch(windows, si_w, n),
            tech=stitch(windows, tech_w, n),
            hidden=hid_w,
            tech_win=tech_w,
        )

    def classify_outputs(
        self,
        out: ArticleOutputs,
        spans: Sequence[tuple[int, int]],
        lexical_weight: float = 0.0,
        reader_weight: float = 0.0,
    ) -> np.ndarray:
        """Technique probabilities (len(spans), 14) for given character spans: the span
        classifier's; with ``lexical_weight`` w > 0 and a lexical classifier
        (``unspin.lexical``), their weighted geometric mean P_head^(1/(1+w)) *
        P_lexical^(w/(1+w)), renormalised (the TC task uses the config's ``tc_lexical_weight``;
        joint labels, the span head alone). With ``reader_weight`` v > 0 and a span reader
        (``unspin.reader``) it pools three opinions the same way: P_head^(1/(1+w+v)) *
        P_lexical^(w/(1+w+v)) * P_reader^(v/(1+w+v)). An ensemble passes w and v on to each
        member (with its own span reader's answers) and averages what they return."""
        if not spans:
            return np.zeros((0, len(TECHNIQUES)), np.float32)
        if self.members:  # each member mixes in its own lexical classifier; cached by each
            # the span reader reads text, not a member's outputs: the ensemble's runs once
            reader = self.reader if reader_weight else None
            if reader is not None and out.windows:
                todo = [sp for sp in dict.fromkeys(spans) if sp not in out.reader_cache]
                if todo:
                    out.reader_cache.update(
                        zip(todo, reader.log_probs(out.text, todo), strict=True)
                    )
            for member, o in zip(self.members, out.members, strict=True):
                if reader_weight:  # (only then: a joint call on another thread, weight 0,
                    member.reader = reader  # must not unset it under a TC call)
                o.reader_cache.update(out.reader_cache)
            pairs = zip(self.members, out.members, strict=True)
            return self._average(
                [m.classify_outputs(o, spans, lexical_weight, reader_weight) for m, o in pairs]
            )
        todo = [sp for sp in dict.fromkeys(spans) if sp not in out.span_cache]
        if todo and not out.windows and self.config.get("tc_prior"):
            # no tokens (a blank text): nothing to read; the training labels' shares
            prior = self._prior().astype(np.float32)
            out.span_cache.update((sp, prior) for sp in todo)
        elif todo:  # decoding is re-run many times on the same outputs while tuning
            assert self._mlp is not None
            w1t, w2t = self._mlp
            if out.windows:
                x = np.stack([span_vector(out, s, e) for s, e in todo])
            else:  # a blank text and no recorded prior: the answer to an all-zero input
                x = np.zeros((len(todo), w1t.shape[0]), np.float32)
            h = _gelu(x @ w1t + self.head["b1"])
            logits = h @ w2t + self.head["b2"]
            probs = _softmax(logits / float(self.config.get("tc_temperature", 1.0)))
            out.span_cache.update(zip(todo, probs, strict=True))
        probs = np.stack([out.span_cache[sp] for sp in spans])
        if not out.windows:
            return probs
        # a logarithmic opinion pool: the weighted geometric mean of the distributions,
        # renormalised (the plain product would be far surer than any one model)
        pool, total = np.log(np.maximum(probs, 1e-9)), 1.0
        for weight, model, cache in (
            (float(lexical_weight or 0.0), "lexical", out.lexical_cache),
            (float(reader_weight or 0.0), "reader", out.reader_cache),
        ):
            opinion = getattr(self, model) if weight else None
            if opinion is None:
                continue
            todo = [sp for sp in dict.fromkeys(spans) if sp not in cache]
            if todo:
                cache.update(zip(todo, opinion.log_probs(out.text, todo), strict=True))
            pool = pool + weight * np.stack([cache[sp] for sp in spans])
            total += weight
        return probs if total == 1.0 else _softmax(pool / total)

    def _prior(self) -> np.ndarray:
        """The training labels' technique shares (``tc_prior``), or uniform without one."""
        prior = np.asarray(self.config.get("tc_prior") or np.ones(len(TECHNIQUES)), np.float64)
        return prior / prior.sum()

    def tc_probs(self, out: ArticleOutputs, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """The TC task's technique probabilities: the span classifier's pooled with the
        lexical classifier's at weight ``tc_lexical_weight`` (``classify_outputs``; round 8)
        and the span reader's at ``tc_reader_weight`` (round 9), then Repetition multiplied by
        ``tc_repetition_factor`` (and renormalised) for spans whose text occurs at least
        ``tc_repetition_min_count`` times in the article, then softened by
        ``tc_calibration_temperature`` (fitted on val by log-loss; the ranking is unchanged).
        On val, half of the gold spans whose text recurs are Repetition, and the classifier,
        which saw the training spans' recurrence counts, is sure of them there (TC 0.99 on
        train) but not on new articles. The joint task uses none of these steps: they did not
        raise joint F1 (docs/experiments.md, rounds 7 and 8). A span with no letter or digit
        gets the training labels' shares (``tc_prior``): there is nothing to read."""
        if not spans:
            return np.zeros((0, len(TECHNIQUES)), np.float64)
        probs = np.tile(self._prior(), (len(spans), 1))
        # only spans with something to read are classified (the span reader costs ~15 ms each)
        read = [i for i, (s, e) in enumerate(spans) if _WORDISH.search(out.text[s:e])]
        if not read:
            return probs
        pooled = self.classify_outputs(
            out,
            [spans[i] for i in read],
            float(self.config.get("tc_lexical_weight") or 0.0),
            float(self.config.get("tc_reader_weight") or 0.0),
        ).astype(np.float64)
        factor = float(self.config.get("tc_repetition_factor", 1.0))
        least = int(self.config.get("tc_repetition_min_count", 2))
        rep = TECHNIQUES.index("Repetition")
        for row, i in enumerate(read):
            if factor != 1.0 and occurrences(out.text, *spans[i]) >= least:
                pooled[row, rep] *= factor
                pooled[row] /= pooled[row].sum()
        temperature = float(self.config.get("tc_calibration_temperature") or 1.0)
        if temperature != 1.0:
            pooled = _softmax(np.log(np.maximum(pooled, 1e-12)) / temperature)
        probs[read] = pooled
        return probs

    # -- public API ------------------------------------------------------------------------
    def predict_si(self, text: str, *, threshold: float | None = None) -> list[Span]:
        """Span identification: propaganda spans without a technique. Their scores are
        calibrated but rank them weakly: the default ``medium``'s run from about 0.3 to 0.7,
        while ``small`` gives every SI span the same confidence (0.48, MODEL_CARD.md), so
        there a ``threshold`` keeps all of its SI spans or none; rank findings by
        ``predict``'s joint scores instead."""
        check_threshold(threshold)
        return self._si_spans(self.outputs(text), threshold)

    def _si_raw(self, out: ArticleOutputs, *, joint: bool = False) -> list[tuple[int, int, float]]:
        """Decoded SI spans with their raw (uncalibrated) mean token probability. The joint
        task may decode with its own threshold and gap (``joint_si_threshold``,
        ``joint_max_gap``): the cut that maximises SI F1 is not the one that maximises joint F1."""
        c = self.config
        if len(out.enc.ids) == 0:
            return []
        thr, gap = c.get("si_threshold", 0.5), c.get("max_gap", 0)
        if joint:
            thr, gap = c.get("joint_si_threshold", thr), c.get("joint_max_gap", gap)
        return runs_to_spans(
            out.text,
            out.enc,
            out.si[:, 1] + out.si[:, 2],
            thr,
            min_chars=c.get("min_chars", 3),
            max_gap=gap,
            sentences=bool(c.get("split_sentences", False)),
            # hysteresis for SI only: growing the joint task's spans lost joint F1 out of sample
            extend=None if joint else thr * float(c.get("extend_ratio", 1.0)),
            complete=int(c.get("complete_phrases", 3)),
        )

    def _si_spans(self, out: ArticleOutputs, threshold: float | None) -> list[Span]:
        cal = self.config.get("si_calibration")
        spans = [Span(s, e, None, float(calibrate(r, cal))) for s, e, r in self._si_raw(out)]
        if threshold is not None:
            spans = [sp for sp in spans if sp.score >= threshold]
        return spans

    def classify(
        self, text: str, spans: Sequence[tuple[int, int]]
    ) -> list[list[tuple[str, float]]]:
        """For each (start, end), all techniques ranked by probability (the TC task, so with
        its lexical classifier, Repetition rule and temperature: see ``tc_probs``). Offsets
        are code points with 0 <= start < end <= len(text)."""
        spans = check_spans(check_text(text), spans)
        probs = self.tc_probs(self.outputs(text), spans)
        ranked = []
        for row in probs:
            order = np.argsort(-row)
            ranked.append([(TECHNIQUES[k], float(row[k])) for k in order])
        return ranked

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]:
        """Technique spans: SI spans, each labelled by the span classifier (a second label when
        its probability is close to the first's), with a calibrated joint confidence."""
        check_threshold(threshold)
        out = self.outputs(text)
        return self._joint_spans(out, threshold)

    def predict_many(
        self, texts: Iterable[str], *, threshold: float | None = None, task: str = "joint"
    ) -> Iterator[list[Span]]:
        """``predict`` (``task="joint"``) or ``predict_si`` (``"si"``) over many texts, in
        order. A tagger made with ``workers=2`` tags two articles at a time, each on half the
        threads: +12% articles/s on 2 cores (``benchmarks/workers.py``), at about twice the
        latency per article."""
        if task not in ("si", "joint"):
            raise InputError(f"predict_many: task must be 'si' or 'joint', got {task!r}")
        if isinstance(texts, Mapping):
            raise InputError(
                "predict_many takes texts, not a mapping (it would tag the keys): pass "
                "texts.values()"
            )
        if isinstance(texts, str | bytes | bytearray):
            raise InputError(
                "predict_many takes a list of texts, not one "
                f"{type(texts).__name__}: use predict(text) (decode bytes first)"
            )
        if not isinstance(texts, Iterable):
            raise InputError(
                f"predict_many takes a list (or any iterable) of texts, got {type(texts).__name__}"
            )
        check_threshold(threshold)  # all checked here, before the first text is tagged
        one = self.predict_si if task == "si" else self.predict

        def tag(item: tuple[int, str]) -> list[Span]:
            i, text = item
            try:
                return one(text, threshold=threshold)
            except InputError as err:  # in a stream, say which item
                raise InputError(f"text {i} (counting from 0): {err}") from None

        return self.map(tag, enumerate(texts))

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` over ``items`` in order, ``self.workers`` at a time (onnxruntime releases the
        GIL while it runs, so threads suffice). Reads ahead at most ``MAP_AHEAD`` items per
        worker, so ``items`` may be a stream (a generator over a corpus, even an endless one);
        enough that a long article at the head of the queue does not idle the other workers
        (two items per worker cost 5% articles/s on 2 cores, round 12)."""
        if self.workers <= 1:
            yield from map(fn, items)
            return
        ahead = MAP_AHEAD * self.workers
        with ThreadPoolExecutor(self.workers) as pool:
            queue: deque[Future[R]] = deque()
            try:
                for item in items:
                    queue.append(pool.submit(fn, item))
                    if len(queue) >= ahead:
                        yield queue.popleft().result()
                    while queue and queue[0].done():  # a slow stream: yield what is ready
                        yield queue.popleft().result()
                while queue:
                    yield queue.popleft().result()
            finally:  # an error or an abandoned iterator: drop what has not started
                for fut in queue:
                    fut.cancel()

    def _joint_spans(self, out: ArticleOutputs, threshold: float | None) -> list[Span]:
        c = self.config
        si = self._si_raw(out, joint=True)
        if c.get("drop_function_words", True):
            # "will" or "they are" alone names no technique a reader can check (joint F1 on
            # val: small +0.10, fast +0.07 points); SI keeps them (dropping them cost 0.07)
            si = [(s, e, r) for s, e, r in si if not only_function_words(out.text[s:e])]
        # the span head alone: weighing in the lexical classifier did not raise joint F1
        # out of sample (docs/experiments.md, round 8)
        probs = self.classify_outputs(out, [(s, e) for s, e, _ in si])
        second = float(c.get("second_label_ratio", 0.6))
        rep_floor = float(c.get("repetition_floor", 0.0))
        rep = TECHNIQUES.index("Repetition")
        spans: list[Span] = []  # raw scores (P(span) x P(technique)) until the end
        for (start, end, raw_si), row in zip(si, probs, strict=True):
            recurs = occurrences(out.text, start, end) >= 2
            if not recurs:  # Repetition: the text recurs, by its definition; else the next
                row = _without(row, rep)  # technique (val joint F1: small +0.29 points, fast
                # +0.15, runs/r16/rep_next.py, round 16)
            order = np.argsort(-row)
            picked = [int(order[0])]
            if row[order[1]] >= second * row[order[0]]:
                picked.append(int(order[1]))
            scores = {k: float(row[k]) for k in picked}
            if rep_floor > 0 and rep not in scores and recurs and _recurs(out.text, start, end):
                scores[rep] = max(float(row[rep]), rep_floor)
            for k, p in scores.items():
                spans.append(Span(start, end, TECHNIQUES[k], raw_si * p))
        spans += self._head_spans(out, spans)
        if threshold is None:  # the tuned cut on the raw score, where calibration is flat
            raw_cut = float(c.get("joint_raw_threshold") or 0.0)  # (train.loop.calibrate_on)
            spans = [sp for sp in spans if sp.score >= raw_cut]
        cal = c.get("joint_calibration")
        spans = [
            Span(sp.start, sp.end, sp.technique, float(calibrate(sp.score, cal))) for sp in spans
        ]
        cut = c.get("joint_threshold", 0.0) if threshold is None else threshold
        spans = [sp for sp in spans if sp.score >= cut]
        return sorted(spans, key=lambda s: (s.start, s.end, s.technique or ""))

    def _head_spans(self, out: ArticleOutputs, found: list[Span]) -> list[Span]:
        """Joint spans read off the per-technique token heads: runs of tokens whose technique
        probability exceeds ``joint_head_threshold`` (off when unset), kept where no span of
        that technique was found already (the SI-cut spans above miss techniques whose tokens
        the SI head rates low), one technique per stretch of text. Score: mean P(span) x mean
        P(technique), raw (``_joint_spans`` calibrates it, as the others)."""
        c = self.config
        thr = c.get("joint_head_threshold")
        if thr is None or not len(out.tech):
            return []
        inside = out.si[:, 1] + out.si[:, 2]
        extra: list[Span] = []
        rep = TECHNIQUES.index("Repetition")
        for k in np.flatnonzero(out.tech.max(axis=0) > thr):
            runs = runs_to_spans(
                out.text,
                out.enc,
                out.tech[:, k],
                float(thr),
                min_chars=c.get("min_chars", 3),
                sentences=bool(c.get("split_sentences", False)),
                complete=int(c.get("complete_phrases", 3)),
            )
            same = [(sp.start, sp.end) for sp in found if sp.technique == TECHNIQUES[k]]
            for start, end, raw_k in runs:
                if any(start < e and s < end for s, e in same):
                    continue
                if k == rep and occurrences(out.text, start, end) < 2:
                    continue  # Repetition needs text that recurs (as in _joint_spans)
                if c.get("drop_function_words", True) and only_function_words(out.text[start:end]):
                    continue
                a, b = span_token_range(out.enc, start, end)
                extra.append(
                    Span(start, end, TECHNIQUES[int(k)], float(inside[a:b].mean()) * raw_k)
                )
        # one technique per stretch: on a text far shorter than a window (a headline) the heads
        # can all pass the threshold on one word; keep the surest (val joint F1: small
        # unchanged, fast +0.0002, runs/r16/head_dedupe.py, round 16)
        best: dict[tuple[int, int], Span] = {}
        for sp in extra:
            if (sp.start, sp.end) not in best or sp.score > best[sp.start, sp.end].score:
                best[sp.start, sp.end] = sp
        return list(best.values())


def _without(row: np.ndarray, k: int) -> np.ndarray:
    """``row`` (probabilities) with technique ``k`` ruled out, renormalised; uniform over the
    others if ``k`` had all the mass."""
    row = row.astype(np.float64)  # a copy
    row[k] = 0.0
    total = row.sum()
    if total > 0:
        return row / total
    row[:] = 1.0 / (len(row) - 1)
    row[k] = 0.0
    return row


def _recurs(text: str, start: int, end: int) -> bool:
    """The span's text (case-insensitive, at least two words) occurs elsewhere in the article."""
    key = text[start:end].lower().strip(" \t\n\"'“”‘’.,;:!?")
    if len(key.split()) < 2 and len(key) < 8:
        return False
    return text.lower().count(key) >= 2
