"""Transparent rule stand-ins for the model and for spaCy: phrase lists in, spans out.

:class:`PhraseTagger` has :class:`~unspin.tagger.TaggerLike`'s ``predict``;
:class:`PhraseEntities` is an :data:`~unspin.targets.EntityFinder`. Both are meant for tests,
demos and as stand-ins while no model (or no spaCy) is installed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from numbers import Real

from unspin.errors import InputError
from unspin.explain import EXPLANATIONS
from unspin.spans import Span
from unspin.targets import Entity

__all__ = ["PhraseEntities", "PhraseTagger"]


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
                raise InputError(
                    f"PhraseTagger: unknown technique {technique!r} for {phrase!r}; use one of "
                    "unspin.techniques.TECHNIQUES"
                )
            if isinstance(score, bool) or not isinstance(score, Real) or not 0 <= score <= 1:
                raise InputError(
                    f"PhraseTagger: the score for {phrase!r} must be a number between 0 and 1, "
                    f"got {score!r}"
                )
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
    """An :data:`~unspin.targets.EntityFinder` from a gazetteer ``{"Washington": "GPE", ...}``.

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
