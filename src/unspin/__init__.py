"""unspin: find, label and explain propaganda techniques in news articles."""

from __future__ import annotations

from unspin.errors import CorpusError, InputError, ModelError, UnspinError
from unspin.spans import Span
from unspin.techniques import TECHNIQUES

__all__ = [
    "TECHNIQUES",
    "Analysis",
    "Analyzer",
    "CorpusError",
    "InputError",
    "ModelError",
    "Span",
    "Tagger",
    "UnspinError",
]
__version__ = "0.1.0"

_LAZY = {
    "Analysis": "unspin.analysis",
    "Analyzer": "unspin.analysis",
    "Tagger": "unspin.tagger",
}


def __getattr__(name: str) -> object:
    """Import the analysis API (pydantic) and the tagger (onnxruntime) on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unspin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
