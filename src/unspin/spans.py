"""The small dataclasses passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

from unspin.errors import InputError
from unspin.techniques import TECHNIQUES

_KNOWN = frozenset(TECHNIQUES)

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

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise InputError(f"Span {name} must be a whole number, got {value!r}")
        if self.technique is not None and not isinstance(self.technique, str):
            raise InputError(f"Span technique must be a str or None, got {self.technique!r}")
        if isinstance(self.score, bool) or not isinstance(self.score, Real):
            raise InputError(f"Span score must be a number between 0 and 1, got {self.score!r}")
        if not 0 <= self.start <= self.end:
            raise InputError(
                f"Span({self.start}, {self.end}): offsets must satisfy 0 <= start <= end"
            )
        if self.technique is not None and self.technique not in _KNOWN:
            raise InputError(
                f"Span technique {self.technique!r} is not one of the 14 PTC techniques "
                "(unspin.techniques.TECHNIQUES), nor None for a span without one"
            )
        if not -1e-6 <= self.score <= 1.0 + 1e-6:  # NaN fails too
            raise InputError(f"Span score must be between 0 and 1, got {self.score!r}")
        if not 0.0 <= self.score <= 1.0:  # float32 rounding just past an end
            object.__setattr__(self, "score", min(1.0, max(0.0, float(self.score))))
