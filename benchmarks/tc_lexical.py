"""The TC task with and without its second and third opinions on val: the lexical span
classifier (``unspin.lexical``) and the span reader (``unspin.reader``).

    python benchmarks/tc_lexical.py --model small [--corpus PTC_DIR] [--refit C]

Prints TC micro-F1 on val's gold spans for: the lexical classifier alone (its ranking, no
Repetition rule), and the span head pooled with it at each weight of
``unspin.evaluate.LEXICAL_WEIGHTS`` (weight 0: the span head alone), each with the model's
shipped Repetition rule (not re-tuned per weight), plus the lexical classifier's time per span;
then the span reader alone and the model's pool at each weight of
``unspin.evaluate.READER_WEIGHTS`` (its other settings as shipped), when the install has one.
``--refit C`` first fits a new lexical classifier on the training split with inverse L2
strength C (needs the [train] extra) instead of the model's ``lexical.npz``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.errors import exit_on_error
from unspin.evaluate import LEXICAL_WEIGHTS, READER_WEIGHTS, tc_f1
from unspin.scorer import score
from unspin.tagger import Tagger
from unspin.techniques import TECHNIQUES


def lexical_alone(clf: Any, texts: dict, gold: dict) -> tuple[float, float]:
    """TC F1 of a classifier's ranking alone (anything with ``log_probs(text, spans)``: the
    lexical classifier or the span reader), and its seconds per span."""
    from unspin.evaluate import _labels

    rows, n, t0 = [], 0, time.perf_counter()
    for aid, spans in gold.items():
        uniq = sorted({(s, e) for s, e, _ in spans})
        ranked = {
            sp: list(np.argsort(-lp))
            for sp, lp in zip(uniq, clf.log_probs(texts[aid], uniq), strict=True)
        }
        n += len(uniq)
        used: dict[tuple[int, int], int] = {}
        for s, e, _ in spans:
            k = used.get((s, e), 0)
            rows.append((aid, s, e, TECHNIQUES[ranked[(s, e)][k % len(TECHNIQUES)]]))
            used[(s, e)] = k + 1
    seconds = (time.perf_counter() - t0) / max(n, 1)
    gj = _labels((a, s, e, t) for a, sp in gold.items() for s, e, t in sp)
    return score("tc", gj, _labels(rows)).f1, seconds


def top_choices(tagger: Tagger, outs: dict, gold: dict) -> tuple[np.ndarray, np.ndarray]:
    """The TC task's top probability for each gold row and whether its technique is right
    (rows of one span with two techniques: right if it is either)."""
    conf, right = [], []
    for aid, rows in gold.items():
        spans = [(s, e) for s, e, _ in rows]
        probs = tagger.tc_probs(outs[aid], spans)
        for (s, e, _), p in zip(rows, probs, strict=True):
            conf.append(p.max())
            right.append(TECHNIQUES[int(p.argmax())] in {t for a, b, t in rows if (a, b) == (s, e)})
    return np.asarray(conf), np.asarray(right, float)


def ece(conf: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top choice."""
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    return float(
        sum(
            abs(conf[idx == b].mean() - right[idx == b].mean()) * (idx == b).mean()
            for b in range(bins)
            if (idx == b).any()
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--refit", type=float, default=0.0, metavar="C")
    args = ap.parse_args()
    corpus = find_corpus(args.corpus)
    tagger = Tagger(args.model, threads=2)
    if args.refit:
        from unspin.train.lexical import fit_lexical

        t0 = time.perf_counter()
        tagger.lexical = fit_lexical(
            *load_texts_and_gold(corpus, load_split(corpus, "train")), c=args.refit
        )
        print(f"fitted on train in {time.perf_counter() - t0:.0f} s, C = {args.refit}")
    assert tagger.lexical is not None, f"model {tagger.name} has no lexical.npz: use --refit C"
    texts, gold = load_texts_and_gold(corpus, load_split(corpus, "val"))
    outs = {a: tagger.outputs(t) for a, t in texts.items()}
    alone, seconds = lexical_alone(tagger.lexical, texts, gold)
    print(
        f"model {tagger.name}: {len(tagger.lexical.vocab)} terms; {1000 * seconds:.2f} ms per span"
    )
    shipped = tagger.config.get("tc_lexical_weight")
    print(f"lexical classifier alone  TC {alone:.4f}")
    for temperature in (1.0, tagger.config.get("tc_calibration_temperature") or 1.0):
        tagger.config["tc_calibration_temperature"] = temperature
        conf, right = top_choices(tagger, outs, gold)
        print(
            f"temperature {temperature:<4}: top probability {conf.mean():.3f} on average, "
            f"right {right.mean():.3f}; ECE {ece(conf, right):.3f} (10 bins)"
        )
    reader_weight = tagger.config.get("tc_reader_weight") or 0.0
    tagger.config["tc_reader_weight"] = 0.0
    for w in LEXICAL_WEIGHTS:
        tagger.config["tc_lexical_weight"] = w
        mark = "  (shipped)" if w == shipped else ""
        print(f"span head pooled with it, weight {w:<4} TC {tc_f1(tagger, outs, gold):.4f}{mark}")
    tagger.config["tc_lexical_weight"] = shipped
    if tagger.reader is None:
        print("no span reader in this install")
        return
    alone, seconds = lexical_alone(tagger.reader, texts, gold)
    print(f"span reader alone  TC {alone:.4f}; {1000 * seconds:.1f} ms per span")
    for w in READER_WEIGHTS:
        tagger.config["tc_reader_weight"] = w
        mark = "  (shipped)" if w == reader_weight else ""
        f1 = tc_f1(tagger, outs, gold)
        print(f"the pool with the span reader at weight {w:<4} TC {f1:.4f}{mark}")


if __name__ == "__main__":
    exit_on_error(main)
