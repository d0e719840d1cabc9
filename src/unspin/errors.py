"""One error family. Every message says what went wrong and how to fix it."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["UnspinError", "CorpusError", "ModelError", "InputError", "exit_on_error"]


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


def exit_on_error(main: Callable[[], object]) -> None:
    """Run a script's ``main``; an ``UnspinError`` ends it with one ``Error:`` line on stderr
    and exit code 1, as the CLI does (benchmarks/ and tools/ use it)."""
    try:
        main()
    except UnspinError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
