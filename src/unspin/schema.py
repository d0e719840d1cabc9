"""The JSON report schema: the pydantic models behind every output format.

:class:`Analysis` is what :class:`~unspin.analysis.Analyzer` returns and what the JSON report
serialises (``Analysis.model_dump_json()``), versioned by :data:`SCHEMA_VERSION`;
:func:`json_schema` is committed as docs/schema.json.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from unspin.techniques import TECHNIQUES

__all__ = [
    "SCHEMA_VERSION",
    "Analysis",
    "Level",
    "SentenceInfo",
    "SpanInfo",
    "Stance",
    "Summary",
    "Target",
    "TargetRow",
    "TargetStatus",
    "Technique",
    "json_schema",
]

#: Version of the JSON report schema (docs/schema.json). Bump the major part on breaking changes.
SCHEMA_VERSION = "1.1"  # 1.1: summary.level "unrated"

Technique = Literal[TECHNIQUES]  # type: ignore[valid-type]
Stance = Literal["attacked", "glorified", "mentioned"]
Level = Literal["none", "light", "moderate", "heavy", "unrated"]
TargetStatus = Literal["ok", "disabled", "unavailable"]

_MODEL_CONFIG = ConfigDict(
    extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
)


class Target(BaseModel):
    """The named entity a span is aimed at (found by spaCy NER in or next to the span)."""

    model_config = _MODEL_CONFIG

    text: str = Field(description="The entity as written in the article.")
    label: str = Field(description="spaCy entity label: PERSON, NORP, ORG, GPE, LOC, ...")
    start: int = Field(ge=0, description="Code-point offset of the entity in `text`.")
    end: int = Field(ge=0, description="End offset (exclusive).")
    stance: Stance = Field(
        description="How the span treats the entity: attacked (name calling, fear, negative "
        "loaded words), glorified (flag-waving, positive loaded words) or just mentioned."
    )


class SpanInfo(BaseModel):
    """One technique found in the article."""

    model_config = _MODEL_CONFIG

    id: int = Field(ge=0, description="Position in `spans` (spans sorted by start, end).")
    start: int = Field(ge=0, description="Code-point offset into `text` (inclusive).")
    end: int = Field(ge=0, description="Code-point offset into `text` (exclusive).")
    text: str = Field(description="`text[start:end]`.")
    technique: Technique = Field(description="One of the 14 PTC techniques.")
    score: float = Field(ge=0.0, le=1.0, description="Model confidence in [0, 1].")
    sentence: int = Field(ge=0, description="Index in `sentences` of the sentence it starts in.")
    quoted: bool = Field(
        description="True when most of the span lies inside a direct quotation (someone "
        "else's words, reported by the article)."
    )
    target: Target | None = Field(
        default=None,
        description="For name calling, appeal to fear, flag-waving and loaded language: the "
        "named entity the span is aimed at, when one is in or next to it.",
    )


class SentenceInfo(BaseModel):
    """A sentence (or a line without sentence punctuation, such as a headline)."""

    model_config = _MODEL_CONFIG

    index: int = Field(ge=0)
    start: int = Field(ge=0, description="Code-point offset into `text`.")
    end: int = Field(ge=0, description="End offset (exclusive), trailing whitespace excluded.")
    text: str
    techniques: list[Technique] = Field(
        description="Techniques of the spans overlapping this sentence, in TECHNIQUES order."
    )
    load: float = Field(
        ge=0.0,
        description="Sum over the techniques present of their highest span score here; "
        "quoted-only techniques count half. Ranks `summary.top_sentences`.",
    )
    quoted_only: bool = Field(
        description="True when the sentence has techniques, all of them inside quotations."
    )


class TargetRow(BaseModel):
    """How often one named entity is attacked or glorified."""

    model_config = _MODEL_CONFIG

    entity: str = Field(description="The entity as first written in the article.")
    label: str = Field(description="spaCy entity label.")
    attacked: int = Field(ge=0)
    glorified: int = Field(ge=0)
    mentioned: int = Field(ge=0, description="Targeted by loaded words of unclear polarity.")
    techniques: list[Technique]


class Summary(BaseModel):
    """Article-level figures. See docs/report.md for how the score is defined."""

    model_config = _MODEL_CONFIG

    sentences: int = Field(ge=0, description="Number of sentences.")
    loaded_sentences: int = Field(ge=0, description="Sentences with at least one technique.")
    quoted_only_sentences: int = Field(
        ge=0, description="Loaded sentences whose techniques are all inside quotations."
    )
    sentence_share: float = Field(ge=0.0, le=1.0, description="loaded_sentences / sentences.")
    characters: int = Field(ge=0, description="Non-whitespace code points in `text`.")
    loaded_characters: int = Field(
        ge=0, description="Non-whitespace code points covered by at least one span."
    )
    character_share: float = Field(ge=0.0, le=1.0, description="loaded_characters / characters.")
    spans: int = Field(ge=0, description="Number of technique spans.")
    quoted_spans: int = Field(ge=0, description="Spans inside a direct quotation.")
    counts: dict[Technique, int] = Field(
        description="Spans per technique, all 14 techniques listed (in TECHNIQUES order)."
    )
    top_sentences: list[int] = Field(
        description="Indices of up to 3 most loaded sentences, most loaded first."
    )
    score: float = Field(
        ge=0.0,
        le=100.0,
        description="0-100: percentage of sentences using a technique in the article's own "
        "voice, sentences with only quoted techniques counting half.",
    )
    level: Level = Field(
        description="none (<5), light (<20), moderate (<40), heavy (>=40); unrated when the "
        "text has too few sentences to rate (spans in under 3 sentences) or does not look like "
        "English (the models read English only): `reading` says which."
    )
    reading: str = Field(description="The score in plain language.")
    targets: list[TargetRow] = Field(description="Who is attacked / who is glorified.")
    targets_status: Literal["ok", "disabled", "unavailable"] = Field(
        description="ok: NER ran; disabled: the caller turned it off; unavailable: spaCy or "
        "its English model is not installed (targets are then empty)."
    )
    targets_note: str | None = Field(default=None, description="Why targets are missing.")


class Analysis(BaseModel):
    """The full report on one article: the object behind every output format."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "unspin analysis",
        },
    )

    schema_version: Literal["1.0", "1.1"] = Field(
        default="1.1",
        description="Schema version: 1.1 added the summary level 'unrated' (1.0 reports load).",
    )
    generator: str = Field(description="unspin version that wrote this report.")
    source: str | None = Field(default=None, description="Path, URL or '<stdin>'.")
    title: str | None = Field(default=None, description="Article title, when known.")
    model: str | None = Field(
        default=None,
        description="Name of the shipped model that tagged the text (null for a custom tagger).",
    )
    threshold: float | None = Field(
        default=None, description="Decision threshold override; null = the model's own."
    )
    text: str = Field(description="The analysed text; every offset refers to it.")
    sentences: list[SentenceInfo]
    spans: list[SpanInfo]
    summary: Summary


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Analysis` (committed as docs/schema.json)."""
    return Analysis.model_json_schema(mode="serialization")
