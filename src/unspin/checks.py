"""Argument checks shared by the public API: a user mistake is an InputError, never a
TypeError or a confident answer to an impossible question."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from unspin.errors import InputError

__all__ = ["check_count", "check_spans", "check_text", "check_threshold", "default_threads"]


def check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise InputError(f"the text must be a str, got {type(text).__name__}")
    return text


def check_count(name: str, value: Any) -> int:
    """``value`` as a whole number of 1 or more (``workers``, ``threads``)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"{name} must be a whole number, 1 or more; got {value!r}")
    return int(value)


def default_threads() -> int:
    """Threads when none are given: ``$UNSPIN_THREADS`` when set (a whole number, 1 or more),
    else the CPU count."""
    import os

    raw = os.environ.get("UNSPIN_THREADS", "").strip()
    if not raw:
        return os.cpu_count() or 1
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InputError(
            f"UNSPIN_THREADS must be a whole number of threads, 1 or more; got {raw!r}: set it "
            "to e.g. 2, or unset it to use every core"
        )
    return int(raw)


def check_threshold(threshold: Any) -> None:
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, Real):  # numpy scalars too
        raise InputError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"threshold must be between 0 and 1, got {float(threshold):g}")


def check_spans(text: str, spans: Any) -> list[tuple[int, int]]:
    """``spans`` as a list of (start, end) code-point offsets with 0 <= start < end <= len(text)."""
    if isinstance(spans, str) or not isinstance(spans, Sequence):
        raise InputError("spans must be a list of (start, end) pairs, e.g. [(0, 12)]")
    out = []
    for sp in spans:
        if (
            not isinstance(sp, Sequence)
            or len(sp) != 2
            or not all(isinstance(x, Integral) and not isinstance(x, bool) for x in sp)
        ):
            raise InputError(f"each span must be a (start, end) pair of ints, got {sp!r}")
        start, end = int(sp[0]), int(sp[1])
        if not 0 <= start < end <= len(text):
            raise InputError(
                f"span ({start}, {end}) is not inside the text: need 0 <= start < end <= "
                f"{len(text)} (code points)"
            )
        out.append((start, end))
    return out
