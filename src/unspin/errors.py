"""One error family. Every message says what went wrong and how to fix it."""

from __future__ import annotations

__all__ = ["UnspinError", "CorpusError", "ModelError", "InputError"]


class UnspinError(Exception):
    """Base class of every error unspin raises on purpose.

    Front ends (CLI, web) catch this family and show ``str(err)`` as one clean message.
    """


class CorpusError(UnspinError):
    """A PTC article or label file is malformed (the message names file and line)."""


class ModelError(UnspinError):
    """A model is missing, unknown or cannot be loaded."""


class InputError(UnspinError):
    """User input (a file, URL, text) cannot be analysed."""
