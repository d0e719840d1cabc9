"""How optimistic are val scores whose decoding was tuned on val? Cross-validates the tuning.

    python benchmarks/tuning_cv.py --model small [--folds 2] [--repeats 3] [--corpus PTC_DIR]
                                   [--tc-only] [--no-reader]

The network's outputs on val are computed once. Then, for each repeat (a seeded shuffle of the
37 val articles) and fold, the decoding grid (``unspin.evaluate.tune``) is fitted on the other
folds and scored on the held-out one; the held-out predictions of all folds are pooled and
scored together. Both tuners are run: the joint task reusing SI's cut (before session 3) and
with its own cut (``joint_si_threshold``/``joint_max_gap``). Prints, per tuner, the in-sample
scores (tuned and scored on all of val, what MODEL_CARD reports) and the cross-validated ones.
Then the same for the TC task's settings (``unspin.evaluate.tune_tc``: the lexical
classifier's weight, the span reader's weight and the Repetition rule) against the span head
alone; ``--no-reader`` leaves the span reader out of that grid.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.errors import exit_on_error
from unspin.evaluate import evaluate, tc_f1, tc_rows, tune, tune_tc
from unspin.tagger import Tagger


def pooled(tagger: Tagger, outs: dict, gold: dict, folds: list[list[str]], joint_cut: bool):
    """Tune on all folds but one, predict the held-out fold; score the pooled predictions."""
    base = dict(tagger.config)
    held: dict[str, dict] = {}
    for k, test in enumerate(folds):
        train = [a for j, f in enumerate(folds) if j != k for a in f]
        tagger.config.clear()
        tagger.config.update(base)
        tune(
            tagger,
            {a: outs[a] for a in train},
            {a: gold[a] for a in train},
            joint_cut=joint_cut,
            tc=False,
        )
        for a in test:
            held[a] = dict(tagger.config)
    # score each article with the settings tuned without it
    preds = {}
    for a, cfg in held.items():
        tagger.config.clear()
        tagger.config.update(cfg)
        preds[a] = (tagger._si_spans(outs[a], None), tagger._joint_spans(outs[a], None))
    tagger.config.clear()
    tagger.config.update(base)
    return preds


def score_preds(preds: dict, gold: dict) -> tuple[float, float]:
    from unspin.evaluate import _labels
    from unspin.scorer import score

    gs = _labels((a, s, e, None) for a, rows in gold.items() for s, e, _ in rows)
    gj = _labels((a, s, e, t) for a, rows in gold.items() for s, e, t in rows)
    ps = _labels((a, sp.start, sp.end, None) for a, (si, _) in preds.items() for sp in si)
    pj = _labels((a, sp.start, sp.end, sp.technique) for a, (_, j) in preds.items() for sp in j)
    return score("si", gs, ps).f1, score("joint", gj, pj).f1


def tc_cv(tagger: Tagger, outs: dict, gold: dict, folds: list[list[str]]) -> float:
    """TC F1 of the pooled held-out folds, each labelled with the rule tuned on the others."""
    from unspin.evaluate import _labels
    from unspin.scorer import score

    pred = []
    for k, test in enumerate(folds):
        train = [a for j, f in enumerate(folds) if j != k for a in f]
        tune_tc(tagger, {a: outs[a] for a in train}, {a: gold[a] for a in train})
        pred += tc_rows(tagger, {a: outs[a] for a in test}, gold)
    gj = _labels((a, s, e, t) for a, rows in gold.items() for s, e, t in rows)
    return score("tc", gj, _labels(pred)).f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--tc-only",
        action="store_true",
        help="only the TC settings (lexical and reader weights, Repetition)",
    )
    ap.add_argument(
        "--no-reader", action="store_true", help="tune the TC settings without the span reader"
    )
    args = ap.parse_args()
    corpus = find_corpus(args.corpus)
    ids = load_split(corpus, "val")
    texts, gold = load_texts_and_gold(corpus, ids)
    tagger = Tagger(args.model, threads=args.threads)
    if args.no_reader:  # (an ensemble gives its members its own)
        tagger.reader = None
    t0 = time.perf_counter()
    outs = {a: tagger.outputs(t) for a, t in texts.items()}
    print(
        f"model {tagger.name}: outputs for {len(ids)} val articles in "
        f"{time.perf_counter() - t0:.0f} s; {args.folds} folds x {args.repeats} repeats"
    )
    # as the shipped tuner does (unspin.train.loop.fit_decoding): tune without calibration, so
    # no setting is searched in a space fitted on the held-out fold
    tagger.config.update(si_calibration=None, joint_calibration=None)
    base = dict(tagger.config)
    for joint_cut in () if args.tc_only else (False, True):
        tagger.config.clear()
        tagger.config.update(base)
        tune(tagger, outs, gold, joint_cut=joint_cut, tc=False)
        ev = evaluate(tagger, outs, gold, tc=False)
        cv = []
        for r in range(args.repeats):
            order = list(np.random.default_rng(r).permutation(ids))
            folds = [order[k :: args.folds] for k in range(args.folds)]
            tagger.config.clear()
            tagger.config.update(base)
            cv.append(score_preds(pooled(tagger, outs, gold, folds, joint_cut), gold))
        si_cv, j_cv = np.mean(cv, axis=0)
        name = "own joint cut " if joint_cut else "joint = SI cut"
        print(
            f"{name}  in-sample SI {ev.si_f1:.4f} joint {ev.joint_f1:.4f}   "
            f"cross-validated SI {si_cv:.4f} joint {j_cv:.4f}   "
            f"(per repeat joint: {' '.join(f'{j:.4f}' for _, j in cv)})",
            flush=True,
        )
    tagger.config.clear()
    tagger.config.update(
        base, tc_repetition_factor=1.0, tc_lexical_weight=0.0, tc_reader_weight=0.0
    )
    plain = tc_f1(tagger, outs, gold)
    tuned = tune_tc(tagger, outs, gold)
    inside = tc_f1(tagger, outs, gold)
    cv_tc = []
    for r in range(args.repeats):
        order = list(np.random.default_rng(r).permutation(ids))
        cv_tc.append(tc_cv(tagger, outs, gold, [order[k :: args.folds] for k in range(args.folds)]))
    print(
        f"TC of the span head alone {plain:.4f}; with the TC settings {tuned}: "
        f"in-sample {inside:.4f}, "
        f"cross-validated {np.mean(cv_tc):.4f} (per repeat: {' '.join(f'{t:.4f}' for t in cv_tc)})"
    )


if __name__ == "__main__":
    exit_on_error(main)
