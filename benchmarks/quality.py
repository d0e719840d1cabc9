"""Scores of a shipped model on PTC val (the numbers in MODEL_CARD.md).

    python benchmarks/quality.py --model small [--corpus ../shared/data/ptc] [--split val]
                                 [--write-config]

Prints SI / TC / joint precision, recall, F1 (the task's official measures, via unspin.scorer),
per-technique joint and TC F1, and a reliability table of the calibrated span confidences.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.errors import exit_on_error
from unspin.evaluate import evaluate, reliability, span_correct, val_scores
from unspin.tagger import Tagger
from unspin.techniques import TECHNIQUES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stride", type=int, default=None, help="override the window stride")
    ap.add_argument(
        "--write-config",
        action="store_true",
        help="record the scores in the model's config.json (val; what `unspin models` shows)",
    )
    args = ap.parse_args()
    if args.write_config and (args.split != "val" or args.stride):
        ap.error("--write-config records val scores at the model's own stride only")
    corpus = find_corpus(args.corpus)
    ids = load_split(corpus, args.split)
    texts, gold = load_texts_and_gold(corpus, ids)
    tagger = Tagger(args.model, threads=args.threads)
    if args.stride:
        tagger.config["stride"] = args.stride
    t0 = time.perf_counter()
    outs = {aid: tagger.outputs(t) for aid, t in texts.items()}
    ev = evaluate(tagger, outs, gold)
    secs = time.perf_counter() - t0
    c = tagger.config
    how = f"average of {' + '.join(c['members'])}" if c.get("members") else f"stride {c['stride']}"
    print(f"model {tagger.name} ({how}) on {args.split} ({len(ids)} articles, {secs:.0f} s)")
    print(f"SI    P {ev.si_p:.4f}  R {ev.si_r:.4f}  F1 {ev.si_f1:.4f}")
    print(f"TC    micro-F1 {ev.tc_f1:.4f}  (gold spans)")
    print(f"joint P {ev.joint_p:.4f}  R {ev.joint_r:.4f}  F1 {ev.joint_f1:.4f}")
    print(f"\n{'technique':38} {'gold':>5} {'joint F1':>9} {'TC F1':>7}")
    counts = {t: sum(1 for rows in gold.values() for r in rows if r[2] == t) for t in TECHNIQUES}
    for t in TECHNIQUES:
        jf = ev.per_technique.get(t, (0, 0, 0))[2]
        tf = ev.tc_per_technique.get(t, (0, 0, 0))[2]
        print(f"{t:38} {counts[t]:5d} {jf:9.3f} {tf:7.3f}")
    for kind in ("si", "joint"):
        rows = []
        for aid, out in outs.items():
            spans = tagger._si_spans(out, None) if kind == "si" else tagger._joint_spans(out, 0.0)
            rows += [(aid, s.start, s.end, s.technique, s.score) for s in spans]
        if not rows:
            continue
        scores = np.array([r[4] for r in rows])
        y = span_correct([r[:4] for r in rows], gold, joint=kind == "joint")
        table, ece = reliability(scores, y)
        print(
            f"\nreliability ({kind} spans; correct = at least half inside a gold span"
            f"{' of the same technique' if kind == 'joint' else ''}); ECE {ece:.3f}"
        )
        print("bin        n     mean conf  share correct")
        for line in table:
            print("  " + line)
    if args.write_config:
        cfg_path = tagger.folder / "config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["val"] = val_scores(ev)  # as unspin train does
        cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
        print(f"\nval scores written to {cfg_path}")


if __name__ == "__main__":
    exit_on_error(main)
