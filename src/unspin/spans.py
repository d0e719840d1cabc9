"""The small dataclasses passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Span"]


@dataclass(frozen=True, slots=True)
class Span:
    """A fragment of an article: ``text[start:end]`` (code points, end exclusive).

    ``technique`` is ``None`` for a span-identification (SI) span, else one of
    :data:`unspin.techniques.TECHNIQUES`. ``score`` is a calibrated confidence in [0, 1].
    """

    start: int
    end: int
    technique: str | None = None
    score: float = 1.0
