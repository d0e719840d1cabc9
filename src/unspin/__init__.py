"""unspin: find, label and explain propaganda techniques in news articles."""

from __future__ import annotations

from unspin.errors import CorpusError, InputError, ModelError, UnspinError
from unspin.spans import Span
from unspin.techniques import TECHNIQUES

__all__ = [
    "TECHNIQUES",
    "CorpusError",
    "InputError",
    "ModelError",
    "Span",
    "UnspinError",
]
__version__ = "0.1.0"
