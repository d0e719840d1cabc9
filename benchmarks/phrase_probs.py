"""Why a phrase was (not) flagged: the model's token probabilities over each occurrence.

    python benchmarks/phrase_probs.py --model small examples/article.txt "takfiri terrorists"

For every occurrence of each phrase (case-insensitive) prints the mean and max of the
per-token P(inside a propaganda span), the SI threshold it is cut at, and the span
classifier's top techniques for exactly that phrase.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unspin.decode import span_token_range
from unspin.errors import exit_on_error
from unspin.tagger import Tagger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("article", type=Path)
    ap.add_argument("phrases", nargs="+")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    tagger = Tagger(args.model, threads=2)
    text = args.article.read_text(encoding="utf-8")
    out = tagger.outputs(text)
    prob = out.si[:, 1] + out.si[:, 2]
    c = tagger.config
    print(
        f"model {tagger.name}: SI threshold {c.get('si_threshold', 0.5):g}, joint cut "
        f"{c.get('joint_si_threshold', c.get('si_threshold', 0.5)):g}"
    )
    for phrase in args.phrases:
        start = text.lower().find(phrase.lower())
        if start < 0:
            print(f"{phrase!r}: not in the article")
        while start >= 0:
            end = start + len(phrase)
            a, b = span_token_range(out.enc, start, end)
            top = tagger.classify(text, [(start, end)])[0][:3]
            labels = ", ".join(f"{t} {p:.2f}" for t, p in top)
            print(
                f"{text[start:end]!r} at {start}: P(span) mean {prob[a:b].mean():.2f} "
                f"max {prob[a:b].max():.2f}; as a span: {labels}"
            )
            start = text.lower().find(phrase.lower(), end)


if __name__ == "__main__":
    exit_on_error(main)
