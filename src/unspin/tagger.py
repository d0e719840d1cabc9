"""Tag stage: run a shipped ONNX model over an article and return technique spans.

Inference uses onnxruntime + HF tokenizers + numpy only (never torch).
"""

from __future__ import annotations

from typing import Protocol

from unspin.spans import Span

__all__ = ["Tagger", "TaggerLike"]


class TaggerLike(Protocol):
    """Anything that turns a text into technique spans (the real Tagger, or a fake in tests)."""

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]: ...


class Tagger:
    """Load a shipped model (``"default"``, ``"small"``, ``"base"`` or a folder) and tag texts.

    ``predict(text)`` returns possibly overlapping :class:`Span` objects with a technique and a
    calibrated score, offsets in code points into ``text``; sorted by (start, end, technique).
    ``threshold`` (0..1) overrides the model's tuned decision threshold on span scores.
    """

    def __init__(self, model: str = "default", *, threads: int | None = None) -> None:
        raise NotImplementedError

    def predict(self, text: str, *, threshold: float | None = None) -> list[Span]:
        raise NotImplementedError
