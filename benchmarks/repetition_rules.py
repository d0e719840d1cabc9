"""Would string matching find Repetition (and repeated spans) better than the model does?

    python benchmarks/repetition_rules.py [--model small] [--corpus PTC_DIR]

1. On PTC train gold: per technique, how many spans recur verbatim (case-insensitive) in their
   article, and how often the other occurrences are annotated too.
2. On val, with the model's joint spans: (a) copy each span, with its technique and score, to
   the other whole-word occurrences of its text (minimum length 3-10 characters); (b) add a
   Repetition label to spans whose text occurs at least 2 or 3 times. Prints joint F1 of each.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.errors import exit_on_error
from unspin.evaluate import _labels
from unspin.scorer import score
from unspin.spans import Span
from unspin.tagger import Tagger


def norm(s: str) -> str:
    return s.lower().strip(" \t\n\"'“”‘’.,;:!?")


def gold_stats(texts: dict, gold: dict) -> None:
    total, recur, annotated, occurrences = (collections.Counter() for _ in range(4))
    for a, rows in gold.items():
        low = texts[a].lower()
        for s, e, tech in rows:
            total[tech] += 1
            key = norm(texts[a][s:e])
            if len(key) < 4:
                continue
            others = [m.start() for m in re.finditer(re.escape(key), low) if not s <= m.start() < e]
            if others:
                recur[tech] += 1
            for o in others:
                occurrences[tech] += 1
                if any(min(ge, o + len(key)) > max(gs, o) for gs, ge, _ in rows):
                    annotated[tech] += 1
    print("train gold: technique, spans, recurring verbatim, other occurrences (annotated)")
    for t in sorted(total):
        print(f"  {t:36s} {total[t]:5d} {recur[t]:5d} {occurrences[t]:5d} ({annotated[t]})")
    n, k = sum(occurrences.values()), sum(annotated.values())
    print(f"  all: {k} of {n} other occurrences annotated ({k / max(n, 1):.0%})")


def propagate(text: str, spans: list[Span], min_len: int) -> list[Span]:
    low, added = text.lower(), []
    for sp in spans:
        key = norm(text[sp.start : sp.end])
        if len(key) < min_len:
            continue
        for m in re.finditer(re.escape(key), low):
            o, oe = m.start(), m.end()
            if (o and low[o - 1].isalnum()) or (oe < len(low) and low[oe].isalnum()):
                continue
            if any(
                min(q.end, oe) > max(q.start, o) and q.technique == sp.technique
                for q in spans + added
            ):
                continue
            added.append(Span(o, oe, sp.technique, sp.score))
    return spans + added


def add_repetition(text: str, spans: list[Span], min_len: int, min_count: int) -> list[Span]:
    low, extra, seen = text.lower(), [], set()
    for sp in spans:
        key = norm(text[sp.start : sp.end])
        if len(key) < min_len or (sp.start, sp.end) in seen or sp.technique == "Repetition":
            continue
        seen.add((sp.start, sp.end))
        if len(re.findall(re.escape(key), low)) >= min_count:
            extra.append(Span(sp.start, sp.end, "Repetition", sp.score))
    return spans + extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    corpus = find_corpus(args.corpus)
    gold_stats(*load_texts_and_gold(corpus, load_split(corpus, "train")))
    ids = load_split(corpus, "val")
    texts, gold = load_texts_and_gold(corpus, ids)
    tagger = Tagger(args.model)
    joint = {a: tagger.predict(texts[a]) for a in ids}
    gold_rows = _labels((a, s, e, t) for a, rows in gold.items() for s, e, t in rows)

    def f1(preds: dict) -> float:
        rows = _labels(
            (a, sp.start, sp.end, sp.technique) for a, sps in preds.items() for sp in sps
        )
        return score("joint", gold_rows, rows).f1

    print(f"val joint F1, model {tagger.name}: {f1(joint):.4f}")
    for n in (3, 4, 6, 10):
        preds = {a: propagate(texts[a], joint[a], n) for a in ids}
        print(f"  copied to other occurrences (>= {n} chars): {f1(preds):.4f}")
    for n in (3, 4, 6, 10):
        for k in (2, 3):
            preds = {a: add_repetition(texts[a], joint[a], n, k) for a in ids}
            print(f"  + Repetition if the text occurs >= {k} times (>= {n} chars): {f1(preds):.4f}")


if __name__ == "__main__":
    exit_on_error(main)
