"""How many articles of a corpus the report judges not English (``unspin.text.looks_english``).

    python benchmarks/languages.py                      # PTC articles + the unlabeled news
    python benchmarks/languages.py FOLDER [FOLDER ...]  # any folders of .txt articles

Without folders: the PTC corpus's train-articles (``$UNSPIN_PTC_DIR`` or ../shared/data/ptc)
and the unlabeled news beside it (../shared/data/unlabeled-news).

Prints the count per folder and the start of each flagged article, to check by eye that
every one is in another language.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unspin.corpus import default_corpus_dir
from unspin.errors import CorpusError
from unspin.text import looks_english


def default_folders() -> list[str]:
    """The PTC training articles and the unlabeled news next to the corpus folder."""
    try:
        corpus = default_corpus_dir()
    except CorpusError as err:  # a bad $UNSPIN_PTC_DIR
        raise SystemExit(str(err)) from None
    if corpus is None:
        raise SystemExit("no PTC corpus found: pass folders, or set UNSPIN_PTC_DIR")
    return [str(corpus / "train-articles"), str(corpus.parent / "unlabeled-news")]


def main(folders: list[str]) -> None:
    for folder in folders or default_folders():
        if not Path(folder).is_dir():
            raise SystemExit(f"{folder}: no such folder")
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="folders of .txt articles")
    main(parser.parse_args().folders)
