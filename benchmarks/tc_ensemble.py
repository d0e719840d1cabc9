"""Does averaging the span classifier over several students pay? (TC and joint on val.)

    python benchmarks/tc_ensemble.py --combo MODEL[,MODEL...] [--combo ...] [--base small]

Each ``--combo`` lists models (shipped names or model folders) whose span-classifier
probabilities are averaged with the base model's; the token probabilities (so the SI and joint
cuts) stay the base model's alone. Prints TC micro-F1 on the gold spans and joint F1 with the
base model's shipped settings, then joint F1 after re-tuning the labelling settings on val
(``unspin.evaluate.tune``, in-sample). The base model alone is the first row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.errors import exit_on_error
from unspin.evaluate import evaluate, tune
from unspin.tagger import ArticleOutputs, Tagger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", default="small")
    ap.add_argument("--combo", action="append", default=[], help="comma-separated models")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    corpus = find_corpus(args.corpus)
    ids = load_split(corpus, "val")
    texts, gold = load_texts_and_gold(corpus, ids)
    names = list(dict.fromkeys([args.base, *(m for c in args.combo for m in c.split(","))]))
    taggers = {n: Tagger(n, threads=args.threads) for n in names}
    outs = {n: {a: t.outputs(texts[a]) for a in ids} for n, t in taggers.items()}
    base = taggers[args.base]
    for combo in [[], *(c.split(",") for c in args.combo)]:
        members = [args.base, *combo]
        ens = Tagger.ensemble(dict(base.config), [taggers[n] for n in members])
        hybrid = {}
        for a in ids:
            o = outs[args.base][a]
            hybrid[a] = ArticleOutputs(
                text=o.text,
                enc=o.enc,
                windows=o.windows,
                si=o.si,
                tech=o.tech,
                hidden=o.hidden,
                tech_win=o.tech_win,
                members=[outs[n][a] for n in members],
            )
        shipped = evaluate(ens, hybrid, gold)
        ens.config.update(si_calibration=None, joint_calibration=None)
        tune(ens, hybrid, gold)
        retuned = evaluate(ens, hybrid, gold, tc=False)
        print(
            f"{' + '.join(members)}: TC {shipped.tc_f1:.4f}  joint {shipped.joint_f1:.4f} "
            f"(shipped settings)  {retuned.joint_f1:.4f} (labelling re-tuned)",
            flush=True,
        )


if __name__ == "__main__":
    exit_on_error(main)
