"""Analyse an article: technique spans in context, and a summary a reader can act on.

:class:`Analyzer` runs a tagger (anything with :class:`~unspin.tagger.TaggerLike`'s
``predict``) over a text and returns an :class:`Analysis` - the pydantic objects that the JSON
report serialises (``Analysis.model_dump_json()``), versioned by :data:`SCHEMA_VERSION`.

Light on purpose: sentence splitting and quotation finding are regex/line based; spaCy is only
used (lazily, when installed) to name the *targets* of attacking or glorifying spans.

This module is the thin orchestration of the pipeline stages, and the public API: it
re-exports the names below from the stage modules - :mod:`unspin.schema` (the report models),
:mod:`unspin.sentences` (sentences and quotations), :mod:`unspin.targets` (entities and
targets), :mod:`unspin.summary` (load and score) and :mod:`unspin.phrases` (rule stand-ins).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import unspin
from unspin import schema
from unspin.checks import check_text, check_threshold
from unspin.errors import InputError, ModelError
from unspin.explain import EXPLANATIONS
from unspin.phrases import PhraseEntities, PhraseTagger
from unspin.schema import (
    SCHEMA_VERSION,
    Analysis,
    SentenceInfo,
    SpanInfo,
    Summary,
    Target,
    TargetRow,
    json_schema,
)
from unspin.segment import tokenizable
from unspin.sentences import find_quotes, inside_share, sentence_of, split_sentences
from unspin.spans import Span
from unspin.summary import score_reading, sentence_infos, summarise
from unspin.targets import (
    SPACY_MODEL,
    Entity,
    EntityFinder,
    aim_targets,
    find_entities,
    spacy_entities,
    span_stances,
    target_rows,
)

if TYPE_CHECKING:
    from unspin.tagger import TaggerLike

__all__ = [
    "SCHEMA_VERSION",
    "SPACY_MODEL",
    "Analysis",
    "Analyzer",
    "Entity",
    "PhraseEntities",
    "PhraseTagger",
    "SentenceInfo",
    "SpanInfo",
    "Summary",
    "Target",
    "TargetRow",
    "find_quotes",
    "json_schema",
    "score_reading",
    "spacy_entities",
    "split_sentences",
]

# Type aliases of the report models, importable from here as before (not in ``__all__``).
Technique = schema.Technique
Stance = schema.Stance
Level = schema.Level


class Analyzer:
    """Tag an article and explain the result.

    ``tagger`` is any object with ``predict(text, *, threshold=None) -> list[Span]``, or a
    model name (``Analyzer("fast")``); when it is ``None`` the shipped
    :class:`~unspin.tagger.Tagger` for ``model`` is loaded on first use.
    ``entities`` finds named-entity targets: ``"auto"`` uses spaCy when installed, ``None``
    turns targets off, or pass your own :data:`EntityFinder`.
    """

    def __init__(
        self,
        tagger: TaggerLike | str | os.PathLike[str] | None = None,
        model: str = "default",
        *,
        entities: EntityFinder | Literal["auto"] | None = "auto",
    ) -> None:
        if isinstance(tagger, str | os.PathLike):  # Analyzer("fast"), as Tagger("fast")
            if model != "default" and str(tagger) != str(model):
                raise InputError(
                    f"Analyzer({str(tagger)!r}, model={model!r}) names two models; pass one: "
                    f"Analyzer({str(model)!r})"
                )
            tagger, model = None, str(tagger)
        if tagger is not None and not callable(getattr(tagger, "predict", None)):
            raise ModelError(
                "Analyzer(tagger=...) needs a Tagger (or anything with "
                ".predict(text, *, threshold=None) returning a list of unspin.Span) or a "
                f"model name such as 'fast'; got {type(tagger).__name__}"
            )
        if tagger is not None and not _takes_threshold(tagger.predict):
            raise ModelError(
                f"{type(tagger).__name__}.predict must take a threshold keyword: "
                "predict(text, *, threshold=None) (None: the tagger's own cut)"
            )
        if tagger is None:
            from unspin.registry import resolve_model

            resolve_model(model)  # an unknown name fails here, not at the first analyze
        if not (entities is None or entities == "auto" or callable(entities)):
            raise InputError(
                f"entities must be 'auto', None or a function (text, ranges) -> entities; "
                f"got {entities!r}"
            )
        self._tagger = tagger
        self._injected = tagger is not None
        self.model = model
        self._entities = entities

    @property
    def tagger(self) -> TaggerLike:
        """The tagger in use: the one passed in, else the shipped model's
        :class:`~unspin.tagger.Tagger`, loaded on first use."""
        if self._tagger is None:
            from unspin import tagger as tagger_module

            self._tagger = tagger_module.Tagger(self.model)
        return self._tagger

    def analyze(
        self,
        text: str,
        title: str | None = None,
        threshold: float | None = None,
        *,
        source: str | None = None,
    ) -> Analysis:
        """Analyse ``text`` (offsets in the result refer to it exactly). ``title``: shown
        above the report (default: none). ``threshold`` (0-1): keep spans with at least this
        confidence instead of the model's tuned cut. ``source``: where the text came from (a
        path or URL), kept in the report and used as the article id of ``--format semeval``.
        Lone surrogates (not valid Unicode; no report could be written with them) become
        U+FFFD in ``text``, ``title`` and ``source``: one code point each, so offsets stay."""
        text = tokenizable(check_text(text))
        for name, value in (("title", title), ("source", source)):
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be a str or None, got {type(value).__name__}")
        title = None if title is None else tokenizable(title)
        source = None if source is None else tokenizable(source)
        if not text.lstrip("\ufeff").strip():
            raise InputError("the text is empty; nothing to analyse")
        check_threshold(threshold)
        raw = self.tagger.predict(text, threshold=threshold)
        spans = _clean_spans(raw, len(text))
        return _build(
            text,
            spans,
            title=title,
            threshold=threshold,
            source=source,
            model=None if self._injected else str(getattr(self.tagger, "name", self.model)),
            entities=self._entities,
        )


def _takes_threshold(predict: Any) -> bool:
    try:
        params = inspect.signature(predict).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): trust it
        return True
    named = params.get("threshold")
    if named is not None:
        return named.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        )
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _clean_spans(raw: Iterable[Span], n: int) -> list[Span]:
    """Spans with a known technique, clipped to ``[0, n)``, best score per (start, end, label)."""
    best: dict[tuple[int, int, str], float] = {}
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise ModelError(
            f"the tagger's predict must return a list of unspin.Span, got {type(raw).__name__}"
        )
    for s in raw:
        if not all(hasattr(s, k) for k in ("start", "end", "technique", "score")):
            raise ModelError(
                "the tagger's predict must return a list of unspin.Span (start, end, "
                f"technique, score), got {type(s).__name__} {s!r:.60}"
            )
        if s.technique is None:
            continue  # a technique-less (span identification) span: nothing to explain
        if s.technique not in EXPLANATIONS:
            raise ModelError(f"the tagger returned an unknown technique {s.technique!r}")
        start, end = max(0, int(s.start)), min(n, int(s.end))
        if start >= end:
            continue
        key = (start, end, s.technique)
        score = min(1.0, max(0.0, float(s.score)))
        best[key] = max(score, best.get(key, 0.0))
    return [Span(a, b, t, sc) for (a, b, t), sc in sorted(best.items())]


def _build(
    text: str,
    spans: list[Span],
    *,
    title: str | None,
    threshold: float | None,
    source: str | None,
    model: str | None,
    entities: EntityFinder | Literal["auto"] | None,
) -> Analysis:
    """Put the stages together: sentences, quotations, targets, span and sentence info, summary."""
    sent_ranges = split_sentences(text) or [(0, len(text))]
    quotes = find_quotes(text)
    span_sent = [sentence_of(s.start, sent_ranges) for s in spans]

    # Targets: NER over the sentences holding targeted spans only. ``spacy_entities`` is looked
    # up here, in this module, so that tests can monkeypatch ``unspin.analysis.spacy_entities``.
    stances = span_stances(text, spans)
    finder: EntityFinder | None = spacy_entities if entities == "auto" else entities  # type: ignore[assignment]
    ents_by_sent, status, note = find_entities(
        text, sent_ranges, [span_sent[i] for i in stances], finder
    )
    targets = aim_targets(text, spans, stances, span_sent, ents_by_sent, quotes)

    infos: list[SpanInfo] = []
    for i, s in enumerate(spans):
        assert s.technique is not None
        infos.append(
            SpanInfo(
                id=i,
                start=s.start,
                end=s.end,
                text=text[s.start : s.end],
                technique=s.technique,
                score=round(s.score, 4),
                sentence=span_sent[i],
                quoted=inside_share(s.start, s.end, quotes) >= 0.5,
                target=targets[i],
            )
        )
    sentences = sentence_infos(text, sent_ranges, infos)
    summary = summarise(
        text, spans, sentences, infos, target_rows(infos), status, note, threshold=threshold
    )
    return Analysis(
        generator=f"unspin {unspin.__version__}",
        source=source,
        title=title,
        model=model,
        threshold=threshold,
        text=text,
        sentences=sentences,
        spans=infos,
        summary=summary,
    )
