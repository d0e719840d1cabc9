"""How many articles of a corpus the report judges not English (``unspin.text.looks_english``).

    python benchmarks/languages.py                      # PTC articles + the unlabeled news
    python benchmarks/languages.py FOLDER [FOLDER ...]  # any folders of .txt articles

Prints the count per folder and the start of each flagged article, to check by eye that
every one is in another language.
"""

from __future__ import annotations

import sys
from pathlib import Path

from unspin.text import looks_english

DEFAULT = ("../shared/data/ptc/train-articles", "../shared/data/unlabeled-news")


def main(folders: list[str]) -> None:
    for folder in folders or DEFAULT:
        paths = sorted(Path(folder).glob("*.txt"))
        flagged = []
        for path in paths:
            with path.open(encoding="utf-8", newline="") as fh:
                text = fh.read()
            if not looks_english(text):
                flagged.append((path.name, " ".join(text.split())[:40]))
        print(f"{folder}: {len(flagged)} of {len(paths)} articles judged not English")
        for name, start in flagged:
            print(f"  {name}: {start!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
