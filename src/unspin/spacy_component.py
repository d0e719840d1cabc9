"""spaCy pipeline component: ``nlp.add_pipe("unspin")``.

Puts technique spans into ``doc.spans["unspin"]`` (labels are PTC technique names; the group's
``attrs["scores"]`` holds one confidence per span, as spaCy's spancat does), so that::

    displacy.render(doc, style="span", options={"spans_key": "unspin"})

shows them. Registered through the ``spacy_factories`` entry point, so an installed unspin is
found by ``spacy.load``/``add_pipe`` without importing this module first. Config:

* ``model`` (str, default ``"default"``): the model given to :class:`unspin.tagger.Tagger`,
  loaded on the first document (an unknown name, like a threshold outside 0-1, fails at
  ``add_pipe``). Set ``nlp.get_pipe("unspin").tagger`` to any object with
  ``predict(text, *, threshold=None)`` to use another tagger (tests use a fake one).
* ``threshold`` (float or null): decision threshold override.
* ``spans_key`` (str, default ``"unspin"``): the ``doc.spans`` key written.

Span offsets from the tagger are characters; a span that does not fall on token boundaries is
widened to the tokens it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spacy.language import Language
from spacy.tokens import Doc, SpanGroup

from unspin.errors import ModelError

if TYPE_CHECKING:
    from unspin.tagger import TaggerLike

__all__ = ["UnspinComponent", "displacy_colors", "make_unspin"]


class UnspinComponent:
    """Tag each doc's text and store the technique spans in ``doc.spans[spans_key]``."""

    def __init__(
        self,
        nlp: Language,
        name: str = "unspin",
        *,
        model: str = "default",
        threshold: float | None = None,
        spans_key: str = "unspin",
        tagger: TaggerLike | None = None,
    ) -> None:
        from unspin.checks import check_threshold
        from unspin.registry import resolve_model

        check_threshold(threshold)  # a bad config fails at add_pipe, not on the first doc
        if tagger is None:
            resolve_model(model)  # an unknown name too (reads configs only; loads no model)
        self.name = name
        self.model = model
        self.threshold = threshold
        self.spans_key = spans_key
        self._tagger = tagger

    @property
    def tagger(self) -> TaggerLike:
        if self._tagger is None:
            from unspin.tagger import Tagger

            try:
                self._tagger = Tagger(self.model)
            except NotImplementedError:
                raise ModelError(f"model {self.model!r} cannot be loaded yet") from None
        return self._tagger

    @tagger.setter
    def tagger(self, value: TaggerLike) -> None:
        self._tagger = value

    def __call__(self, doc: Doc) -> Doc:
        found = self.tagger.predict(doc.text, threshold=self.threshold)
        spans = []
        scores = []
        for s in sorted(found, key=lambda s: (s.start, s.end, s.technique or "")):
            if s.technique is None:
                continue
            span = doc.char_span(s.start, s.end, label=s.technique, alignment_mode="expand")
            if span is None or len(span) == 0:
                continue
            spans.append(span)
            scores.append(float(s.score))
        doc.spans[self.spans_key] = SpanGroup(
            doc, name=self.spans_key, spans=spans, attrs={"scores": scores}
        )
        return doc


@Language.factory(
    "unspin",
    default_config={"model": "default", "threshold": None, "spans_key": "unspin"},
)
def make_unspin(
    nlp: Language, name: str, model: str, threshold: float | None, spans_key: str
) -> UnspinComponent:
    """Factory behind ``nlp.add_pipe("unspin", config={"model": ..., "threshold": ...})``."""
    return UnspinComponent(nlp, name, model=model, threshold=threshold, spans_key=spans_key)


def displacy_colors() -> dict[str, str]:
    """Technique colours for ``displacy.render(..., options={"colors": displacy_colors()})``."""
    from unspin.explain import EXPLANATIONS

    return {t: ex.color for t, ex in EXPLANATIONS.items()}
