"""PTC / SemEval-2020 Task 11 label format: ``id<TAB>technique<TAB>start<TAB>end`` per span.

The article id comes from the source name: ``article123.txt`` gives ``123`` (the PTC naming),
any other file its name without extension, stdin ``stdin``. Offsets are code points into the
analysed text, as in the PTC label files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from unspin.analysis import Analysis
from unspin.errors import InputError

__all__ = ["article_id", "check_ids", "render_semeval"]


def article_id(source: str | None) -> str:
    """The PTC article id for a source path or URL (tabs and newlines never appear in it)."""
    if not source or source in {"-", "<stdin>"}:
        return "stdin"
    path = urlsplit(source).path if "://" in source else source
    name = PurePosixPath(path.replace("\\", "/")).name or "article"
    # article<ID>.txt as `unspin predict` reads a folder (corpus.read_articles), any ID;
    # article<digits> with another extension
    m = re.fullmatch(r"article([^\s/\\]+)\.txt", name) or re.fullmatch(
        r"article(\d+)(\.\w+)?", name
    )
    if m:
        return m.group(1)
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    return re.sub(r"\s+", "_", stem) or "article"


def check_ids(sources: Sequence[str | None]) -> None:
    """Refuse inputs whose article ids collide (``a/op.txt`` and ``b/op.txt`` are both ``op``):
    their rows would merge into one article of the labels file."""
    seen: dict[str, str] = {}
    for source in sources:
        aid = article_id(source)
        if aid in seen and seen[aid] == (source or "stdin"):
            raise InputError(
                f"{source or 'stdin'} is given twice: in the semeval format its rows would be "
                "written twice; give each article once"
            )
        if aid in seen:
            raise InputError(
                f"{seen[aid]} and {source} both get the article id {aid!r} in the semeval "
                "format, so their rows would merge; rename one, or write one file per article"
            )
        seen[aid] = source or "stdin"


def render_semeval(analyses: Sequence[Analysis]) -> str:
    check_ids([a.source for a in analyses])
    lines = []
    for a in analyses:
        aid = article_id(a.source)
        for s in a.spans:
            lines.append(f"{aid}\t{s.technique}\t{s.start}\t{s.end}")
    return "".join(line + "\n" for line in lines)
